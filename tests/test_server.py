"""The REST server over real HTTP: every route, every error a client can cause, concurrency, metrics.

One server process, on a host in UTC as servers and containers are, serves four models: the shipped default
(first, so the default), the tiny test model with its own colours, a one-instance model with a short deadline and
a one-request queue (503 and 429) whose times are read in New York, and a broken model whose vocab is larger than
its embedding table, so some characters make it raise (500).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from .conftest import BREAKING_CHAR
from .server_process import STOP_AT_ONCE, RunningServer, metric, running_server

README_TEXT = "阿里巴巴集团创始人马云在杭州出席了技术峰会。"


@pytest.fixture(scope="module")
def server(
    tiny_model_dir: Path, broken_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("server")
    config = root / "models.toml"
    config.write_text(f"""{STOP_AT_ONCE}
[models.raner-default]
model = "default"
aliases = ["default"]
pool_size = 2

[models.tiny]
model = "{tiny_model_dir}"
pool_size = 2
max_text_chars = 5000
colors = {{ ORG = "orange" }}

[models.narrow]
model = "default"
pool_size = 1
max_waiting = 1
request_timeout_s = 1.0
timezone = "America/New_York"

[models.broken]
model = "{broken_model_dir}"
pool_size = 1
""", encoding="utf-8")
    with running_server(config, root / "server.log", env={"TZ": "UTC", "RANER_POOL_TIMEZONE": ""}) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        yield http


@pytest.fixture(scope="module")
def openai_client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="not-needed", max_retries=0)


def entities_of(client: httpx.Client, text: str, model: str | None = None) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"text": text} if model is None else {"text": text, "model": model}
    response = client.post("/ner", json=body)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


# --- /ner and /ner/batch -----------------------------------------------------------------------------------------


def test_ner_answers_the_design_card_shape(client: httpx.Client):
    response = client.post("/ner", json={"text": README_TEXT})
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["model"] == "raner-default" and body["elapsed_ms"] >= 0
    assert [(e["type"], e["start"], e["end"], e["span"], e["color"]) for e in body["data"]] == [
        ("ORG", 0, 6, "阿里巴巴集团", "yellow"),
        ("PER", 9, 11, "马云", "red"),
        ("LOC", 12, 14, "杭州", "cyan"),
    ]
    assert all(0 < e["prob"] <= 1 for e in body["data"])
    assert response.headers["x-request-id"]


def test_models_by_name_and_alias_with_their_own_colours(client: httpx.Client):
    assert entities_of(client, README_TEXT, "default") == entities_of(client, README_TEXT)
    tiny = entities_of(client, README_TEXT, "tiny")
    assert all(e["color"] == {"ORG": "orange", "PER": "red", "LOC": "cyan"}[e["type"]] for e in tiny)
    assert all(e["span"] == README_TEXT[e["start"] : e["end"]] for e in tiny)


def test_offsets_are_code_points_after_emoji(client: httpx.Client):
    text = "😀🇨🇳。" + README_TEXT  # 4 code points, 7 UTF-16 units, 14 UTF-8 bytes before the sentence
    got = entities_of(client, text)
    assert all(e["span"] == text[e["start"] : e["end"]] for e in got)
    assert ("PER", 13, 15, "马云") in [(e["type"], e["start"], e["end"], e["span"]) for e in got]


def test_empty_text_is_200_with_no_entities(client: httpx.Client):
    assert entities_of(client, "") == []
    assert entities_of(client, " \n\t") == []


def test_batch_keeps_order_and_matches_single_requests(client: httpx.Client):
    texts = [README_TEXT, "", "据说，刘德华平时生活在香港，但是他喜欢去北京钓鱼", "abc"]
    response = client.post("/ner/batch", json={"texts": texts})
    assert response.status_code == 200
    batch = response.json()["data"]
    assert len(batch) == len(texts)
    for text, entities in zip(texts, batch, strict=True):
        single = entities_of(client, text)
        assert [(e["type"], e["start"], e["end"]) for e in entities] == [
            (e["type"], e["start"], e["end"]) for e in single
        ]


def test_hf_format(client: httpx.Client):
    response = client.post("/ner?format=hf", json={"text": README_TEXT})
    assert response.json()["data"][1] == {
        "entity_group": "PER", "score": pytest.approx(response.json()["data"][1]["score"]),
        "word": "马云", "start": 9, "end": 11, "value": None, "source": "model",
    }


DESIGN_SENTENCE = "2023年11月2日晚上8点，腾讯总裁刘炽平在深圳宣布追加投资2.8亿美元，营收同比增长百分之二十。"


def test_the_extra_types_with_values_a_reference_time_and_a_types_filter(client: httpx.Client):
    body = client.post("/ner", json={"text": "明天下午3点，腾讯总裁宣布追加投资2.8亿美元，同比增长百分之二十。",
                                     "reference_time": "2024-03-15T10:00:00+08:00"}).json()
    assert body["reference_time"] == "2024-03-15T10:00:00+08:00"
    by_type = {e["type"]: e for e in body["data"]}
    assert by_type["TIME"]["span"] == "明天下午3点" and by_type["TIME"]["source"] == "rule"
    assert by_type["TIME"]["value"] == {"kind": "point", "start": "2024-03-16T15:00:00+08:00",
                                        "end": "2024-03-16T15:59:59+08:00", "grain": "hour",
                                        "timezone": "Asia/Shanghai"}
    assert by_type["MONEY"]["value"] == {"amount": "280000000", "currency": "USD", "approx": None}
    assert by_type["PERCENT"]["value"] == {"fraction": 0.2, "approx": None}
    assert (by_type["TITLE"]["span"], by_type["TITLE"]["color"]) == ("总裁", "blue")
    assert by_type["ORG"]["source"] == "model" and by_type["ORG"]["value"] is None
    filtered = client.post("/ner/batch", json={"texts": [DESIGN_SENTENCE], "types": ["TIME", "MONEY"]}).json()
    assert [e["type"] for e in filtered["data"][0]] == ["TIME", "MONEY"]
    assert filtered["reference_time"].endswith("+08:00") and filtered["timezone"] == "Asia/Shanghai"  # now
    hf = client.post("/ner?format=hf", json={"text": DESIGN_SENTENCE, "types": ["PERCENT"]}).json()["data"]
    assert hf == [{"entity_group": "PERCENT", "score": 1.0, "word": "百分之二十", "start": 44, "end": 49,
                   "value": {"fraction": 0.2, "approx": None}, "source": "rule"}]


def time_of(client: httpx.Client, text: str, **fields: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The /ner answer for `text` with `fields` added, and the value of its one TIME entity."""
    response = client.post("/ner", json={"text": text, "types": ["TIME"], **fields})
    assert response.status_code == 200, response.text
    body = response.json()
    [entity] = body["data"]
    return body, entity["value"]


