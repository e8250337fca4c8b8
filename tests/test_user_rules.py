"""Users' own dictionaries and patterns: matched after the model, with ids, one overlap policy (override), bad
files named by file and line, patterns that cannot hang a worker, and an edited file served after a reload."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from raner_pool import RaNERModelPool
from raner_pool.model_specs import RegistryConfigError, load_specs
from raner_pool.recognizers.user_rules import RuleFileError
from raner_pool.registry import ModelRegistry

from .server_process import STOP_AT_ONCE, running_server

TEXT = "阿里巴巴集团创始人马云在杭州出席了技术峰会，会上发布了通义千问和通义千问2.0，订单号SO-2024-0815。"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def user_entities(pool: RaNERModelPool, text: str = TEXT) -> list[tuple[str, str, str, object]]:
    return [(e.type, e.span, e.source, (e.value or {}).get("id")) for e in pool.predict(text)
            if e.source in ("dictionary", "pattern")]


def test_dictionaries_match_longest_leftmost_with_ids_and_patterns_with_types(tmp_path: Path):
    tsv = write(tmp_path / "products.tsv", "# product names\n通义千问\tPRODUCT\tqwen\n通义千问2.0\tPRODUCT\tqwen2\n")
    jsonl = write(tmp_path / "events.jsonl", json.dumps({"term": "技术峰会", "type": "EVENT", "id": 7}) + "\n")
    patterns = write(tmp_path / "orders.tsv", "SO-\\d{4}-\\d{4}\tORDER\torder-no\n")
    with RaNERModelPool("default", pool_size=1, extra_types=(), dictionaries=[tsv, jsonl],
                        patterns=[patterns]) as pool:
        assert user_entities(pool) == [
            ("EVENT", "技术峰会", "dictionary", "7"),
            ("PRODUCT", "通义千问", "dictionary", "qwen"),
            ("PRODUCT", "通义千问2.0", "dictionary", "qwen2"),
            ("ORDER", "SO-2024-0815", "pattern", "order-no"),
        ]
        assert pool.entity_types == ["PER", "LOC", "ORG", "EVENT", "ORDER", "PRODUCT"]


def test_model_entities_win_unless_the_entry_says_override(tmp_path: Path):
    plain = write(tmp_path / "plain.tsv", "杭州出席\tPHRASE\n")
    overriding = write(tmp_path / "override.tsv", "杭州出席\tPHRASE\t\toverride\n")
    with RaNERModelPool("default", pool_size=1, extra_types=(), dictionaries=[plain]) as pool:
        assert ("LOC", "杭州") in [(e.type, e.span) for e in pool.predict(TEXT)] and not user_entities(pool)
    with RaNERModelPool("default", pool_size=1, extra_types=(), dictionaries=[overriding]) as pool:
        found = [(e.type, e.span) for e in pool.predict(TEXT)]
        assert ("PHRASE", "杭州出席") in found and ("LOC", "杭州") not in found  # replaced whole, never split
        assert ("PER", "马云") in found


@pytest.mark.parametrize(("name", "content", "message"), [
    ("bad.tsv", "通义千问\tPRODUCT\n只有一列\n", "bad.tsv:2: expected 2 to 4 tab-separated fields"),
    ("bad.tsv", "通义千问\tproduct\n", "bad.tsv:1: type 'product' must be upper-case"),
    ("bad.tsv", "通义千问\tPRODUCT\tid\tmaybe\n", "bad.tsv:1: the 4th field must be 'override' or empty"),
    ("bad.jsonl", '{"term": "a", "type": "X"}\n{"term": \n', "bad.jsonl:2: not valid JSON"),
    ("bad.jsonl", '["a", "X"]\n', "bad.jsonl:1: expected a JSON object"),
])
def test_a_broken_dictionary_names_its_file_and_line(tmp_path: Path, name: str, content: str, message: str):
    with pytest.raises(RuleFileError, match=message.replace(".", r"\.")):
        RaNERModelPool("default", pool_size=1, dictionaries=[write(tmp_path / name, content)])
    with pytest.raises(RuleFileError, match="cannot read"):
        RaNERModelPool("default", pool_size=1, dictionaries=[tmp_path / "missing.tsv"])


def test_a_broken_pattern_is_refused_and_a_runaway_one_never_hangs(tmp_path: Path):
    with pytest.raises(RuleFileError, match=r"p\.tsv:2: not a valid regular expression"):
        RaNERModelPool("default", pool_size=1, patterns=[write(tmp_path / "p.tsv", "\\d+\tNUM\n(unclosed\tX\n")])
    with pytest.raises(RuleFileError, match="matches the empty string"):
        RaNERModelPool("default", pool_size=1, patterns=[write(tmp_path / "p.tsv", "a*\tX\n")])
    runaway = write(tmp_path / "runaway.tsv", "(a+)+b\tBAD\nSO-\\d+\tORDER\n")
    with RaNERModelPool("default", pool_size=1, extra_types=(), patterns=[runaway]) as pool:
        began = time.perf_counter()
        found = pool.rules.apply("a" * 200 + " SO-42", [], datetime.now().astimezone())
        assert time.perf_counter() - began < 30, "the catastrophic pattern gave up"
        assert [(e.type, e.span) for e in found] == [("ORDER", "SO-42")]
        assert pool.predict("a" * 200) is not None  # and the pool still serves


def test_an_edited_dictionary_is_a_new_version_served_after_a_reload_with_no_failed_call(tmp_path: Path):
    dictionary = write(tmp_path / "terms.tsv", "通义千问\tPRODUCT\n")
    registry_file = write(tmp_path / "models.toml", '[models.m]\nmodel = "default"\npool_size = 2\nbatching = false\n'
                                                    'extra_types = []\ndictionaries = ["terms.tsv"]\n')
    [spec] = load_specs(registry_file)
    assert spec.dictionaries == (str(dictionary.resolve()),)  # relative to the registry file
    registry = ModelRegistry.from_file(registry_file)
    registry.load_all()
    failures: list[BaseException] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                with registry.lease("m") as pool:
                    pool.predict(TEXT)
            except BaseException as error:
                failures.append(error)

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    try:
        before = registry.slot("m").version
        write(dictionary, "通义千问\tPRODUCT\n技术峰会\tEVENT\n")
        result = registry.reload_model("m")
        assert result.changed and result.new_version != before
        with registry.lease("m") as pool:
            assert ("EVENT", "技术峰会") in [(e.type, e.span) for e in pool.predict(TEXT)]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        registry.close()
    assert failures == []


def test_registry_entries_with_bad_rule_settings_are_refused(tmp_path: Path):
    bad = write(tmp_path / "models.toml", '[models.m]\nmodel = "default"\nextra_types = ["DATE"]\n')
    with pytest.raises(RegistryConfigError, match=r"models\.m\.extra_types: unknown extra type 'DATE'"):
        load_specs(bad)
    bad = write(tmp_path / "models.toml", '[models.m]\nmodel = "default"\ndictionaries = "terms.tsv"\n')
    with pytest.raises(RegistryConfigError, match=r"models\.m\.dictionaries has the wrong type"):
        load_specs(bad)


def test_an_edited_dictionary_is_served_after_an_admin_reload_under_16_http_clients(tmp_path: Path):
    dictionary = write(tmp_path / "terms.tsv", "通义千问\tPRODUCT\n")
    config = write(tmp_path / "models.toml", f'{STOP_AT_ONCE}[models.m]\nmodel = "default"\npool_size = 2\n'
                                             'max_waiting = 256\nextra_types = []\ndictionaries = ["terms.tsv"]\n')
    token = {"Authorization": "Bearer dictionary-admin"}
    with running_server(config, tmp_path / "server.log", env={"RANER_POOL_ADMIN_TOKEN": "dictionary-admin"}) as server:
        statuses: list[int] = []
        stop = threading.Event()

        def client() -> None:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                while not stop.is_set():
                    statuses.append(http.post("/ner", json={"text": TEXT}).status_code)

        threads = [threading.Thread(target=client) for _ in range(16)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1.0)
            write(dictionary, "通义千问\tPRODUCT\n技术峰会\tEVENT\tsummit\n")
            reload = httpx.post(f"{server.url}/admin/models/m/reload", headers=token, timeout=120)
            assert reload.status_code == 200, reload.text
            time.sleep(1.0)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        served = httpx.post(f"{server.url}/ner", json={"text": TEXT, "types": ["EVENT"]}).json()["data"]
        assert [(e["span"], e["source"], e["value"]["id"]) for e in served] == [("技术峰会", "dictionary", "summit")]
    assert len(statuses) > 16 and set(statuses) == {200}
