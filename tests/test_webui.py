"""The WebUI in a real headless Chromium (Debian's), against the real server on a 127.0.0.1 port."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from .server_process import STOP_AT_ONCE, RunningServer, running_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
README_TEXT = "阿里巴巴集团创始人马云在杭州出席了技术峰会。"
COLORS = {"PER": "rgb(255, 59, 92)", "LOC": "rgb(0, 240, 255)", "ORG": "rgb(255, 230, 0)", "TITLE": "rgb(61, 123, 255)",
          "TIME": "rgb(57, 255, 20)", "MONEY": "rgb(255, 159, 28)", "PERCENT": "rgb(255, 77, 240)"}

XSS_PAYLOADS = [
    "<script>window.__xss = 1</script>马云",
    '<img src=x onerror="window.__xss = 1">杭州',
    "<svg onload=window.__xss=1><circle r=5></svg>",
    '<a href="javascript:window.__xss=1">阿里巴巴集团</a>',
    '"><iframe src="javascript:window.__xss=1"></iframe>',
    "</textarea><script>window.__xss = 1</script>",
    "&lt;b&gt;马云&lt;/b&gt; &amp; 杭州 &#60;script&#62;",
    '<div style="background:url(javascript:window.__xss=1)">北京</div>',
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=1>",
    "马云<b>在</b>杭州<!-- unclosed",
    "<scr<script>ipt>window.__xss=1</scr</script>ipt>",
    "😀🇨🇳马云在<img src=x onerror=alert(1)>杭州",
]

# elements of the page other than those rebuilt for each result (highlights, legend, statistics)
OUTSIDE_RESULTS = (
    "document.querySelectorAll('body *:not([data-testid=result] *):not([data-testid=legend] *)"
    ":not([data-testid=stats] *)').length"
)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("webui")
    config = root / "models.toml"
    config.write_text(f"""{STOP_AT_ONCE}
[models.raner-default]
model = "default"
aliases = ["default"]
pool_size = 2

