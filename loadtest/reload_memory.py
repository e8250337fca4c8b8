"""RSS across reloads under load, with each allocator setting, one run each: the real server on 127.0.0.1 with one
model "m" switched RELOADS times between two versions of the same shape (the embedded default model and a random
one of its vocab and shape) through POST /admin/reload while 16 clients call /ner, RSS read 2 s after each switch.
Issue 22's goal: RSS after the 10th within 5% of RSS after the 2nd (both versions seen once).

    python loadtest/reload_memory.py [--reloads 10] [--allocators glibc,arena2,jemalloc]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raner_pool import DEFAULT_MODEL_DIR  # noqa: E402
from raner_pool.modeldir import EncoderShape, build_random_model  # noqa: E402
from raner_pool.server.launch import free_port, launched  # noqa: E402

JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
ALLOCATORS = {
    "glibc": {},
    "arena2": {"MALLOC_ARENA_MAX": "2"},
    "jemalloc": {"LD_PRELOAD": str(JEMALLOC)},
}
"""Environment of each allocator setting: glibc's default (an arena per thread, up to 8 per core), glibc with
two arenas, jemalloc (Debian's libjemalloc2) preloaded."""
TEXT = "阿里巴巴集团创始人马云在杭州出席了技术峰会。"
MB = 1024 * 1024


def measure(allocator: str, versions: list[str], reloads: int, scratch: Path) -> list[float]:
    """RSS in MB after each switch."""
    config = scratch / "models.toml"
    token = secrets.token_hex(8)

    def registry(model: str) -> None:
        config.write_text(f'[server]\ngrace_s = 0\n\n[models.m]\nmodel = "{model}"\npool_size = 2\n'
                          "max_waiting = 256\n", encoding="utf-8")

    registry(versions[0])
    port = free_port()
    command = [sys.executable, "-m", "raner_pool.cli", "serve", "--config", str(config), "--port", str(port),
               "--access-log", "off"]
    env = {**os.environ, **ALLOCATORS[allocator], "RANER_POOL_ADMIN_TOKEN": token}
    after: list[float] = []
    with launched(command, port, scratch / f"server-{allocator}.log", env=env) as url:
        [server] = [p for p in psutil.Process().children() if str(port) in p.cmdline()]
        stop = threading.Event()
        failures = []

        def client() -> None:
            with httpx.Client(base_url=url, timeout=60) as http:
                while not stop.is_set():
                    if http.post("/ner", json={"text": TEXT}).status_code != 200:
                        failures.append(1)

        clients = [threading.Thread(target=client) for _ in range(16)]
        for thread in clients:
            thread.start()
        try:
            for switch in range(reloads):
                time.sleep(1.0)
                registry(versions[(switch + 1) % 2])
                response = httpx.post(f"{url}/admin/reload", headers={"Authorization": f"Bearer {token}"},
                                      timeout=300)
                assert response.status_code == 200, response.text
                time.sleep(2.0)
                after.append(server.memory_info().rss / MB)
        finally:
            stop.set()
            for thread in clients:
                thread.join(timeout=60)
        assert not failures, f"{len(failures)} failed requests"
    return after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reloads", type=int, default=10)
    parser.add_argument("--allocators", default="glibc,arena2,jemalloc")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        vocab = (DEFAULT_MODEL_DIR / "vocab.txt").read_text(encoding="utf-8").splitlines()
        other = build_random_model(scratch / "random", vocab, EncoderShape(), seed=3)
        versions = [str(DEFAULT_MODEL_DIR), str(other)]
        print(f"| allocator | RSS after each of {args.reloads} reloads (MB) | 10th / 2nd |\n| --- | --- | --- |")
        for allocator in args.allocators.split(","):
            if allocator == "jemalloc" and not JEMALLOC.exists():
                print(f"| jemalloc | not installed ({JEMALLOC}; Debian package libjemalloc2) | |")
                continue
            rss = measure(allocator, versions, args.reloads, scratch)
            print(f"| {allocator} | {', '.join(f'{r:.0f}' for r in rss)} | {rss[-1] / rss[1]:.3f}x |", flush=True)


if __name__ == "__main__":
    main()
