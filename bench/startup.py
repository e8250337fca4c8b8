"""Seconds from `raner-pool serve` (what `make serve` runs) to /ready answering 200: a first start, which times
backend=auto and the batch budget, then restarts that reuse both (raner_pool.choices.store), and one `--retune`.

    python bench/startup.py [--model default] [--restarts 2]

Each start gets a fresh port; all share one cache dir made for this run, so the first start is a cold one.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raner_pool.server.launch import free_port, launched  # noqa: E402


def start_once(model: str, cache: Path, log: Path, extra: list[str]) -> tuple[float, str, str]:
    """Seconds to ready, and how /health says the runtime choice and the batch budget were made."""
    port = free_port()
    command = [sys.executable, "-m", "raner_pool.cli", "serve", "--model", model, "--port", str(port), *extra]
    env = {**os.environ, "RANER_POOL_CACHE": str(cache)}
    began = time.perf_counter()
    with launched(command, port, log, env=env) as url:
        seconds = time.perf_counter() - began
        [entry] = httpx.get(f"{url}/health", timeout=10).json()["models"]
    return seconds, entry["backend_choice"]["timed"], entry["batch_budget"]["timed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--restarts", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="raner-startup-") as scratch:
        cache, log = Path(scratch) / "cache", Path(scratch) / "server.log"
        runs = [("first start", [])] + [(f"restart {i + 1}", []) for i in range(args.restarts)]
        runs.append(("restart --retune", ["--retune"]))
        results = []
        for label, extra in runs:
            seconds, runtime, budget = start_once(args.model, cache, log, extra)
            results.append((label, seconds, runtime, budget))
    print("| start | seconds to /ready | runtime choice | batch budget |")
    print("| --- | --- | --- | --- |")
    for label, seconds, runtime, budget in results:
        print(f"| {label} | {seconds:.1f} | {runtime} | {budget} |")
    cold = results[0][1]
    warm = min(seconds for label, seconds, _, _ in results if label.startswith("restart ") and "retune" not in label)
    print(f"\nrestart / first start: {warm / cold:.2f}x the time ({cold - warm:.1f} s saved)")


if __name__ == "__main__":
    main()
