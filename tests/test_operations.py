"""Operations against real server processes: model updates under load, admin routes, SIGHUP, the SIGTERM drain,
and a Redis cache that goes away and comes back."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from raner_pool import DEFAULT_MODEL_DIR, RaNERModelPool
from raner_pool.modeldir import EncoderShape, build_random_model

from .conftest import start_redis, stop
from .server_process import RunningServer, metric, running_server

ADMIN_TOKEN = "admin-secret-for-tests"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TEXTS = [
    "阿里巴巴集团创始人马云在杭州出席了技术峰会。",
    "据说，刘德华平时生活在香港，但是他喜欢去北京钓鱼。",
    "国务院总理李克强在中南海会见了联合国秘书长古特雷斯。",
    "新华社北京十二月一日电",
]


def write_registry(path: Path, models: dict[str, str], server: str = "grace_s = 1.0", **extra: str) -> Path:
    tables = [f"[server]\n{server}\n"]
    for name, model in models.items():
        # one runtime, so the server's answers can be compared with a library pool's (see expected_answers)
        tables.append(f'[models.{name}]\nmodel = "{model}"\npool_size = 2\nmax_waiting = 256\nbackend = "modelscope"\n'
                      f'{extra.get(name, "")}')
    path.write_text("\n".join(tables), encoding="utf-8")
    return path


def spans(entities: list[Any]) -> list[tuple[str, int, int]]:
    return [(e["type"], e["start"], e["end"]) if isinstance(e, dict) else (e.type, e.start, e.end) for e in entities]


@pytest.fixture(scope="module")
def random_default_shape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model's vocab and shape with random weights: as large as the default, other answers."""
    vocab = (DEFAULT_MODEL_DIR / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return build_random_model(tmp_path_factory.mktemp("random") / "model", vocab, EncoderShape(), seed=3)


@pytest.fixture(scope="module")
def answers(random_default_shape: Path) -> dict[str, list[list[tuple[str, int, int]]]]:
    """What each of the two model versions answers for TEXTS, keyed by version."""
    expected = {}
    for model in ("default", str(random_default_shape)):
        with RaNERModelPool(model, pool_size=1) as pool:
            expected[pool.version] = [spans(r) for r in pool.predict_batch(TEXTS)]
    assert len(expected) == 2 and len(set(map(str, expected.values()))) == 2, "the two versions answer differently"
    return expected


@pytest.fixture(scope="module")
def ops_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Path]]:
    root = tmp_path_factory.mktemp("ops")
    config = write_registry(root / "models.toml", {"m": "default"})
    with running_server(config, root / "server.log", env={"RANER_POOL_ADMIN_TOKEN": ADMIN_TOKEN}) as server:
        yield server, config


