"""A bounded soak of the real server on 127.0.0.1: mixed locust traffic for --minutes while the model "m" is switched
between two versions (the embedded default model and a random model of the same vocab and shape) every
--reload-every seconds through POST /admin/reload, with the server's RSS sampled every 10 s.

    python loadtest/soak.py [--minutes 10] [--reload-every 120] [--users 16] [--out artifacts/soak]
    python loadtest/soak.py --minutes 60 --reload-every 0      # one constant model for an hour

Prints the request and failure counts, each reload's status and duration, RSS at start / after warm-up / at the end
with its growth per hour after warm-up (least-squares slope over the samples after the second reload, when both
versions have been seen once; without reloads, after the first 5 minutes), in MB and in % of the mean, and P50/P99
latency per reload window; writes summary.json, rss.csv, rss.png (the chart), requests.jsonl and the server and
locust logs to --out.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from raner_pool import DEFAULT_MODEL_DIR
from raner_pool.modeldir import EncoderShape, build_random_model
from raner_pool.server.launch import free_port, launched, stop_process

HERE = Path(__file__).resolve().parent
SAMPLE_EVERY_S = 10.0
WARM_UP_S = 300.0
"""Without reloads, RSS growth is measured after this long (or a quarter of the run, if shorter)."""
MB = 1024 * 1024


@dataclass
class Reload:
    at_s: float
    status: int
    seconds: float
    model: str
    detail: str


@dataclass
class Sample:
    at_s: float
    rss_mb: float


@dataclass
class Request:
    at_s: float
    ms: float
    failed: bool
    name: str
    error: str


@dataclass
class Window:
    start_s: float
    end_s: float
    requests: int
    failed: int
    p50_ms: float
    p99_ms: float


def write_config(path: Path, model: str, pool_size: int) -> None:
    """The registry TOML: one model "m" (alias "raner-default", which the chat requests of the load mix name)."""
    path.write_text(f'[models.m]\nmodel = "{model}"\naliases = ["raner-default"]\npool_size = {pool_size}\n'
                    "max_waiting = 256\n", encoding="utf-8")


def rss_mb(process: psutil.Process) -> float:
    """Resident memory of `process` and its children, in MB (0 once it is gone)."""
    total = 0
    try:
        for proc in (process, *process.children(recursive=True)):
            total += proc.memory_info().rss
    except psutil.NoSuchProcess:
        pass
    return total / MB


def reload(url: str, token: str, at_s: float, model: str) -> Reload:
    """POST /admin/reload; its status, how long it took, and what it says it did."""
    began = time.monotonic()
    try:
        response = httpx.post(f"{url}/admin/reload", headers={"Authorization": f"Bearer {token}"}, timeout=300)
        status, body = response.status_code, response.text
        if status == 200:
            body = "; ".join(f"{r['model']}: {r['old_version']} -> {r['new_version']}"
                             for r in response.json()["reloaded"]) or "nothing reloaded"
    except httpx.HTTPError as error:
        status, body = 0, f"{type(error).__name__}: {error}"
    return Reload(round(at_s, 2), status, round(time.monotonic() - began, 3), model, body[:300])


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of `values` (NaN when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def slope_per_hour(samples: list[Sample]) -> float | None:
    """Least-squares slope of RSS against time, in MB per hour; None with fewer than two samples."""
    if len(samples) < 2:
        return None
    mean_t = sum(s.at_s for s in samples) / len(samples)
    mean_r = sum(s.rss_mb for s in samples) / len(samples)
    spread = sum((s.at_s - mean_t) ** 2 for s in samples)
    if spread == 0:
        return None
    return sum((s.at_s - mean_t) * (s.rss_mb - mean_r) for s in samples) / spread * 3600


def read_requests(path: Path, t0: float) -> list[Request]:
    """The requests the locust listener recorded, with times relative to the start of the traffic."""
    if not path.exists():
        return []
    requests = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                requests.append(Request(row["t"] - t0, row["ms"], bool(row["failed"]), row["name"], row["error"]))
    return requests


def windows(requests: list[Request], reloads: list[Reload], end_s: float) -> list[Window]:
    """Request count, failures and P50/P99 latency between consecutive reloads (by completion time)."""
    starts = [0.0, *(r.at_s for r in reloads)]
    result = []
    for start, end in zip(starts, [*starts[1:], math.inf], strict=True):
        inside = [q for q in requests if start <= q.at_s < end]
        latencies = [q.ms for q in inside]
        result.append(Window(round(start, 1), round(min(end, end_s), 1), len(inside), sum(q.failed for q in inside),
                             percentile(latencies, 50), percentile(latencies, 99)))
    return result


def server_command(config: Path, port: int) -> list[str]:
    """`raner-pool serve` from this environment (the module when the script is not installed)."""
    script = Path(sys.executable).parent / "raner-pool"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "raner_pool.cli"]
    return [*base, "serve", "--config", str(config), "--port", str(port)]


def soak(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Start the server, drive traffic and reloads, sample RSS; everything measured, as one dict."""
    out: Path = args.out
    vocab = (DEFAULT_MODEL_DIR / "vocab.txt").read_text(encoding="utf-8").splitlines()
    print("building the second model version (random weights, default vocab and shape) ...", flush=True)
    models = ["default", str(build_random_model(tmp / "model-b", vocab, EncoderShape(), seed=3))]
    config = tmp / "models.toml"
    write_config(config, models[0], args.pool_size)
    token = secrets.token_hex(16)
    port = free_port()
    env = {**os.environ, "RANER_POOL_ADMIN_TOKEN": token}
    requests_file = out / "requests.jsonl"
    requests_file.unlink(missing_ok=True)
    duration_s = args.minutes * 60
    samples: list[Sample] = []
    reloads: list[Reload] = []
    with launched(server_command(config, port), port, out / "server.log", env=env) as url:
        [pid] = [c.pid for c in psutil.Process().children() if str(port) in c.cmdline()]
        server = psutil.Process(pid)
        print(f"server pid {pid} ready at {url}; {args.users} users for {args.minutes:g} min, "
              f"reload every {args.reload_every:g} s", flush=True)
        start_rss = rss_mb(server)
        locust_env = {**os.environ, "RANER_SOAK_REQUESTS": str(requests_file)}
        with open(out / "locust.log", "wb") as locust_log:
            locust = subprocess.Popen(
                [sys.executable, "-m", "locust", "-f", str(HERE / "soak_locustfile.py"), "--headless", "--host", url,
                 "-u", str(args.users), "-r", str(args.users), "--run-time", f"{math.ceil(duration_s)}s",
                 "--only-summary", "--stop-timeout", "10"],
                env=locust_env, stdout=locust_log, stderr=subprocess.STDOUT)
        t0 = time.time()
        samples.append(Sample(0.0, start_rss))
        next_sample, next_reload, version = SAMPLE_EVERY_S, args.reload_every, 0
        try:
            while locust.poll() is None:
                now = time.time() - t0
                if now > duration_s + 120:
                    raise RuntimeError(f"locust still runs {now:.0f} s after it began; see {out / 'locust.log'}")
                if now >= next_sample:
                    samples.append(Sample(round(now, 2), rss_mb(server)))
                    next_sample += SAMPLE_EVERY_S
                if args.reload_every > 0 and now >= next_reload and now < duration_s - 5:
                    version = 1 - version
                    write_config(config, models[version], args.pool_size)
                    reloads.append(reload(url, token, now, models[version]))
                    print(f"reload #{len(reloads)} at {now:.0f} s: {reloads[-1].status} in "
                          f"{reloads[-1].seconds:.2f} s", flush=True)
                    next_reload += args.reload_every
                time.sleep(0.2)
        finally:
            stop_process(locust, 30)
        end_s = time.time() - t0
        samples.append(Sample(round(end_s, 2), rss_mb(server)))
    return summarize(args, read_requests(requests_file, t0), reloads, samples, end_s)


