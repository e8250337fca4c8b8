"""Throughput side by side, in one process run: the seed-style pipeline pool against our pool, with and without
micro-batching, at 1, 4, 16 and 64 concurrent callers, next to the raw batched-forward ceiling.

    python bench/run.py [--model default] [--seconds 4] [--out artifacts/bench]

Prints a Markdown table (absolute figures and ratios against the baseline measured in the same run), and writes
bench.csv and bench.png to --out. Texts are MSRA test sentences, the length mix real callers send.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import queue
import resource
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from raner_pool import BatchingConfig, RaNERModelPool
from raner_pool.corpus import load_msra
from raner_pool.hub import resolve_model_dir
from raner_pool.modeldir import RANER_BASE_SHAPE, SPECIAL_TOKENS, build_random_model

RANER_BASE_VOCAB = 21_128

Predict = Callable[[str], object]


@dataclass
class Result:
    mode: str
    callers: int
    requests: int
    chars: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def chars_per_s(self) -> float:
        return self.chars / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


def drive(mode: str, predict: Predict, texts: Sequence[str], callers: int, seconds: float) -> Result:
    """`callers` threads call `predict` back to back for `seconds`; every call's latency is kept."""
    stop = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(callers)]
    chars = [0] * callers

    def caller(index: int) -> None:
        i = index
        while time.perf_counter() < stop:
            text = texts[i % len(texts)]
            began = time.perf_counter()
            predict(text)
            latencies[index].append((time.perf_counter() - began) * 1000)
            chars[index] += len(text)
            i += callers

    began = time.perf_counter()
    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    flat = [x for per_caller in latencies for x in per_caller]
    return Result(mode, callers, len(flat), sum(chars), elapsed, flat)


class PipelinePool:
    """The seed documents' design: N ModelScope pipelines in a queue.Queue, one request per check-out."""

    def __init__(self, model_dir: Path, size: int) -> None:
        from modelscope.pipelines import pipeline

        self.idle: queue.Queue[Any] = queue.Queue()
        for _ in range(size):
            self.idle.put(pipeline("named-entity-recognition", model=str(model_dir), device="cpu"))

    def predict(self, text: str) -> object:
        instance = self.idle.get()
        try:
            return instance(text)["output"] if text else []
        finally:
            self.idle.put(instance)


def ceiling(pool: RaNERModelPool, texts: Sequence[str], seconds: float, batch: int = 64) -> Result:
    """Raw batched forward throughput of the same model: one engine, full batches, no serving around it."""
    chunk = list(texts[:batch])
    with pool.checkout() as engine:
        engine.predict_batch(chunk)
        began, calls = time.perf_counter(), 0
        while time.perf_counter() - began < seconds:
            engine.predict_batch(chunk)
            calls += 1
    elapsed = time.perf_counter() - began
    return Result("ceiling (raw batched forward)", batch, calls * len(chunk), calls * sum(map(len, chunk)), elapsed, [])


def run(model: str, seconds: float, callers_list: Sequence[int], pool_size: int, out: Path) -> list[Result]:
    model_dir = resolve_model_dir(model)
    texts = [s.text for s in load_msra("test", 2000)]
    modes: list[tuple[str, Callable[[], Predict]]] = [
        (f"baseline: {pool_size} ModelScope pipelines", lambda: PipelinePool(model_dir, pool_size).predict),
        (f"pool of {pool_size}, no batching", lambda: RaNERModelPool(model_dir, pool_size).predict),
        (f"pool of {pool_size}, micro-batching", lambda: RaNERModelPool(
            model_dir, pool_size, batching=BatchingConfig(max_wait_ms=1.0)).predict),
        (f"pool of {pool_size}, batching, ONNX fp32", lambda: RaNERModelPool(
            model_dir, pool_size, backend="onnx", batching=BatchingConfig(max_wait_ms=1.0)).predict),
        (f"pool of {pool_size}, batching, ONNX INT8", lambda: RaNERModelPool(
            model_dir, pool_size, backend="onnx-int8", batching=BatchingConfig(max_wait_ms=1.0)).predict),
    ]
    results: list[Result] = []
    for name, build in modes:
        predict = build()
        predict(texts[0])
        for callers in callers_list:
            results.append(drive(name, predict, texts, callers, seconds))
            print(f"  {name:<40} {callers:>3} callers: {results[-1].rps:8.1f} req/s", flush=True)
    results.append(ceiling(RaNERModelPool(model_dir, 1), texts, seconds))
    report(results, out)
    return results


