"""What the HTTP path serves of what the engine can do: `POST /ner` driven by wrk (a C load generator, HTTP/1.1
keep-alive) beside the same pool called in-process by as many threads, one after the other in the same run, at 1,
16 and 64 connections, for the default model and a model of RaNER base shape (random weights).

    python bench/http_path.py [--seconds 8] [--connections 1,16,64] [--models default,base-shape]

Goals (issue 21): default model >= 60% of in-process req/s at 16 and P50 at 1 <= in-process P50 + 1.5 ms; base
shape >= 90% at 16.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import base_shape_model, drive  # noqa: E402
from raner_pool import RaNERModelPool  # noqa: E402
from raner_pool.server.launch import free_port, launched  # noqa: E402

SENTENCE = "阿里巴巴集团创始人马云在杭州出席了技术峰会。"
POOL_SIZE = 2
WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"text": "%s"}'
"""
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class Row:
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float


def in_process(model: str, connections: list[int], seconds: float) -> list[Row]:
    """The pool the server builds (backend auto, POOL_SIZE instances, batching, the extra types), called by threads."""
    rows = []
    with RaNERModelPool(model, pool_size=POOL_SIZE, backend="auto") as pool:
        drive("warm", pool.predict, [SENTENCE], 4, 1.0)
        for n in connections:
            result = drive("in-process", pool.predict, [SENTENCE], n, seconds)
            rows.append(Row(n, result.rps, result.percentile(50), result.percentile(99)))
    return rows


def over_http(model: str, connections: list[int], seconds: float, scratch: Path) -> list[Row]:
    """`raner-pool serve` of the same model, its access log on (the default), loaded by wrk."""
    script = scratch / "post.lua"
    script.write_text(WRK_SCRIPT % SENTENCE, encoding="utf-8")
    port = free_port()
    command = [sys.executable, "-m", "raner_pool.cli", "serve", "--model", model, "--port", str(port),
               "--pool-size", str(POOL_SIZE)]
    rows = []
    with launched(command, port, scratch / f"server-{port}.log") as url:
        wrk(url, script, 4, 1.0)  # warm
        for n in connections:
            rows.append(wrk(url, script, n, seconds))
    return rows


def wrk(url: str, script: Path, connections: int, seconds: float) -> Row:
    threads = min(2, connections)  # wrk: at least one connection per thread
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
               "-s", str(script), f"{url}/ner"]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    if re.search(r"Non-2xx or 3xx responses: \d+", output) or "Socket errors" in output:
        raise RuntimeError(f"wrk saw failed requests:\n{output}")
    return Row(connections, float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
               _latency(output, "50%"), _latency(output, "99%"))


def _latency(output: str, percentile: str) -> float:
    match = re.search(rf"^\s+{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    assert match is not None, output
    return float(match.group(1)) * UNITS_MS[match.group(2)]


def table(name: str, local: list[Row], http: list[Row]) -> str:
    lines = [f"\n{name}: `POST /ner` (wrk) against `pool.predict` in-process, {len(SENTENCE)}-character sentence\n",
             "| connections | in-process req/s | HTTP req/s | HTTP / in-process | in-process P50 / P99 (ms) "
             "| HTTP P50 / P99 (ms) | P50 added (ms) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for a, b in zip(local, http, strict=True):
        lines.append(f"| {a.connections} | {a.rps:.0f} | {b.rps:.0f} | {b.rps / a.rps:.0%} | {a.p50_ms:.2f} / "
                     f"{a.p99_ms:.2f} | {b.p50_ms:.2f} / {b.p99_ms:.2f} | {b.p50_ms - a.p50_ms:+.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="default,base-shape",
                        help="models to measure: names or dirs, and 'base-shape' for RaNER base shape")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", default="1,16,64")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian package wrk; make test installs it)")
    connections = [int(n) for n in args.connections.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        for name in args.models.split(","):
            model = str(base_shape_model(scratch)) if name == "base-shape" else name
            local = in_process(model, connections, args.seconds)
            http = over_http(model, connections, args.seconds, scratch)
            print(table(name, local, http), flush=True)


if __name__ == "__main__":
    main()