def test_models_switch_five_times_under_load_with_no_failed_request(
    ops_server: tuple[RunningServer, Path], random_default_shape: Path, answers: dict[str, Any]
):
    server, config = ops_server
    models = ["default", str(random_default_shape)]
    stop_clients = threading.Event()
    failures: list[str] = []
    served: dict[str, int] = dict.fromkeys(answers, 0)

    def client(offset: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for i in range(offset, 10**9):
                if stop_clients.is_set():
                    return
                index = i % len(TEXTS)
                response = http.post("/ner", json={"text": TEXTS[index]})
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                    continue
                body = response.json()
                version = body["model_version"]
                if response.headers.get("X-Model-Version") != version:
                    failures.append(f"header {response.headers.get('X-Model-Version')} != body {version}")
                elif version not in answers or spans(body["data"]) != answers[version][index]:
                    failures.append(f"version {version} answered {body['data']} for {TEXTS[index]}")
                else:
                    served[version] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    rss_after_switch = []
    try:
        for switch in range(5):
            time.sleep(1.0)
            write_registry(config, {"m": models[(switch + 1) % 2]})
            response = httpx.post(f"{server.url}/admin/reload", headers=AUTH, timeout=120)
            assert response.status_code == 200, response.text
            [reloaded] = response.json()["reloaded"]
            assert reloaded["model"] == "m" and reloaded["old_version"] != reloaded["new_version"]
            time.sleep(2.0)  # the old pool closes after its last request and hands its memory back
            rss_after_switch.append(psutil.Process(server.pid).memory_info().rss)
    finally:
        stop_clients.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not failures, failures[:5]
    assert all(count > 0 for count in served.values()), served
    growth = rss_after_switch[-1] / rss_after_switch[0]
    assert growth <= 1.10, f"RSS after switch 5 is {growth:.2f}x after switch 1: {rss_after_switch}"


def test_a_reload_of_a_broken_dir_keeps_the_old_model_and_says_why(
    ops_server: tuple[RunningServer, Path], tmp_path: Path
):
    server, config = ops_server
    with httpx.Client(base_url=server.url, timeout=120) as http:
        write_registry(config, {"m": "default"})
        assert http.post("/admin/reload", headers=AUTH).status_code == 200
        version = http.get("/health").json()["models"][0]["version"]
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "configuration.json").write_text("{not json", encoding="utf-8")
        write_registry(config, {"m": str(broken)})
        response = http.post("/admin/reload", headers=AUTH)
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "reload_failed"
        assert f"version {version} still serves" in response.json()["error"]["message"]
        ner = http.post("/ner", json={"text": TEXTS[0]})
        assert ner.status_code == 200 and ner.json()["model_version"] == version
        [model] = http.get("/health").json()["models"]
        assert model["version"] == version and model["error"] and model["last_reload"]["error"]
        assert http.get("/health").json()["status"] == "degraded"
        assert metric(http.get("/metrics").text, "raner_model_load_failures_total", model="m") >= 1
        assert metric(http.get("/metrics").text, "raner_model_info", model="m", version=version) == 1

        one = http.post("/admin/models/m/reload", headers=AUTH)  # from the settings that serve: the old dir
        assert one.status_code == 200 and one.json()["changed"] is False and one.json()["new_version"] == version
        assert http.post("/admin/models/nope/reload", headers=AUTH).status_code == 404
        config.write_text("[models.m\n", encoding="utf-8")
        bad_file = http.post("/admin/reload", headers=AUTH)
        assert bad_file.status_code == 400 and "nothing changed" in bad_file.json()["error"]["message"]
        write_registry(config, {"m": "default"})
        assert http.post("/admin/reload", headers=AUTH).status_code == 200
        assert http.get("/health").json()["status"] == "ok"


def test_admin_routes_need_the_token(ops_server: tuple[RunningServer, Path]):
    server, _ = ops_server
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}):
        response = httpx.post(f"{server.url}/admin/reload", headers=headers, timeout=30)
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


def test_sighup_rereads_the_registry_and_versions_are_everywhere(
    ops_server: tuple[RunningServer, Path], tiny_model_dir: Path
):
    server, config = ops_server
    write_registry(config, {"m": "default", "tiny": str(tiny_model_dir)}, tiny='aliases = ["small"]\n')
    os.kill(server.pid, signal.SIGHUP)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        deadline = time.monotonic() + 60
        while "tiny" not in [m["id"] for m in http.get("/v1/models").json()["data"]]:
            assert time.monotonic() < deadline, server.log_text()[-2000:]
            time.sleep(0.2)
        listed = {m["id"]: m["model_version"] for m in http.get("/v1/models").json()["data"]}
        ner = http.post("/ner", json={"text": TEXTS[0], "model": "small"})
        assert ner.json()["model_version"] == ner.headers["X-Model-Version"] == listed["tiny"]
        pooling = http.post("/pooling", json={"input": TEXTS[0], "model": "tiny"})
        assert pooling.json()["model_version"] == listed["tiny"]
        chat = http.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
        assert chat.json()["system_fingerprint"] == chat.headers["X-Model-Version"] == listed["m"]

        write_registry(config, {"m": "default"})
        os.kill(server.pid, signal.SIGHUP)
        while http.post("/ner", json={"text": "x", "model": "tiny"}).status_code != 404:
            assert time.monotonic() < deadline
            time.sleep(0.2)