def report(results: list[Result], out: Path) -> None:
    """Markdown table with ratios to the baseline at the same concurrency; CSV and PNG beside it."""
    out.mkdir(parents=True, exist_ok=True)
    baseline = {r.callers: r for r in results if r.mode.startswith("baseline")}
    lines = ["| mode | callers | req/s | chars/s | P50 ms | P99 ms | x baseline req/s | P99 / baseline P99 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        base = baseline.get(r.callers)
        ratio = f"{r.rps / base.rps:.1f}x" if base else "-"
        p99 = f"{r.percentile(99) / base.percentile(99):.2f}" if base and r.latencies_ms else "-"
        lines.append(f"| {r.mode} | {r.callers} | {r.rps:.1f} | {r.chars_per_s:,.0f} | {r.percentile(50):.1f} | "
                     f"{r.percentile(99):.1f} | {ratio} | {p99} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines.append(f"\n{os.cpu_count()} CPUs; peak RSS of the whole run {peak:.0f} MB")
    table = "\n".join(lines)
    print(table)
    (out / "bench.md").write_text(table + "\n", encoding="utf-8")
    with open(out / "bench.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["mode", "callers", "requests_per_s", "chars_per_s", "p50_ms", "p99_ms"])
        for r in results:
            writer.writerow([r.mode, r.callers, f"{r.rps:.2f}", f"{r.chars_per_s:.0f}",
                             f"{r.percentile(50):.2f}", f"{r.percentile(99):.2f}"])
    chart(results, out / "bench.png")


def chart(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for mode in dict.fromkeys(r.mode for r in results if r.latencies_ms):
        rows = [r for r in results if r.mode == mode]
        left.plot([r.callers for r in rows], [r.rps for r in rows], marker="o", label=mode)
        right.plot([r.callers for r in rows], [r.percentile(99) for r in rows], marker="o", label=mode)
    for r in results:
        if not r.latencies_ms:
            left.axhline(r.rps, linestyle="--", color="grey", label=r.mode)
    left.set(xscale="log", xlabel="concurrent callers", ylabel="requests / s", title="Throughput")
    right.set(xscale="log", yscale="log", xlabel="concurrent callers", ylabel="P99 latency (ms)", title="P99 latency")
    left.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--seconds", type=float, default=4.0, help="per mode and concurrency level")
    parser.add_argument("--callers", default="1,4,16,64")
    parser.add_argument("--pool-size", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench"))
    parser.add_argument("--base-shape", action="store_true",
                        help="benchmark a randomly initialised model of RaNER base shape instead of --model")
    args = parser.parse_args()
    callers = [int(c) for c in args.callers.split(",")]
    if not args.base_shape:
        run(args.model, args.seconds, callers, args.pool_size, args.out)
        return
    with tempfile.TemporaryDirectory() as scratch:
        run(str(base_shape_model(Path(scratch))), args.seconds, callers, args.pool_size, args.out)


def base_shape_model(folder: Path) -> Path:
    """Random weights, RaNER base shape: 12 layers x 768 hidden, 21,128-token vocab, MSRA labels."""
    cjk = (chr(c) for c in range(0x4E00, 0x9FFF))
    vocab = [*SPECIAL_TOKENS, *itertools.islice(cjk, RANER_BASE_VOCAB - len(SPECIAL_TOKENS))]
    return build_random_model(folder / "raner-base-shape", vocab, RANER_BASE_SHAPE, seed=1)


if __name__ == "__main__":
    main()
