"""Slow and idle clients are cut off by the server itself (raner_pool.server.read_deadlines), against a real
server process: header and body deadlines, 408 where an answer can still be sent, a count in /metrics, the file
descriptors back to where they were, and a lone client served meanwhile."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from .server_process import RunningServer, metric, running_server

HEADER_S, BODY_S = 1.0, 1.0


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("slow-clients")
    config = root / "models.toml"
    config.write_text(f'[server]\ngrace_s = 0\nheader_timeout_s = {HEADER_S}\nbody_timeout_s = {BODY_S}\n\n'
                      f'[models.m]\nmodel = "{tiny_model_dir}"\npool_size = 1\n', encoding="utf-8")
    with running_server(config, root / "server.log") as running:
        yield running


def connect(server: RunningServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed it."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received, time.monotonic()


def dribble(sock: socket.socket, data: bytes, every_s: float, stop: threading.Event) -> None:
    for byte in data:
        if stop.is_set():
            return
        try:
            sock.send(bytes([byte]))
        except OSError:
            return
        time.sleep(every_s)


def test_a_client_dribbling_its_headers_gets_408_and_is_closed(server: RunningServer):
    sock = connect(server)
    stop = threading.Event()
    began = time.monotonic()
    threading.Thread(target=dribble, args=(sock, b"POST /ner HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100, 0.2, stop),
                     daemon=True).start()
    received, closed = read_until_closed(sock)
    stop.set()
    assert received.startswith(b"HTTP/1.1 408 ") and b'"param":"headers"' in received
    assert closed - began < HEADER_S + 2


def test_an_idle_connection_is_closed_without_an_answer(server: RunningServer):
    sock = connect(server)
    began = time.monotonic()
    received, closed = read_until_closed(sock)
    assert received == b"" and closed - began < HEADER_S + 2


def test_a_body_that_stops_coming_gets_408(server: RunningServer):
    sock = connect(server)
    sock.sendall(b"POST /ner HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                 b'{"text": "')
    began = time.monotonic()
    received, closed = read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 408 ") and b'"param":"body"' in received
    assert closed - began < BODY_S + 2


def test_a_slow_but_steady_body_and_a_kept_alive_connection_are_served(server: RunningServer):
    body = b'{"text": "\xe9\xa9\xac\xe4\xba\x91\xe5\x9c\xa8\xe6\x9d\xad\xe5\xb7\x9e"}'  # 马云在杭州
    sock = connect(server)
    sock.sendall(b"POST /ner HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n")
    for i in range(0, len(body), 4):  # 8 chunks 0.4 s apart: 3 s in all, but never idle for the body deadline
        sock.sendall(body[i : i + 4])
        time.sleep(0.4)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    with httpx.Client(base_url=server.url, timeout=30) as client:  # uvicorn's keep-alive, not the header deadline
        assert client.post("/ner", json={"text": "北京"}).status_code == 200
        time.sleep(HEADER_S + 0.5)
        assert client.post("/ner", json={"text": "北京"}).status_code == 200


def test_many_slow_and_idle_clients_do_not_delay_a_lone_one_and_leave_no_descriptor(server: RunningServer):
    process = psutil.Process(server.pid)
    before = metric(httpx.get(server.url + "/metrics", timeout=10).text, "raner_slow_clients_closed_total",
                    phase="headers")
    baseline = process.num_fds()
    stop = threading.Event()
    slow = [connect(server) for _ in range(100)]
    idle = [connect(server) for _ in range(50)]
    for sock in slow:
        threading.Thread(target=dribble, args=(sock, b"GET /health HTTP/1.1\r\nHost: x\r\n" * 4, 0.3, stop),
                         daemon=True).start()
    with httpx.Client(base_url=server.url, timeout=30) as client:  # served meanwhile (P99: loadtest/slow_clients.py)
        for _ in range(20):
            assert client.post("/ner", json={"text": "马云在杭州"}).status_code == 200
            time.sleep(0.05)
    time.sleep(HEADER_S + 2)
    stop.set()
    for sock in slow + idle:
        sock.close()
    text = httpx.get(server.url + "/metrics", timeout=10, headers={"Connection": "close"}).text
    assert metric(text, "raner_slow_clients_closed_total", phase="headers") - before >= 150
    deadline = time.monotonic() + 10
    while process.num_fds() > baseline + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.num_fds() <= baseline + 2