LONG_TEXT = "据说，刘德华平时生活在香港，但是他喜欢去北京钓鱼。" * 60


@pytest.fixture
def draining_server(tmp_path: Path) -> Iterator[RunningServer]:
    config = write_registry(tmp_path / "models.toml", {"m": "default"}, server="grace_s = 2.0\ndrain_timeout_s = 60",
                            m="request_timeout_s = 120\n")
    config.write_text(config.read_text(encoding="utf-8").replace("pool_size = 2", "pool_size = 1"), encoding="utf-8")
    with running_server(config, tmp_path / "server.log") as server:
        yield server


def test_sigterm_stops_readiness_at_once_and_drains_every_request(draining_server: RunningServer):
    server = draining_server
    process = psutil.Process(server.pid)
    with ThreadPoolExecutor(24) as clients, httpx.Client(base_url=server.url, timeout=5) as probe:
        in_flight = [clients.submit(httpx.post, f"{server.url}/ner", json={"text": LONG_TEXT}, timeout=120)
                     for _ in range(24)]
        time.sleep(1.0)
        assert not all(f.done() for f in in_flight), "the requests are still in flight when the signal comes"
        signalled = time.monotonic()
        os.kill(server.pid, signal.SIGTERM)
        time.sleep(0.2)
        ready = probe.get("/ready")
        assert ready.status_code == 503 and ready.json()["draining"] is True
        assert probe.get("/health").json()["status"] == "draining", "still accepting during the grace period"
        statuses = [f.result().status_code for f in in_flight]
    assert statuses == [200] * 24
    exit_status = process.wait(timeout=60)
    assert time.monotonic() - signalled < 2.0 + 60
    assert exit_status in (0, -signal.SIGTERM), f"exit status {exit_status}"
    assert "grace period over" in server.log_text()


def test_a_second_sigterm_ends_the_drain_at_once(draining_server: RunningServer):
    server = draining_server
    process = psutil.Process(server.pid)
    with ThreadPoolExecutor(8) as clients:
        for _ in range(8):
            clients.submit(httpx.post, f"{server.url}/ner", json={"text": LONG_TEXT * 4}, timeout=120)
        time.sleep(0.5)
        os.kill(server.pid, signal.SIGTERM)
        time.sleep(0.3)
        os.kill(server.pid, signal.SIGTERM)
        began = time.monotonic()
        process.wait(timeout=30)
        assert time.monotonic() - began < 5, "the second signal did not wait for the grace period or the drain"


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    from raner_pool.server.launch import free_port

    port = free_port()
    process = start_redis(port, tmp_path)
    yield port, process
    if process.poll() is None:
        stop(process)


def test_redis_lost_mid_run_costs_no_request_and_hits_resume(
    redis_port: tuple[int, subprocess.Popen[bytes]], tiny_model_dir: Path, tmp_path: Path
):
    port, redis_process = redis_port
    config = write_registry(tmp_path / "models.toml", {"tiny": str(tiny_model_dir)},
                            tiny=f'cache_url = "redis://127.0.0.1:{port}/0"\n')
    with running_server(config, tmp_path / "server.log") as server, httpx.Client(base_url=server.url,
                                                                                  timeout=30) as http:
        def ask_all() -> list[int]:
            return [http.post("/ner", json={"text": text}).status_code for text in TEXTS]

        def hits() -> float:
            return metric(http.get("/metrics").text, "raner_cache_hits_total", model="tiny")

        assert ask_all() == [200] * len(TEXTS) and ask_all() == [200] * len(TEXTS)
        assert hits() >= len(TEXTS)
        stop(redis_process)
        assert ask_all() == [200] * len(TEXTS), "answers without Redis"
        assert metric(http.get("/metrics").text, "raner_cache_errors_total", model="tiny") >= 1
        restarted = start_redis(port, tmp_path)
        try:
            time.sleep(1.5)  # the cache leaves Redis alone for a second after a failure
            before = hits()
            ask_all()
            ask_all()
            assert hits() >= before + len(TEXTS), "hits resume once Redis is back"
        finally:
            stop(restarted)
