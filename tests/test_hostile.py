"""Hostile clients against a real server process: huge bodies, bad bytes, idle and slow sockets, API keys, CORS.

Two servers of the tiny model: a default one (no keys, no CORS, the default body limit), and a guarded one with API
keys from RANER_POOL_API_KEYS and one CORS origin.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import openai
import psutil
import pytest

from raner_pool.model_specs import ModelSpec, load_specs
from raner_pool.server.config import ServerConfig, load_server_config

from .server_process import STOP_AT_ONCE, RunningServer, running_server

BODY_LIMIT = ServerConfig().body_limit([ModelSpec("tiny")])
"""The default limit, for a model with default max_text_chars and max_batch_texts."""
API_KEY = "sk-test-0123456789"
ORIGIN = "https://app.example.com"
TEXT = "马云在杭州"
MB = 1024 * 1024


def write_config(path: Path, model_dir: Path, server_table: str) -> Path:
    path.write_text(f'[models.tiny]\nmodel = "{model_dir}"\npool_size = 2\n\n{STOP_AT_ONCE}{server_table}\n',
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("hostile")
    config = write_config(root / "models.toml", tiny_model_dir, "")
    with running_server(config, root / "server.log") as running:
        yield running


@pytest.fixture(scope="module")
def guarded_config(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("guarded") / "models.toml", tiny_model_dir,
                        f'cors_origins = ["{ORIGIN}"]')


@pytest.fixture(scope="module")
def guarded(guarded_config: Path) -> Iterator[RunningServer]:
    env = {"RANER_POOL_API_KEYS": f"other-key, {API_KEY}"}
    with running_server(guarded_config, guarded_config.with_name("server.log"), env=env) as running:
        yield running


def rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


# --- body size ----------------------------------------------------------------------------------------------------


def chunks(total: int, size: int = MB) -> Iterator[bytes]:
    """`total` bytes of a JSON-looking body, made on the fly: the test never holds them."""
    yield b'{"text": "'
    piece = b"x" * size
    for _ in range(total // size):
        yield piece


@pytest.mark.parametrize("honest_length", [False, True], ids=["chunked", "content-length"])
def test_a_200_mb_body_is_refused_at_once_without_being_read(server: RunningServer, honest_length: bool) -> None:
    total = 200 * MB
    headers = {"content-type": "application/json"}
    if honest_length:
        headers["content-length"] = str(total + len(b'{"text": "'))
    before = rss(server.pid)
    began = time.monotonic()
    response = httpx.post(f"{server.url}/ner", content=chunks(total), headers=headers, timeout=30)
    elapsed = time.monotonic() - began
    grown = rss(server.pid) - before
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "body_too_large" and str(BODY_LIMIT) in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    assert elapsed < 1.0, f"413 after {elapsed:.2f} s"
    assert grown < 50 * MB, f"server RSS grew by {grown / MB:.0f} MB"
    streamed = iter([b'{"text": ', f'"{TEXT}"}}'.encode()])  # a chunked body under the limit still works
    response = httpx.post(f"{server.url}/ner", content=streamed, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text


def test_the_default_limit_comes_from_the_models(guarded: RunningServer, guarded_config: Path) -> None:
    limit = load_server_config(guarded_config, env={}).body_limit(load_specs(guarded_config))
    address = urlsplit(guarded.url)
    with socket.create_connection((address.hostname or "127.0.0.1", address.port or 80), timeout=5) as sock:
        sock.sendall(f"POST /ner HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\nContent-Type: "
                     f"application/json\r\nContent-Length: {limit + 1}\r\n\r\n{{".encode())
        answer = b"".join(iter(lambda: sock.recv(65536), b"")).decode()  # the server closes after a 413
    assert answer.startswith("HTTP/1.1 413 ") and f"limit of {limit} bytes" in answer, answer


# --- bad bytes ----------------------------------------------------------------------------------------------------

ROUTES = {  # each route's body with {} where a text goes
    "/ner": b'{"text": {}}',
    "/ner/batch": b'{"texts": [{}]}',
    "/v1/chat/completions": b'{"model": "tiny", "messages": [{"role": "user", "content": {}}]}',
    "/pooling": b'{"model": "tiny", "task": "token_classify", "input": {}}',
}
JSON = "application/json"
CASES = {  # name: (text value or whole body, content type, status, code, words the message must contain)
    "valid": (b'"' + TEXT.encode() + b'"', JSON, 200, None, ""),
    "charset": (b'"' + TEXT.encode() + b'"', "application/json; charset=UTF-8", 200, None, ""),
    "invalid utf-8": (b'"\xff\xfe\xed\xa0\x80"', JSON, 422, "invalid_utf8", "UTF-8"),
    "lone surrogate": (b'"ok \\ud800 ok"', JSON, 422, "invalid_unicode", "surrogate"),
    "NaN": (b"NaN", JSON, 422, "invalid_json", "NaN"),
    "-Infinity": (b"-Infinity", JSON, 422, "invalid_json", "Infinity"),
    "1e999": (b"1e999", JSON, 422, "invalid_json", "finite"),
    "1000 deep": (b"[" * 1000 + b"]" * 1000, JSON, 422, "json_too_deep", "nested deeper than 32"),
    "33 deep": (b"[" * 33 + b"]" * 33, JSON, 422, "json_too_deep", "nested deeper than 32"),
    "text/plain": (b'"x"', "text/plain", 415, "unsupported_media_type", "application/json"),
    "form": (b'"x"', "application/x-www-form-urlencoded", 415, "unsupported_media_type", "application/json"),
    "latin-1": (b'"x"', "application/json; charset=latin-1", 415, "unsupported_media_type", "UTF-8"),
    "no content type": (b'"x"', None, 415, "unsupported_media_type", "Content-Type"),
    "truncated": (b'"x', JSON, 422, "invalid_request", "not valid JSON"),
    "empty": (b"", JSON, 422, "invalid_request", "empty"),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("route", ROUTES)
def test_bad_bytes_are_4xx_naming_the_problem(server: RunningServer, route: str, case: str) -> None:
    value, content_type, status, code, words = CASES[case]
    body = ROUTES[route].replace(b"{}", value, 1) if case != "empty" else b""
    headers = {} if content_type is None else {"content-type": content_type}
    response = httpx.post(f"{server.url}{route}", content=body, headers=headers, timeout=30)
    assert content_type is not None or "content-type" not in response.request.headers
    assert response.status_code == status, response.text
    if status == 200:
        return
    error = response.json()["error"]
    if route.startswith("/v1/") or route == "/pooling":
        assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    else:
        assert response.json()["success"] is False and error["request_id"] == response.headers["x-request-id"]
    assert error["code"] == code and words in error["message"], error
    assert response.headers["x-request-id"]


def test_a_get_with_a_body_and_unknown_routes_still_work(server: RunningServer) -> None:
    assert httpx.request("GET", f"{server.url}/health", content=b"junk").status_code == 200
    assert httpx.post(f"{server.url}/nowhere", content=b"\xff").status_code == 404


# --- idle and slow sockets ----------------------------------------------------------------------------------------


def test_idle_and_dribbling_sockets_do_not_starve_a_request(server: RunningServer) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1024:  # this process opens 700 sockets
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    server_soft, _ = psutil.Process(server.pid).rlimit(psutil.RLIMIT_NOFILE)
    assert server_soft > 800, f"the server may open only {server_soft} files"
    address = urlsplit(server.url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    sockets: list[socket.socket] = []
    stop = threading.Event()
    header = b"POST /ner HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 4096

    def dribble(slow: list[socket.socket]) -> None:
        for byte in header:
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(bytes([byte]))
            if stop.wait(0.5):
                return

    try:
        for _ in range(600):
            sockets.append(socket.create_connection((host, port), timeout=5))
        slow = [socket.create_connection((host, port), timeout=5) for _ in range(100)]
        sockets += slow
        dribbler = threading.Thread(target=dribble, args=(slow,), daemon=True)
        dribbler.start()
        time.sleep(1.5)  # a few bytes in on every slow socket
        for _ in range(3):
            began = time.monotonic()
            response = httpx.post(f"{server.url}/ner", json={"text": TEXT}, timeout=10)
            elapsed = time.monotonic() - began
            assert response.status_code == 200, response.text
            assert elapsed < 2.0, f"/ner took {elapsed:.2f} s beside 700 open sockets"
        assert len(psutil.Process(server.pid).net_connections("tcp")) >= 700
    finally:
        stop.set()
        for sock in sockets:
            sock.close()


# --- API keys -----------------------------------------------------------------------------------------------------


def test_api_keys_guard_the_rest_routes(guarded: RunningServer) -> None:
    url = f"{guarded.url}/ner"
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": API_KEY}, {"authorization": "Bearer"}):
        response = httpx.post(url, json={"text": TEXT}, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        error = response.json()["error"]
        assert response.json()["success"] is False and error["code"] == "invalid_api_key"
        assert error["request_id"] == response.headers["x-request-id"] and API_KEY not in error["message"]
    response = httpx.post(url, json={"text": TEXT}, headers={"authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 200, response.text
    assert httpx.get(f"{guarded.url}/v1/models").status_code == 401


def test_api_keys_with_the_openai_client(guarded: RunningServer) -> None:
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": TEXT}]
    wrong = openai.OpenAI(base_url=f"{guarded.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        wrong.chat.completions.create(model="tiny", messages=messages)
    assert refused.value.code == "invalid_api_key" and refused.value.type == "invalid_request_error"
    right = openai.OpenAI(base_url=f"{guarded.url}/v1", api_key=API_KEY, max_retries=0)
    assert right.chat.completions.create(model="tiny", messages=messages).choices[0].message.content is not None


def test_probes_and_docs_need_no_key(guarded: RunningServer) -> None:
    for path in ("/health", "/ready", "/metrics", "/openapi.json"):
        assert httpx.get(f"{guarded.url}{path}").status_code == 200, path


# --- CORS ---------------------------------------------------------------------------------------------------------


def preflight(server: RunningServer, origin: str) -> httpx.Response:
    return httpx.options(f"{server.url}/ner", headers={
        "origin": origin, "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type"})


def test_no_cors_headers_by_default(server: RunningServer) -> None:
    assert "access-control-allow-origin" not in preflight(server, ORIGIN).headers
    response = httpx.post(f"{server.url}/ner", json={"text": TEXT}, headers={"origin": ORIGIN})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_cors_for_the_configured_origin_only(guarded: RunningServer) -> None:
    allowed = preflight(guarded, ORIGIN)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
    assert {"authorization", "content-type"} <= set(allowed.headers["access-control-allow-headers"].lower().split(", "))
    other = preflight(guarded, "https://evil.example.com")
    assert "access-control-allow-origin" not in other.headers
    refused = httpx.post(f"{guarded.url}/ner", json={"text": TEXT}, headers={"origin": ORIGIN})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == ORIGIN
