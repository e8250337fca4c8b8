"""Slow and idle clients against a real server with its default deadlines (10 s for headers, 30 s between body
chunks): CONNECTIONS connections dribbling one header byte a second plus IDLE ones that send nothing, while a lone
client calls /ner back to back. Prints the lone client's latency, when the server closed the others, and the
server's file descriptors before, during and after.

    python loadtest/slow_clients.py [--dribblers 1000] [--idle 500] [--model default]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raner_pool.server.config import ServerConfig  # noqa: E402
from raner_pool.server.launch import free_port, launched  # noqa: E402

HEADER_S = ServerConfig().header_timeout_s
SENTENCE = "阿里巴巴集团创始人马云在杭州出席了技术峰会。"


async def hold(port: int, dribble: bool, opened: float) -> tuple[float, bytes]:
    """One connection: a header byte a second (or nothing); when the server closed it, and what it sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"POST /ner HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 200

    async def send() -> None:
        for byte in request:
            writer.write(bytes([byte]))
            await asyncio.sleep(1.0)

    sender = asyncio.create_task(send()) if dribble else None
    received = await reader.read()  # until the server closes
    closed = time.monotonic() - opened
    if sender is not None:
        sender.cancel()
    writer.close()
    return closed, received


async def crowd(port: int, dribblers: int, idle: int) -> list[tuple[float, bytes]]:
    opened = time.monotonic()
    tasks = [hold(port, i < dribblers, opened) for i in range(dribblers + idle)]
    return await asyncio.gather(*tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dribblers", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=500)
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as scratch:
        port = free_port()
        command = [sys.executable, "-m", "raner_pool.cli", "serve", "--model", args.model, "--port", str(port),
                   "--access-log", "off"]
        with launched(command, port, Path(scratch) / "server.log") as url:
            [server] = [p for p in psutil.Process().children() if str(port) in p.cmdline()]
            baseline = server.num_fds()
            results: list[tuple[float, bytes]] = []
            runner = threading.Thread(target=lambda: results.extend(asyncio.run(crowd(port, args.dribblers,
                                                                                      args.idle))))
            runner.start()
            time.sleep(1.0)
            during = server.num_fds()
            latencies = []
            with httpx.Client(base_url=url, timeout=30) as client:
                stop = time.monotonic() + HEADER_S + 3
                while time.monotonic() < stop:
                    began = time.perf_counter()
                    assert client.post("/ner", json={"text": SENTENCE}).status_code == 200
                    latencies.append((time.perf_counter() - began) * 1000)
            runner.join(timeout=60)
            time.sleep(1.0)
            after = server.num_fds()
            cut = httpx.get(f"{url}/metrics", timeout=10).text
    closed = np.array([c for c, _ in results])
    answered_408 = sum(r.startswith(b"HTTP/1.1 408") for _, r in results[: args.dribblers])
    print(f"{args.dribblers} connections dribbling a header byte a second + {args.idle} idle; header deadline "
          f"{HEADER_S:g} s\n")
    print(f"- lone client: {len(latencies)} /ner calls meanwhile, P50 {np.percentile(latencies, 50):.1f} ms, "
          f"P99 {np.percentile(latencies, 99):.1f} ms, max {max(latencies):.1f} ms")
    print(f"- closed by the server: {len(results)} of {args.dribblers + args.idle}, the last {closed.max():.2f} s "
          f"after opening (median {np.median(closed):.2f} s); dribblers answered 408: {answered_408}")
    print(f"- server file descriptors: {baseline} before, {during} during, {after} after")
    counted = [line for line in cut.splitlines() if line.startswith("raner_slow_clients_closed_total")]
    print(f"- /metrics: {'; '.join(counted)}")


if __name__ == "__main__":
    main()
