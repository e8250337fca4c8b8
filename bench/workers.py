"""Worker processes: memory of 1, 2 and 4 workers, and HTTP /ner throughput of 1 vs 2 workers at 16 and 64
clients, for the default model and a RaNER-base-shape model, all in one run.

    python bench/workers.py [--seconds 8] [--pool-size 2]

Memory is the PSS (proportional set size) summed over the supervisor and its workers: shared copy-on-write
weights count once, as the machine pays for them; RSS would count them once per process.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.over_http import measure  # noqa: E402
from bench.run import base_shape_model  # noqa: E402
from raner_pool.corpus import load_msra  # noqa: E402
from raner_pool.server.launch import free_port, launched  # noqa: E402


def server_pss_mb(port: int) -> float:
    """PSS of the server on `port`: its main process and every process under it."""
    [main] = [p for p in psutil.Process().children() if str(port) in p.cmdline()]
    processes = [main, *main.children(recursive=True)]
    return sum(p.memory_full_info().pss for p in processes) / 2**20


def serve_command(config: Path, port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "raner_pool.cli", "serve", "--config", str(config), "--port", str(port),
            "--workers", str(workers)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--pool-size", type=int, default=2, help="instances per worker")
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench/workers"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    texts = [s.text for s in load_msra("test", 2000) if s.text]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        models = {"default": "default", "base-shape": str(base_shape_model(Path(scratch)))}
        print("| model | workers | PSS MB (all processes) | clients | req/s | P50 ms | P99 ms |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for label, model in models.items():
            config = args.out / f"{label}.toml"
            config.write_text(f'[models.m]\nmodel = "{model}"\npool_size = {args.pool_size}\nmax_waiting = 256\n',
                              encoding="utf-8")
            for workers in (1, 2, 4):
                port = free_port()
                with launched(serve_command(config, port, workers), port, args.out / f"{label}-{workers}.log") as url:
                    pss = server_pss_mb(port)
                    results[f"{label}/{workers}/pss_mb"] = {"value": pss}
                    for clients in (16, 64) if workers <= 2 else ():
                        result = measure(url, f"{label} | {workers} | {pss:.0f}", texts, clients, args.seconds)
                        results[f"{label}/{workers}/{clients}"] = {
                            "rps": result.rps, "p50_ms": result.percentile(50), "p99_ms": result.percentile(99)}
                    if workers == 4:
                        print(f"| {label} | 4 | {pss:.0f} | - | - | - | - |", flush=True)
    print()
    for label in ("default", "base-shape"):
        one = results[f"{label}/1/pss_mb"]["value"]
        two, four = results[f"{label}/2/pss_mb"]["value"], results[f"{label}/4/pss_mb"]["value"]
        speedups = [results[f"{label}/2/{c}"]["rps"] / results[f"{label}/1/{c}"]["rps"] for c in (16, 64)]
        print(f"{label}: memory 2 workers {two / one:.2f}x, 4 workers {four / one:.2f}x one worker; "
              f"2 workers give {speedups[0]:.2f}x the req/s of 1 at 16 clients, {speedups[1]:.2f}x at 64")
    (args.out / "workers.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
