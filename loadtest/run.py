"""Headless locust runs against servers started here on 127.0.0.1: raner-pool at pool sizes 1, 2 and 4 (the
seed's sizing table) and the seed-style pipeline server, each at several user counts, for a bounded time.

    python loadtest/run.py [--users 1,4,16] [--pool-sizes 1,2,4] [--seconds 10] [--out artifacts/loadtest]

Writes report.csv (QPS, P50, P99, failures per run) and report.png (QPS and latency against users).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from raner_pool.server.launch import free_port, launched

HERE = Path(__file__).resolve().parent


@dataclass
class Run:
    server: str
    users: int
    qps: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int


def locust(url: str, users: int, seconds: int, prefix: Path, only_ner: bool) -> tuple[float, float, float, int, int]:
    """One headless locust run; its aggregated QPS, P50, P99, request and failure counts."""
    env = {**os.environ, "RANER_LOADTEST_ROUTES": "ner" if only_ner else "all"}
    subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless", "--host", url,
         "-u", str(users), "-r", str(users), "--run-time", f"{seconds}s", "--csv", str(prefix), "--only-summary",
         "--stop-timeout", "10"],
        env=env, check=False, capture_output=True, timeout=seconds + 120,
    )
    with open(f"{prefix}_stats.csv", encoding="utf-8") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    return (float(row["Requests/s"]), percentile_ms(row["50%"]), percentile_ms(row["99%"]),
            int(row["Request Count"]), int(row["Failure Count"]))


def percentile_ms(cell: str) -> float:
    """A percentile cell of locust's CSV; locust writes N/A where no request completed in the run."""
    return float("nan") if cell == "N/A" else float(cell)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--users", default="1,4,16")
    parser.add_argument("--pool-sizes", default="1,2,4")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("artifacts/loadtest"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    users_list = [int(u) for u in args.users.split(",")]
    runs: list[Run] = []

    def measure(name: str, url: str, only_ner: bool) -> None:
        for users in users_list:
            slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
            qps, p50, p99, count, failures = locust(url, users, args.seconds, args.out / f"{slug}-{users}", only_ner)
            runs.append(Run(name, users, qps, p50, p99, count, failures))
            print(f"{name:<28} {users:>3} users: {qps:7.1f} req/s  P50 {p50:6.0f} ms  P99 {p99:6.0f} ms  "
                  f"{failures} failures", flush=True)

    for size in (int(s) for s in args.pool_sizes.split(",")):
        config = args.out / f"pool{size}.toml"
        config.write_text(f'[models.raner-default]\nmodel = "{args.model}"\naliases = ["default"]\n'
                          f"pool_size = {size}\n", encoding="utf-8")
        port = free_port()
        command = [sys.executable, "-m", "raner_pool.cli", "serve", "--config", str(config), "--port", str(port)]
        with launched(command, port, args.out / f"pool{size}.log") as url:
            measure(f"raner-pool, pool_size={size}", url, only_ner=False)
            if size == max(int(s) for s in args.pool_sizes.split(",")):
                measure(f"raner-pool /ner only, pool={size}", url, only_ner=True)
    size = max(int(s) for s in args.pool_sizes.split(","))
    port = free_port()
    command = [sys.executable, str(HERE / "seed_server.py"), "--port", str(port), "--pool-size", str(size),
               "--model", args.model]
    with launched(command, port, args.out / "seed.log") as url:
        measure(f"seed-style /ner, pool={size}", url, only_ner=True)
    write_report(runs, args.out)


def write_report(runs: list[Run], out: Path) -> None:
    with open(out / "report.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["server", "users", "qps", "p50_ms", "p99_ms", "requests", "failures"])
        for r in runs:
            writer.writerow([r.server, r.users, f"{r.qps:.2f}", r.p50_ms, r.p99_ms, r.requests, r.failures])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name in dict.fromkeys(r.server for r in runs):
        rows = [r for r in runs if r.server == name]
        left.plot([r.users for r in rows], [r.qps for r in rows], marker="o", label=name)
        right.plot([r.users for r in rows], [r.p50_ms for r in rows], marker="o", linestyle="--", label=f"{name} P50")
        right.plot([r.users for r in rows], [r.p99_ms for r in rows], marker="o", label=f"{name} P99")
    left.set(xlabel="locust users", ylabel="requests / s", title="Served QPS")
    right.set(xlabel="locust users", ylabel="latency (ms)", yscale="log", title="P50 / P99 latency")
    left.legend(fontsize=7)
    right.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(out / "report.png", dpi=110)
    print(f"report: {out / 'report.csv'}, {out / 'report.png'}")


if __name__ == "__main__":
    main()
