"""`raner-pool serve --workers 2` as real processes: both workers answer, /metrics sums them, a reload asked of
one reaches all, SIGTERM drains all, a worker that dies is replaced."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import httpx
import psutil
import pytest

from raner_pool.server.launch import free_port, launched

from .server_process import metric

ADMIN = {"Authorization": "Bearer workers-admin"}
LONG_TEXT = "据说，刘德华平时生活在香港，但是他喜欢去北京钓鱼。" * 300


def write_registry(path: Path, model: Path) -> Path:
    path.write_text(f'[server]\ngrace_s = 1.0\n\n[models.m]\nmodel = "{model}"\npool_size = 1\nmax_waiting = 64\n'
                    "request_timeout_s = 120\n", encoding="utf-8")
    return path


@pytest.fixture
def workers(tiny_model_dir: Path, tmp_path: Path) -> Iterator[tuple[str, psutil.Process, Path]]:
    config = write_registry(tmp_path / "models.toml", tiny_model_dir)
    port = free_port()
    command = [sys.executable, "-m", "raner_pool.cli", "serve", "--config", str(config), "--port", str(port),
               "--workers", "2"]
    env = {**os.environ, "RANER_POOL_ADMIN_TOKEN": "workers-admin"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with launched(command, port, tmp_path / "server.log", env=env) as url:
        [supervisor] = [p for p in psutil.Process().children() if str(port) in p.cmdline()]
        wait_for_workers(url, 2)
        yield url, supervisor, config


def health_of_each(url: str, tries: int = 60) -> dict[int, dict]:  # type: ignore[type-arg]
    """/health from as many workers as answer in `tries` fresh connections, by pid."""
    seen = {}
    for _ in range(tries):
        body = httpx.get(f"{url}/health", timeout=10, headers={"Connection": "close"}).json()
        seen[body["pid"]] = body
    return seen


def wait_for_workers(url: str, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(health_of_each(url, 20)) < count or httpx.get(f"{url}/ready", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, f"{count} workers did not all answer"
        time.sleep(0.3)


def test_two_workers_answer_and_metrics_cover_both(workers: tuple[str, psutil.Process, Path]):
    url, supervisor, _ = workers
    seen = health_of_each(url)
    assert set(seen) == {child.pid for child in supervisor.children()}
    assert all(body["workers"] == 2 for body in seen.values())
    for _ in range(30):
        response = httpx.post(f"{url}/ner", json={"text": "马云在杭州"}, headers={"Connection": "close"}, timeout=30)
        assert response.status_code == 200
    time.sleep(2.5)  # pool gauges are sampled every second
    for _ in range(4):  # whichever worker answers the scrape reports the whole server
        text = httpx.get(f"{url}/metrics", headers={"Connection": "close"}, timeout=10).text
        assert metric(text, "raner_requests_total", route="/ner", status="200") == 30
        assert metric(text, "raner_pool_size", model="m") == 2, "one instance in each of two workers"
        assert metric(text, "raner_model_ready", model="m") == 1


def test_a_reload_asked_of_one_worker_reaches_all(
    workers: tuple[str, psutil.Process, Path], other_model_dir: Path
):
    url, _, config = workers
    before = {body["models"][0]["version"] for body in health_of_each(url).values()}
    write_registry(config, other_model_dir)
    response = httpx.post(f"{url}/admin/reload", headers=ADMIN, timeout=60)
    assert response.status_code == 200, response.text
    new = response.json()["versions"]["m"]
    assert new not in before
    deadline = time.monotonic() + 30
    while {body["models"][0]["version"] for body in health_of_each(url).values()} != {new}:
        assert time.monotonic() < deadline, "the other worker did not switch"
        time.sleep(0.5)


def test_sigterm_drains_every_worker(workers: tuple[str, psutil.Process, Path]):
    url, supervisor, _ = workers
    children = supervisor.children()
    with ThreadPoolExecutor(8) as clients:
        in_flight = [clients.submit(httpx.post, f"{url}/ner", json={"text": LONG_TEXT}, timeout=120,
                                    headers={"Connection": "close"}) for _ in range(8)]
        time.sleep(0.5)
        supervisor.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert httpx.get(f"{url}/ready", timeout=10).status_code == 503
        assert [f.result().status_code for f in in_flight] == [200] * 8
    assert supervisor.wait(timeout=60) == 0
    assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children)


def test_a_worker_that_dies_is_replaced(workers: tuple[str, psutil.Process, Path]):
    url, supervisor, _ = workers
    victim = supervisor.children()[0]
    victim.kill()
    deadline = time.monotonic() + 60
    while True:
        pids = {child.pid for child in supervisor.children()}
        if len(pids) == 2 and victim.pid not in pids:
            break
        assert time.monotonic() < deadline, "no replacement worker"
        time.sleep(0.3)
    wait_for_workers(url, 2)


@pytest.mark.parametrize(("name", "to_group"), [("SIGTERM", False), ("SIGTERM", True), ("SIGINT", True)])
def test_a_stop_drops_no_request_however_it_is_signalled(tiny_model_dir: Path, tmp_path: Path, name: str,
                                                        to_group: bool):
    """16 long requests in flight across 4 workers, then SIGTERM to the supervisor, or SIGTERM or SIGINT to the
    whole process group (systemd's KillMode=control-group, Ctrl+C): each worker gets the group's signal and the
    supervisor's copy, and must not take the second for a forceful stop."""
    answers = stop_while_serving(tiny_model_dir, tmp_path, signal.Signals[name], to_group, 16)
    assert answers == [200] * 16


def stop_while_serving(model: Path, folder: Path, sig: signal.Signals, to_group: bool, requests: int) -> list[int]:
    """Start `--workers 4` in a process group of its own, put `requests` long requests in flight, signal it, and
    return each request's status (0: the connection closed without an answer)."""
    config = write_registry(folder / "models.toml", model)
    port = free_port()
    command = [sys.executable, "-m", "raner_pool.cli", "serve", "--config", str(config), "--port", str(port),
               "--workers", "4", "--access-log", "off"]
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    with launched(command, port, folder / "server.log", env=env, new_session=True) as url:
        [supervisor] = [p for p in psutil.Process().children() if str(port) in p.cmdline()]
        wait_for_workers(url, 4)

        def post() -> int:
            try:
                return httpx.post(f"{url}/ner", json={"text": LONG_TEXT}, timeout=120,
                                  headers={"Connection": "close"}).status_code
            except httpx.TransportError:
                return 0

        try:
            with ThreadPoolExecutor(requests) as clients:
                in_flight = [clients.submit(post) for _ in range(requests)]
                time.sleep(0.5)
                assert not all(f.done() for f in in_flight), "the requests are in flight when the signal comes"
                if to_group:
                    os.killpg(supervisor.pid, sig)  # its own session: the group id is its pid
                else:
                    supervisor.send_signal(sig)
                answers = [f.result() for f in in_flight]
            supervisor.wait(timeout=60)
        finally:
            with suppress(ProcessLookupError):
                os.killpg(supervisor.pid, signal.SIGKILL)  # nothing left behind, whatever happened
    return answers