def test_times_are_read_in_shanghai_on_a_utc_host_unless_the_request_or_the_model_names_a_zone(
    client: httpx.Client,
):
    body, value = time_of(client, DESIGN_SENTENCE)
    assert body["timezone"] == value["timezone"] == "Asia/Shanghai" and body["reference_time"].endswith("+08:00")
    assert (value["start"], value["end"]) == ("2023-11-02T20:00:00+08:00", "2023-11-02T20:59:59+08:00")
    body, value = time_of(client, DESIGN_SENTENCE, timezone="Europe/London")
    assert body["timezone"] == value["timezone"] == "Europe/London"
    assert value["start"] == "2023-11-02T20:00:00+00:00"
    body, value = time_of(client, DESIGN_SENTENCE, model="narrow")  # its registry entry: America/New_York
    assert (body["timezone"], value["start"]) == ("America/New_York", "2023-11-02T20:00:00-04:00")
    body, value = time_of(client, DESIGN_SENTENCE, model="narrow", timezone="Asia/Shanghai")  # the request wins
    assert (body["timezone"], value["start"]) == ("Asia/Shanghai", "2023-11-02T20:00:00+08:00")
    batch = client.post("/ner/batch", json={"texts": ["明天开会"], "timezone": "Asia/Tokyo"}).json()
    assert batch["timezone"] == batch["data"][0][0]["value"]["timezone"] == "Asia/Tokyo"
    refused = client.post("/ner", json={"text": "明天", "timezone": "Mars/Olympus"})
    assert refused.status_code == 422 and refused.json()["error"]["param"] == "timezone"
    assert "unknown time zone 'Mars/Olympus'" in refused.json()["error"]["message"]