[models.short-texts]
model = "default"
pool_size = 1
max_text_chars = 40
""", encoding="utf-8")
    with running_server(config, root / "server.log") as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-background-networking"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, server: RunningServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    page.add_init_script("window.__xss = 0; window.alert = () => { window.__xss = 1; };")
    page.goto(server.url)
    expect(page.get_by_test_id("model").locator("option")).to_have_count(2)
    yield page
    context.close()


def detect(page: Page, text: str) -> None:
    page.get_by_test_id("text").fill(text)
    with page.expect_response("**/ner"):
        page.get_by_test_id("detect").click()
    expect(page.get_by_test_id("detect")).to_be_enabled()


def marks(page: Page) -> list[dict[str, str]]:
    result: list[dict[str, str]] = page.eval_on_selector_all(
        "[data-testid=result] mark.entity",
        "ms => ms.map(m => ({type: m.dataset.type, text: m.textContent, title: m.title,"
        " bg: getComputedStyle(m).backgroundColor}))",
    )
    return result


def api_entities(server: RunningServer, text: str) -> list[dict[str, object]]:
    data: list[dict[str, object]] = httpx.post(f"{server.url}/ner", json={"text": text}).json()["data"]
    return data


def test_highlights_colours_counts_and_screenshot(page: Page, server: RunningServer):
    text = "\n".join([
        "据说，刘德华平时生活在香港，但是他喜欢去北京钓鱼。",
        README_TEXT,
        "国务院总理李克强在中南海会见了联合国秘书长古特雷斯。",
    ])
    expected = api_entities(server, text)
    assert {e["type"] for e in expected} == {"PER", "LOC", "ORG", "TITLE"}  # 总理, 秘书长
    detect(page, text)
    found = marks(page)
    assert [(m["type"], m["text"]) for m in found] == [(e["type"], e["span"]) for e in expected]
    assert all(m["bg"] == COLORS[m["type"]] for m in found)
    assert all(re.search(r"p=(0|1)\.\d{3}$", m["title"]) for m in found)
    assert page.get_by_test_id("result").text_content() == text, "line breaks and text kept exactly"
    stats = page.get_by_test_id("stats")
    for entity_type in ("PER", "LOC", "ORG"):
        count = sum(e["type"] == entity_type for e in expected)
        assert stats.locator(f"[data-type={entity_type}] dd").inner_text() == str(count)
    assert stats.locator("[data-type=总计] dd").inner_text() == str(len(expected))
    expect(page.get_by_test_id("timing")).to_contain_text("ms")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "webui-result.png"), full_page=True)


def test_values_of_the_extra_types_show_on_hover_and_focus(page: Page, server: RunningServer):
    text = "2023年11月2日晚上8点，腾讯总裁刘炽平在深圳宣布追加投资2.8亿美元，营收同比增长百分之二十。"
    detect(page, text)
    found = {m["text"]: m for m in marks(page)}
    assert {found[s]["type"] for s in ("2023年11月2日晚上8点", "总裁", "2.8亿美元", "百分之二十")} == {
        "TIME", "TITLE", "MONEY", "PERCENT"}
    assert "2023-11-02 20:00 — 20:59" in found["2023年11月2日晚上8点"]["title"]
    assert "USD 280,000,000" in found["2.8亿美元"]["title"] and "20%" in found["百分之二十"]["title"]
    assert all(found[s]["bg"] == COLORS[found[s]["type"]] for s in found)
    page.get_by_test_id("result").locator("mark.entity").first.focus()
    shown = "getComputedStyle(document.activeElement, '::before').content"
    for _ in range(3):  # the marks with a value are in the tab order, in text order, the value shown above each
        label = page.evaluate("document.activeElement.getAttribute('aria-label') || ''")
        assert label.split(":")[0] in ("2023年11月2日晚上8点", "2.8亿美元", "百分之二十"), label
        value = page.evaluate("document.activeElement.dataset.value")
        assert value and label.endswith(value) and page.evaluate(shown) == f'"{value}"'
        page.keyboard.press("Tab")


def test_the_confidence_slider_hides_doubtful_entities(page: Page, server: RunningServer):
    text = "据说，刘德华平时生活在香港，阿里巴巴集团创始人马云在杭州出席了技术峰会。"
    everything = api_entities(server, text)
    threshold = sorted(float(str(e["prob"])) for e in everything)[len(everything) // 2]
    detect(page, text)
    assert len(marks(page)) == len(everything)
    slider = page.get_by_test_id("min-prob")
    with page.expect_response("**/ner"):  # letting go of the slider asks again with the new threshold
        slider.fill(f"{threshold:.2f}")
    expect(page.get_by_test_id("min-prob-value")).to_have_text(f"{threshold:.2f}")
    kept = [(e["type"], e["span"]) for e in everything if float(str(e["prob"])) >= float(f"{threshold:.2f}")]
    expect(page.locator("[data-testid=result] mark.entity")).to_have_count(len(kept))
    assert [(m["type"], m["text"]) for m in marks(page)] == kept and 0 < len(kept) < len(everything)


def test_offsets_after_emoji_and_astral_characters(page: Page, server: RunningServer):
    text = "😀🇨🇳𠀀。" + README_TEXT + "👍🏽。马云说"
    expected = api_entities(server, text)
    assert any(e["span"] == "马云" for e in expected)
    detect(page, text)
    assert [(m["type"], m["text"]) for m in marks(page)] == [(e["type"], e["span"]) for e in expected]
    assert page.get_by_test_id("result").text_content() == text


def test_ctrl_enter_toggles_and_copy(page: Page):
    page.get_by_test_id("text").fill(README_TEXT)
    with page.expect_response("**/ner"):
        page.get_by_test_id("text").press("Control+Enter")
    expect(page.locator("[data-testid=result] mark.entity")).to_have_count(3)
    page.get_by_test_id("legend").locator("button[data-type=PER]").click()
    assert page.locator("[data-testid=result] mark.entity-hidden").count() == 1
    page.get_by_test_id("legend").locator("button[data-type=PER]").click()
    assert page.locator("[data-testid=result] mark.entity-hidden").count() == 0
    page.get_by_test_id("copy").click()
    expect(page.get_by_test_id("message")).to_contain_text("已复制")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert '"span": "马云"' in copied


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_xss_payloads_are_shown_as_literal_text(page: Page, server: RunningServer, payload: str):
    elements_before = page.evaluate(OUTSIDE_RESULTS)
    detect(page, payload)
    result = page.get_by_test_id("result")
    assert result.text_content() == payload
    tags = page.eval_on_selector_all("[data-testid=result] *", "els => els.map(e => e.tagName)")
    assert set(tags) <= {"MARK"}
    api = httpx.post(f"{server.url}/ner", json={"text": payload}).json()["data"]
    assert len(tags) == len(api)
    assert page.evaluate("window.__xss") == 0
    assert page.evaluate("document.querySelectorAll('script, iframe, img, svg, math').length") == 1  # our script
    assert page.evaluate(OUTSIDE_RESULTS) == elements_before


def test_api_errors_are_explained(page: Page):
    page.get_by_test_id("model").select_option("short-texts")
    detect(page, "马" * 41)
    message = page.get_by_test_id("message")
    expect(message).to_contain_text("文本太长")
    expect(message).to_contain_text("the limit is 40")

    def answer_with(status: int) -> Callable[[Route], None]:
        body = '{"success": false, "error": {"code": "x", "message": "busy", "request_id": "r1"}}'
        return lambda route: route.fulfill(status=status, content_type="application/json", body=body)

    for status, words in ((429, "请求太多"), (503, "服务暂不可用")):  # busy servers, simulated in the browser
        page.route("**/ner", answer_with(status))
        page.get_by_test_id("detect").click()
        expect(message).to_contain_text(words)
        page.unroute("**/ner")
    page.route("**/ner", lambda route: route.abort("connectionrefused"))
    page.get_by_test_id("detect").click()
    expect(message).to_contain_text("无法连接服务器")
    expect(page.get_by_test_id("detect")).to_be_enabled()


def test_phone_width_has_no_horizontal_scroll(browser: Browser, server: RunningServer):
    context = browser.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    page.goto(server.url)
    page.get_by_test_id("text").fill(README_TEXT * 5)
    page.get_by_test_id("detect").click()
    expect(page.locator("[data-testid=result] mark.entity").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    context.close()


def test_page_works_with_no_internet_links(server: RunningServer):
    html = httpx.get(server.url).text
    assert "http://" not in html and "https://" not in html
    assert httpx.get(f"{server.url}/static/app.css").status_code == 200
