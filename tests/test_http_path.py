"""The HTTP path of issue 21 against a real server process: answers serialised by orjson are, field for field and
in order, what the documented response models give; every request is one JSON access-log line (or none, with
`--access-log off`); request ids and headers come from the pure ASGI middleware."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from raner_pool.server.schemas import BatchNERResponse, NERResponse

from .server_process import STOP_AT_ONCE, RunningServer, running_server

TEXT = "2023年11月2日晚上8点，腾讯总裁刘炽平在深圳宣布追加投资2.8亿美元。"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("http-path") / "models.toml"
    path.write_text(f'{STOP_AT_ONCE}\n[models.default]\nmodel = "default"\npool_size = 1\n', encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server(config: Path) -> Iterator[RunningServer]:
    with running_server(config, config.with_name("server.log")) as running:
        yield running


def keys_in_order(value: Any) -> Any:
    """The JSON value with every object turned into its (key, value) pairs in order: equality then checks order."""
    if isinstance(value, dict):
        return [(k, keys_in_order(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [keys_in_order(v) for v in value]
    return value


@pytest.mark.parametrize(("path", "body", "model"), [
    ("/ner", {"text": TEXT}, NERResponse),
    ("/ner?format=hf", {"text": TEXT}, NERResponse),
    ("/ner/batch", {"texts": [TEXT, "", "马云在杭州"]}, BatchNERResponse),
])
def test_answers_are_the_documented_models_field_for_field_and_in_order(
    server: RunningServer, path: str, body: dict[str, Any], model: type[BaseModel]
):
    response = httpx.post(server.url + path, json=body, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    sent = json.loads(response.content)
    documented = model.model_validate(sent).model_dump(mode="json")
    assert keys_in_order(sent) == keys_in_order(documented)
    assert response.content == json.dumps(sent, ensure_ascii=False, separators=(",", ":")).encode()  # Starlette's


def test_every_request_is_one_json_access_log_line(server: RunningServer):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        answers = [client.post("/ner", json={"text": TEXT}), client.post("/ner/batch", json={"texts": ["a", "b"]}),
                   client.post("/ner", json={"text": 5}), client.get("/nowhere"),
                   client.post("/ner", json={"text": "x"}, headers={"X-Request-ID": "caller-chosen-1"})]
    assert [a.status_code for a in answers] == [200, 200, 422, 404, 200]
    ids = [a.headers["x-request-id"] for a in answers]
    assert ids[-1] == "caller-chosen-1" and len(set(ids)) == len(ids)
    lines = {}
    for _ in range(50):  # the writer thread writes every 50 ms
        lines = {record["id"]: record for record in access_lines(server.log_text())}
        if set(ids) <= set(lines):
            break
        httpx.get(server.url + "/health")
    first, batch, invalid, missing, chosen = (lines[i] for i in ids)
    assert {k: first[k] for k in ("method", "route", "path", "status", "model", "texts")} == {
        "method": "POST", "route": "/ner", "path": "/ner", "status": 200, "model": "default", "texts": 1}
    assert first["ms"] > 0 and first["ts"][:2] == "20"
    assert (batch["route"], batch["texts"]) == ("/ner/batch", 2)
    assert (invalid["status"], invalid["texts"]) == (422, 0)
    assert (missing["route"], missing["status"]) == ("unmatched", 404)
    assert chosen["status"] == 200


def test_access_log_off(config: Path):
    log = config.with_name("quiet.log")
    with running_server(config, log, args=["--access-log", "off"]) as quiet:
        answer = httpx.post(quiet.url + "/ner", json={"text": TEXT}, timeout=60)
        assert answer.status_code == 200
        assert answer.headers["x-request-id"] and answer.headers["x-model-version"]
        log_text = quiet.log_text()
    assert access_lines(log_text) == []


def access_lines(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith('{"ts":')]