def test_relative_times_count_from_now_in_the_zone(client: httpx.Client):
    evening_in_london = "2024-03-15T20:00:00+00:00"  # already 04:00 on the 16th in Shanghai
    body, value = time_of(client, "明天开会", reference_time=evening_in_london)
    assert (body["reference_time"], value["start"]) == ("2024-03-16T04:00:00+08:00", "2024-03-17T00:00:00+08:00")
    body, value = time_of(client, "明天开会", reference_time=evening_in_london, timezone="Europe/London")
    assert (body["reference_time"], value["start"]) == ("2024-03-15T20:00:00+00:00", "2024-03-16T00:00:00+00:00")
    body, value = time_of(client, "明天开会", reference_time="2024-03-15T23:30:00")  # a wall clock in Shanghai
    assert (body["reference_time"], value["start"]) == ("2024-03-15T23:30:00+08:00", "2024-03-16T00:00:00+08:00")


def test_models_list_their_types(client: httpx.Client):
    health = {m["name"]: m for m in client.get("/health").json()["models"]}
    assert health["raner-default"]["types"] == ["PER", "LOC", "ORG", "TIME", "MONEY", "PERCENT", "TITLE"]
    listed = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert listed["raner-default"]["types"] == health["raner-default"]["types"]


@pytest.mark.parametrize(("body", "param"), [
    ({"text": "明天", "reference_time": "next tuesday"}, "reference_time"),
    ({"text": "明天", "reference_time": 1700000000}, "reference_time"),
    ({"text": "明天", "types": ["TIME", "DATE"]}, "types[1]"),
    ({"texts": ["明天"], "types": "TIME"}, "types"),
    ({"text": "明天", "timezone": "Mars/Olympus"}, "timezone"),
    ({"texts": ["明天"], "timezone": "+08:00"}, "timezone"),
    ({"text": "明天", "timezone": 8}, "timezone"),
])
def test_a_bad_reference_time_or_type_is_422_naming_the_field(client: httpx.Client, body: dict[str, Any],
                                                              param: str):
    response = client.post("/ner/batch" if "texts" in body else "/ner", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == param


# --- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"text": ', "body"),
        ("not json at all", "body"),
        ("{}", "text"),
        ('{"text": 5}', "text"),
        ('{"text": ["a"]}', "text"),
        ('{"text": "x", "model": 3}', "model"),
        ('{"text": "x", "min_prob": 1.5}', "min_prob"),
        ('{"text": "x", "min_prob": "high"}', "min_prob"),
        ('{"text": "x", "min_prob": false}', "min_prob"),
        ("[1, 2]", "body"),
    ],
)
def test_malformed_requests_are_422_naming_the_field(client: httpx.Client, body: str, field: str):
    response = client.post("/ner", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["param"] == field and field in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


def test_min_prob_keeps_only_entities_the_model_is_that_sure_of(client: httpx.Client):
    text = "据说，刘德华平时生活在香港，阿里巴巴集团创始人马云在杭州出席了技术峰会。"
    everything = entities_of(client, text)
    threshold = sorted(e["prob"] for e in everything)[len(everything) // 2]
    kept = client.post("/ner", json={"text": text, "min_prob": threshold}).json()["data"]
    assert kept == [e for e in everything if e["prob"] >= threshold] and 0 < len(kept) < len(everything)
    batch = client.post("/ner/batch", json={"texts": [text, text], "min_prob": threshold}).json()["data"]
    assert batch == [kept, kept]


def test_batch_with_a_wrong_item_names_its_index(client: httpx.Client):
    response = client.post("/ner/batch", json={"texts": ["ok", 7]})
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "texts.1"


def test_unknown_model_is_404_listing_known_names(client: httpx.Client):
    response = client.post("/ner", json={"text": "x", "model": "gpt-4"})
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert "'gpt-4'" in message and "raner-default" in message and "tiny" in message


def test_text_over_the_limit_is_413_naming_the_limit(client: httpx.Client):
    response = client.post("/ner", json={"text": "马" * 5001, "model": "tiny"})
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "text has 5001 characters; the limit is 5000"
    batch = client.post("/ner/batch", json={"texts": ["ok", "马" * 5001], "model": "tiny"})
    assert batch.status_code == 413 and "texts[1]" in batch.json()["error"]["message"]


def test_unknown_route_and_method_are_json_errors(client: httpx.Client):
    assert client.get("/nope").status_code == 404
    assert client.get("/ner").status_code == 405
    assert client.get("/ner").json()["success"] is False


def test_a_model_that_raises_is_500_with_request_id_and_keeps_its_instance(
    client: httpx.Client, server: RunningServer
):
    response = client.post("/ner", json={"text": f"马云{BREAKING_CHAR}", "model": "broken"})
    assert response.status_code == 500
    request_id = response.json()["error"]["request_id"]
    assert request_id and request_id == response.headers["x-request-id"]
    assert f"request {request_id} to /ner failed" in server.log_text()
    assert client.post("/ner", json={"text": "马云", "model": "broken"}).status_code == 200
    broken = next(m for m in client.get("/health").json()["models"] if m["name"] == "broken")
    assert broken["pool"]["idle"] == 1 and broken["pool"]["failed"] >= 1


def test_busy_pool_gives_503_with_retry_after_then_429_when_the_queue_is_full(client: httpx.Client):
    """`narrow` has one instance, a 1 s deadline and room for one waiting request."""
    long_texts = [README_TEXT * 90] * 40  # ~80,000 characters: seconds of work for the one instance
    holder = threading.Thread(target=lambda: client.post("/ner/batch", json={"texts": long_texts, "model": "narrow"}))
    holder.start()
    try:
        wait_until(lambda: pool_state(client, "narrow")["in_use"] == 1)
        with ThreadPoolExecutor(2) as executor:
            waiter = executor.submit(client.post, "/ner", json={"text": "马云", "model": "narrow"})
            wait_until(lambda: pool_state(client, "narrow")["waiting"] == 1)
            refused = client.post("/ner", json={"text": "马云", "model": "narrow"})
            timed_out = waiter.result()
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "queue_full"
        assert timed_out.status_code == 503 and timed_out.headers["retry-after"] == "1"
        assert timed_out.json()["error"]["code"] == "pool_timeout"
    finally:
        holder.join()
    wait_until(lambda: pool_state(client, "narrow")["idle"] == 1)  # the instance is back, not lost
    assert client.post("/ner", json={"text": "马云", "model": "narrow"}).status_code == 200


def pool_state(client: httpx.Client, name: str) -> dict[str, int]:
    state: dict[str, int] = next(m for m in client.get("/health").json()["models"] if m["name"] == name)["pool"]
    return state


def wait_until(condition: Any, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# --- concurrency --------------------------------------------------------------------------------------------------


def test_64_concurrent_clients_all_answered_correctly(client: httpx.Client, server: RunningServer):
    texts = [f"{i}号：据说，刘德华平时生活在香港，但是他喜欢去北京钓鱼。{README_TEXT}" for i in range(64)]
    expected = [entities_of(client, t) for t in texts]

    def call(i: int) -> list[dict[str, Any]]:
        with httpx.Client(base_url=server.url, timeout=120) as own:
            return entities_of(own, texts[i])

    with ThreadPoolExecutor(64) as executor:
        results = list(executor.map(call, range(64)))
    for got, want in zip(results, expected, strict=True):
        assert [(e["type"], e["start"], e["end"]) for e in got] == [(e["type"], e["start"], e["end"]) for e in want]
    assert pool_state(client, "raner-default")["in_use"] == 0


# --- OpenAI protocol, through the official client ------------------------------------------------------------------


def test_openai_client_chat_completion(openai_client: openai.OpenAI, client: httpx.Client):
    raw = openai_client.chat.completions.with_raw_response.create(
        model="raner-default",
        messages=[{"role": "system", "content": "extract entities"}, {"role": "user", "content": README_TEXT}],
    )
    completion = raw.parse()
    assert completion.object == "chat.completion" and completion.model == "raner-default"
    assert completion.choices[0].finish_reason == "stop"
    entities = json.loads(completion.choices[0].message.content or "")
    assert [(e["type"], e["span"]) for e in entities] == [("ORG", "阿里巴巴集团"), ("PER", "马云"), ("LOC", "杭州")]
    assert completion.usage is not None and completion.usage.prompt_tokens == len(README_TEXT) + 2
    assert raw.headers["x-prompt-tokens"] == str(completion.usage.prompt_tokens)


def test_openai_content_parts_and_streaming(openai_client: openai.OpenAI):
    parts = openai_client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": [{"type": "text", "text": README_TEXT}]}]
    )
    stream = openai_client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": README_TEXT}], stream=True
    )
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert json.loads(streamed) == json.loads(parts.choices[0].message.content or "")


def test_openai_models_list(openai_client: openai.OpenAI):
    assert [m.id for m in openai_client.models.list()] == ["raner-default", "tiny", "narrow", "broken"]


def test_openai_errors_are_openai_error_objects(openai_client: openai.OpenAI, client: httpx.Client):
    with pytest.raises(openai.NotFoundError) as missing:
        openai_client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}])
    assert missing.value.code == "model_not_found" and "raner-default" in missing.value.message
    with pytest.raises(openai.UnprocessableEntityError) as no_messages:
        openai_client.chat.completions.create(model="tiny", messages=[])
    assert no_messages.value.body["param"] == "messages"  # type: ignore[index]
    with pytest.raises(openai.APIStatusError) as too_long:
        openai_client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "马" * 6000}])
    assert too_long.value.status_code == 413
    response = client.post("/v1/chat/completions", content="{", headers={"content-type": "application/json"})
    assert response.status_code == 422 and set(response.json()["error"]) == {"message", "type", "param", "code"}