def summarize(args: argparse.Namespace, requests: list[Request], reloads: list[Reload], samples: list[Sample],
              end_s: float) -> dict[str, Any]:
    """The soak's figures: counts, failures, reloads, RSS and its trend, per-window latency."""
    failed = [q for q in requests if q.failed]
    if reloads:  # both versions seen once: after the second reload (or the only one)
        settled = reloads[min(1, len(reloads) - 1)]
        warm_s = settled.at_s + settled.seconds
    else:  # one constant model: after the first few minutes
        warm_s = min(WARM_UP_S, end_s / 4)
    after_warm = [s for s in samples if s.at_s >= warm_s]
    growth = slope_per_hour(after_warm)
    mean_rss = sum(s.rss_mb for s in after_warm) / len(after_warm) if after_warm else 0.0
    return {
        "minutes": args.minutes, "reload_every_s": args.reload_every, "users": args.users,
        "pool_size": args.pool_size, "duration_s": round(end_s, 1),
        "requests": len(requests), "failed": len(failed),
        "requests_per_s": round(len(requests) / end_s, 2) if end_s > 0 else None,
        "failure_messages": Counter(f"{q.name}: {q.error}" for q in failed).most_common(5),
        "reloads": [asdict(r) for r in reloads],
        "rss_mb": {
            "start": round(samples[0].rss_mb, 1),
            "after_warmup": round(after_warm[0].rss_mb, 1) if after_warm else None,
            "after_warmup_at_s": after_warm[0].at_s if after_warm else None,
            "end": round(samples[-1].rss_mb, 1),
            "growth_mb_per_h_after_warmup": None if growth is None else round(growth, 1),
            "growth_pct_per_h_after_warmup": None if growth is None or not mean_rss else
            round(100 * growth / mean_rss, 2),
            "samples_after_warmup": len(after_warm),
            "span_after_warmup_s": round(after_warm[-1].at_s - after_warm[0].at_s, 1) if after_warm else 0.0,
        },
        "windows": [asdict(w) for w in windows(requests, reloads, end_s)],
        "rss_samples": [asdict(s) for s in samples],
    }