# --- vLLM /pooling -------------------------------------------------------------------------------------------------


def test_pooling_token_classify_like_vllm(client: httpx.Client):
    labels = 13  # MSRA BMES: O + 4 x 3 types
    response = client.post("/pooling", json={"model": "raner-default", "encoding_format": "json",
                                             "task": "token_classify",
                                             "messages": [{"role": "user", "content": README_TEXT}]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list" and body["id"].startswith("pool-") and body["model"] == "raner-default"
    [item] = body["data"]
    assert item["object"] == "pooling" and item["index"] == 0
    rows = item["data"]
    assert len(rows) == len(README_TEXT) + 2 and all(len(row) == labels for row in rows)
    assert all(abs(sum(row) - 1) < 1e-4 for row in rows)
    assert body["usage"]["prompt_tokens"] == len(rows)
    assert [(e["type"], e["span"]) for e in item["entities"]] == [
        ("ORG", "阿里巴巴集团"), ("PER", "马云"), ("LOC", "杭州")
    ]


def test_pooling_input_list_and_model_header(client: httpx.Client):
    response = client.post("/pooling", json={"input": [README_TEXT, ""]}, headers={"X-Model": "tiny"})
    assert response.status_code == 200 and response.json()["model"] == "tiny"
    first, empty = response.json()["data"]
    assert len(first["data"]) == len(README_TEXT) + 2 and len(empty["data"]) == 2 and empty["entities"] == []


def test_pooling_errors(client: httpx.Client):
    assert client.post("/pooling", json={"input": "x", "task": "embed"}).status_code == 400
    both = client.post("/pooling", json={"input": "x", "messages": [{"role": "user", "content": "y"}]})
    assert both.status_code == 422 and both.json()["error"]["param"] == "input"
    unknown = client.post("/pooling", json={"input": "x"}, headers={"X-Model": "bert"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"


# --- operations ---------------------------------------------------------------------------------------------------


def test_health_and_ready(client: httpx.Client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["version"]
    assert [m["name"] for m in health["models"]] == ["raner-default", "tiny", "narrow", "broken"]
    assert all(m["ready"] and m["pool"]["size"] >= 1 for m in health["models"])
    assert client.get("/ready").json() == {"ready": True, "draining": False, "loading": [], "failed": {}}


def test_metrics_move_when_requests_are_served(client: httpx.Client):
    before = client.get("/metrics").text
    for _ in range(3):
        entities_of(client, README_TEXT, "tiny")
    client.post("/ner", json={"text": "x", "model": "nope"})
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    served = {"route": "/ner", "model": "tiny", "status": "200"}
    assert metric(text, "raner_requests_total", **served) - metric(before, "raner_requests_total", **served) == 3
    assert metric(text, "raner_requests_total", route="/ner", status="404") >= 1
    assert metric(text, "raner_queue_wait_seconds_count", model="tiny") >= 3
    assert metric(text, "raner_batch_size_count", model="tiny") >= 3
    assert metric(text, "raner_request_duration_seconds_count", route="/ner") >= 3
    assert metric(text, "raner_pool_size", model="raner-default") == 2
    assert metric(text, "raner_model_ready", model="tiny") == 1
    assert "raner_pool_in_use" in text and "raner_inference_errors_total" in text


def test_openapi_docs_describe_every_route(client: httpx.Client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/ner", "/ner/batch", "/v1/chat/completions", "/v1/models", "/pooling", "/health", "/ready",
                 "/metrics"):
        assert path in paths
    assert {"413", "422", "429", "503"} <= set(paths["/ner"]["post"]["responses"])