def report(summary: dict[str, Any], out: Path) -> None:
    """Print the summary and write summary.json and rss.csv under `out`."""
    print(f"\nsoak: {summary['duration_s']:.0f} s, {summary['users']} users, pool_size {summary['pool_size']}, "
          f"reload every {summary['reload_every_s']:g} s")
    print(f"requests: {summary['requests']} total ({summary['requests_per_s']} req/s), {summary['failed']} failed")
    for message, count in summary["failure_messages"]:
        print(f"  {count} x {message}")
    print(f"reloads: {len(summary['reloads'])}")
    for i, r in enumerate(summary["reloads"], 1):
        print(f"  #{i} at {r['at_s']:6.1f} s -> {Path(r['model']).name}: HTTP {r['status']} in {r['seconds']:.2f} s"
              f"  ({r['detail']})")
    rss = summary["rss_mb"]
    growth = rss["growth_mb_per_h_after_warmup"]
    print(f"RSS (MB): start {rss['start']}, after warm-up {rss['after_warmup']} (t={rss['after_warmup_at_s']} s), "
          f"end {rss['end']}; growth after warm-up "
          f"{'n/a' if growth is None else f'{growth:+.1f} MB/h'} "
          f"({rss['growth_pct_per_h_after_warmup']}% of the mean per hour) over {rss['samples_after_warmup']} samples "
          f"({rss['span_after_warmup_s']:g} s; short spans make this slope noise)")
    print(f"{'window (s)':>16} {'requests':>9} {'failed':>7} {'P50 ms':>8} {'P99 ms':>8}")
    for w in summary["windows"]:
        print(f"{w['start_s']:7.1f}-{w['end_s']:<7.1f} {w['requests']:>9} {w['failed']:>7} {w['p50_ms']:>8.0f} "
              f"{w['p99_ms']:>8.0f}")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    with open(out / "rss.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["at_s", "rss_mb"])
        writer.writerows([s["at_s"], f"{s['rss_mb']:.1f}"] for s in summary["rss_samples"])
    chart(summary, out / "rss.png")
    print(f"written: {out / 'summary.json'}, {out / 'rss.csv'}, {out / 'rss.png'}, {out / 'requests.jsonl'}")


def chart(summary: dict[str, Any], path: Path) -> None:
    """RSS over the run, the reloads marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 3.5))
    minutes = [s["at_s"] / 60 for s in summary["rss_samples"]]
    axes.plot(minutes, [s["rss_mb"] for s in summary["rss_samples"]], color="tab:blue", label="server RSS")
    for i, r in enumerate(summary["reloads"]):
        axes.axvline(r["at_s"] / 60, color="tab:gray", alpha=0.3, linewidth=1, label="reload" if i == 0 else None)
    rss = summary["rss_mb"]
    every = f"a reload every {summary['reload_every_s']:g} s" if summary["reloads"] else "one constant model"
    axes.set_title(f"{summary['duration_s'] / 60:.0f} min, {summary['users']} users, {every}: "
                   f"{rss['growth_pct_per_h_after_warmup']}% per hour after warm-up")
    axes.set_xlabel("minutes")
    axes.set_ylabel("MB")
    axes.set_ylim(bottom=0)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--reload-every", type=float, default=120.0,
                        help="seconds between reloads; 0: none, one constant model")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--pool-size", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("artifacts/soak"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="raner-soak-") as tmp:
        summary = soak(args, Path(tmp))
    report(summary, args.out)


if __name__ == "__main__":
    main()
