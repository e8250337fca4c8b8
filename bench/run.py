"""Throughput side by side, in one process run: the seed-style pipeline pool against our pool, with and without
micro-batching, in every backend and number format, at 1, 4, 16 and 64 concurrent callers, each as a share of
this machine's ceiling for its number format (bench/ceiling.py) and of the bare encoder in that format
(bench/bare.py), both measured at the start of the same run.

    python bench/run.py [--model default | --base-shape] [--seconds 4] [--rounds 1] [--out artifacts/bench]

Prints first what this CPU gets per format (its flags, the GEMM ceiling, the bare encoder and the pool served at
16 callers, side by side), then a Markdown table (absolute figures, ratios against the baseline, encoder GFLOP/s
and % of ceiling) and the target ratios, and writes bench.md, bench.csv and bench.png to --out. Texts are MSRA
test sentences, the length mix real callers send.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import queue
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bare import TOKENS, Bare
from bench.bare import measure as measure_bare
from bench.ceiling import Ceiling, encoder_flops_per_token, highest, measure_ceilings
from raner_pool import BatchingConfig, RaNERError, RaNERModelPool
from raner_pool.corpus import load_msra
from raner_pool.hub import resolve_model_dir
from raner_pool.loading import load_backend
from raner_pool.modeldir import RANER_BASE_SHAPE, SPECIAL_TOKENS, build_random_model
from raner_pool.precision import cpu_flags

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
    runtime: str = ""
    """Mode.runtime of the mode measured."""
    tokens: int = 0
    """Tokens the model saw for the texts served ([CLS] and [SEP] included), padding not counted."""
    number_format: str = "float32"
    note: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def chars_per_s(self) -> float:
        return self.chars / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


@dataclass
class Mode:
    """One way of serving: how to build it (a predict function and a close), and its number format."""

    name: str
    number_format: str
    build: Callable[[], tuple[Predict, Callable[[], None]]]
    notes: list[str] = field(default_factory=list)
    runtime: str = ""
    """The runtime its bare encoder is measured as (bench/bare.py); empty: none (the baseline, auto)."""


def drive(name: str, predict: Predict, texts: Sequence[str], callers: int, seconds: float,
          tokens: Sequence[int] | None = None) -> Result:
    """`callers` threads call `predict` back to back for `seconds`; every call's latency is kept, and the tokens
    served are summed from `tokens` (one count per text)."""
    stop = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(callers)]
    chars = [0] * callers
    served_tokens = [0] * callers

    def caller(index: int) -> None:
        i = index
        while time.perf_counter() < stop:
            text = texts[i % len(texts)]
            began = time.perf_counter()
            predict(text)
            latencies[index].append((time.perf_counter() - began) * 1000)
            chars[index] += len(text)
            served_tokens[index] += tokens[i % len(texts)] if tokens else 0
            i += callers

    began = time.perf_counter()
    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    flat = [x for per_caller in latencies for x in per_caller]
    return Result(name, callers, len(flat), sum(chars), elapsed, flat, tokens=sum(served_tokens))


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


def served_modes(model_dir: Path, pool_size: int) -> list[Mode]:
    """Every serving mode, slowest design first."""
    batching = BatchingConfig()

    def pool(mode: Mode, **kwargs: Any) -> Callable[[], tuple[Predict, Callable[[], None]]]:
        def build() -> tuple[Predict, Callable[[], None]]:
            served = RaNERModelPool(model_dir, pool_size, **kwargs)
            if served.batch_budget is not None:
                mode.notes.append(f"batch budget: {served.batch_budget.reason}")
            if served.backend_choice is not None:
                mode.notes.append(f"auto chose {served.backend_choice.reason}")
                mode.number_format = {"onnx-int8": "int8"}.get(served.backend_choice.backend,
                                                                served.backend_choice.dtype)
            return served.predict, served.close
        return build

    modes = [Mode(f"baseline: {pool_size} ModelScope pipelines", "float32",
                  lambda: (PipelinePool(model_dir, pool_size).predict, lambda: None))]
    for name, number_format, runtime, kwargs in [
        (f"pool of {pool_size}, no batching", "float32", "", {}),
        (f"pool of {pool_size}, micro-batching", "float32", "modelscope", {"batching": batching}),
        (f"pool of {pool_size}, batching, bfloat16", "bfloat16", "modelscope",
         {"batching": batching, "dtype": "bfloat16"}),
        (f"pool of {pool_size}, batching, ONNX fp32", "float32", "onnx", {"batching": batching, "backend": "onnx"}),
        (f"pool of {pool_size}, batching, ONNX INT8", "int8", "onnx-int8",
         {"batching": batching, "backend": "onnx-int8"}),
        (f"pool of {pool_size}, batching, OpenVINO fp32", "float32", "openvino",
         {"batching": batching, "backend": "openvino"}),
        (f"pool of {pool_size}, batching, OpenVINO bfloat16", "bfloat16", "openvino",
         {"batching": batching, "backend": "openvino", "dtype": "bfloat16"}),
        (f"pool of {pool_size}, batching, backend=auto", "float32", "", {"batching": batching, "backend": "auto"}),
    ]:
        mode = Mode(name, number_format, lambda: (print, lambda: None), runtime=runtime)
        mode.build = pool(mode, **kwargs)
        modes.append(mode)
    return modes


def run(model: str, seconds: float, callers_list: Sequence[int], pool_size: int, out: Path,
        rounds: int = 1) -> list[Result]:
    """Every mode at every callers level, `rounds` times over, the modes taking turns in each round; each figure
    is the median round's, so that what else the machine did in one window does not decide a ratio."""
    model_dir = resolve_model_dir(model)
    texts = [s.text for s in load_msra("test", 2000)]
    tokenizer = load_backend(model_dir).tokenizer
    tokens = [sum(len(ids) for ids in tokenizer.encode(text)) + 2 for text in texts]
    ceilings = measure_ceilings()
    bare, bare_left_out = measure_bare(model_dir, seconds)
    flops_per_token = encoder_flops_per_token(model_dir)
    refused: list[str] = []
    served: list[tuple[Mode, Predict, Callable[[], None]]] = []
    try:
        for mode in served_modes(model_dir, pool_size):
            try:
                predict, close = mode.build()
            except RaNERError as error:  # bfloat16 on a CPU without it
                refused.append(f"{mode.name}: refused at construction: {error}")
                print(f"  {refused[-1]}", flush=True)
                continue
            served.append((mode, predict, close))
            predict(texts[0])
        timed: dict[tuple[str, int], list[Result]] = {}
        for round_number in range(1, rounds + 1):
            for mode, predict, _ in served:
                for callers in callers_list:
                    result = drive(mode.name, predict, texts, callers, seconds, tokens)
                    result.number_format, result.note = mode.number_format, "; ".join(mode.notes)
                    result.runtime = mode.runtime
                    timed.setdefault((mode.name, callers), []).append(result)
                    print(f"  round {round_number}: {mode.name:<44} {callers:>3} callers: {result.rps:8.1f} req/s",
                          flush=True)
    finally:
        for _, _, close in served:
            close()
    results = [sorted(runs, key=lambda r: r.rps)[len(runs) // 2] for runs in timed.values()]
    ceilings = highest(ceilings, measure_ceilings())  # again at the end: the higher of the two is the ceiling
    levels = {r.callers for r in results}
    per_format = this_cpu(results, ceilings, bare, bare_left_out, flops_per_token,
                          16 if 16 in levels else max(levels, default=16))
    report(results, refused, ceilings, flops_per_token, out, per_format)
    return results


def this_cpu(results: list[Result], ceilings: dict[str, Ceiling], bare: list[Bare], left_out: list[str],
             flops_per_token: float, callers: int = 16) -> str:
    """What this CPU gets in each format, in encoder GFLOP/s so that the bare batch (16 x 48 tokens) and served
    MSRA texts compare: the GEMM ceiling, the bare encoder, the served pool at `callers`, and their ratios."""
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"})
    lines = [f"{cpu_name()}, {os.cpu_count()} CPUs, flags: {' '.join(flags) or 'none of note'}; "
             f"{time.strftime('%Y-%m-%d')}, torch {torch_version()}\n",
             f"| runtime | format | GEMM ceiling GFLOP/s | bare encoder texts/s | bare GFLOP/s (% of ceiling) | "
             f"served at {callers} callers texts/s | served GFLOP/s | served / bare |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for b in bare:
        ceiling = ceilings.get(b.number_format)
        bare_gflops = b.texts_per_s * TOKENS * flops_per_token / 1e9
        share = f" ({bare_gflops / ceiling.gflops:.0%})" if ceiling else ""
        served = next((r for r in results if r.runtime == b.runtime and r.number_format == b.number_format
                       and r.callers == callers), None)
        served_cells = "- | - | -"
        if served:
            served_gflops = served.tokens * flops_per_token / served.seconds / 1e9
            served_cells = f"{served.rps:.1f} | {served_gflops:.1f} | {served_gflops / bare_gflops:.0%}"
        lines.append(f"| {b.runtime} | {b.number_format} | {ceiling.gflops if ceiling else float('nan'):.0f} | "
                     f"{b.texts_per_s:.1f} | {bare_gflops:.1f}{share} | {served_cells} |")
    lines.extend(f"- {line}" for line in left_out)
    return "\n".join(lines)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return "unknown CPU"


def torch_version() -> str:
    import torch

    return str(torch.__version__)


def report(results: list[Result], refused: list[str], ceilings: dict[str, Ceiling], flops_per_token: float,
           out: Path, per_format: str = "") -> None:
    """What this CPU gets per format; a Markdown table with ratios to the baseline at the same concurrency and the
    share of the ceiling, then the target ratios; CSV and PNG beside it."""
    out.mkdir(parents=True, exist_ok=True)
    baseline = {r.callers: r for r in results if r.mode.startswith("baseline")}

    def gflops(r: Result) -> float:
        return r.tokens * flops_per_token / r.seconds / 1e9

    def share(r: Result) -> float:
        return gflops(r) / ceilings[r.number_format].gflops

    lines = [per_format, ""] if per_format else []
    lines += ["| mode | callers | req/s | chars/s | P50 ms | P99 ms | x baseline req/s | P99 / baseline P99 | "
             "encoder GFLOP/s | % of ceiling |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        base = baseline.get(r.callers)
        ratio = f"{r.rps / base.rps:.1f}x" if base else "-"
        p99 = f"{r.percentile(99) / base.percentile(99):.2f}" if base else "-"
        lines.append(f"| {r.mode} | {r.callers} | {r.rps:.1f} | {r.chars_per_s:,.0f} | {r.percentile(50):.1f} | "
                     f"{r.percentile(99):.1f} | {ratio} | {p99} | {gflops(r):.1f} | "
                     f"{share(r):.0%} of {r.number_format} |")
    ceiling_line = ", ".join(f"{c.number_format} {c.gflops:.3g} GFLOP/s ({c.library})" for c in ceilings.values())
    lines.append(f"\nCeilings (2048 x 2048 products, the higher of two measurements, at the start and the end of this "
                 f"run): {ceiling_line}. Encoder: "
                 f"{flops_per_token / 1e6:.3g} MFLOP per token.")
    lines.extend(f"- {line}" for line in refused)
    for mode in dict.fromkeys(r.mode for r in results):
        note = next(r.note for r in results if r.mode == mode)
        if note:
            lines.append(f"- {mode}: {note}")
    lines.append("\n" + targets(results, share))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines.append(f"\n{os.cpu_count()} CPUs; peak RSS of the whole run {peak:.0f} MB")
    table = "\n".join(lines)
    print(table)
    (out / "bench.md").write_text(table + "\n", encoding="utf-8")
    with open(out / "bench.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["mode", "callers", "requests_per_s", "chars_per_s", "p50_ms", "p99_ms", "encoder_gflops",
                         "share_of_ceiling", "number_format"])
        for r in results:
            writer.writerow([r.mode, r.callers, f"{r.rps:.2f}", f"{r.chars_per_s:.0f}", f"{r.percentile(50):.2f}",
                             f"{r.percentile(99):.2f}", f"{gflops(r):.4g}", f"{share(r):.4g}", r.number_format])
    chart(results, out / "bench.png")


def targets(results: list[Result], share: Callable[[Result], float]) -> str:
    """Issue 11's ratios, each from rows of this run: batching vs none, INT8 and bfloat16 vs float32, the
    share of the float32 ceiling."""
    def row(suffix: str, callers: int) -> Result | None:
        return next((r for r in results if r.mode.endswith(suffix) and r.callers == callers), None)

    lines = ["| target | callers | measured |", "| --- | ---: | ---: |"]
    for callers in sorted({r.callers for r in results}):
        batched, plain = row("micro-batching", callers), row("no batching", callers)
        if batched and plain:
            lines.append(f"| micro-batching / no batching >= 1.0x | {callers} | {batched.rps / plain.rps:.2f}x |")
    for callers in (16, 64):
        fp32 = row("micro-batching", callers)
        if fp32 is None:
            continue
        onnx = row("ONNX fp32", callers)
        lines.append(f"| float32 served / float32 ceiling >= 75%, PyTorch / ONNX Runtime | {callers} | "
                     f"{share(fp32):.0%} / {f'{share(onnx):.0%}' if onnx else 'not run'} |")
        for suffix, goal in (("ONNX INT8", ">= 2.5x"), ("batching, bfloat16", ">= 1.8x"),
                             ("OpenVINO bfloat16", ">= 1.8x"), ("backend=auto", "fastest")):
            other = row(suffix, callers)
            measured = f"{other.rps / fp32.rps:.2f}x" if other else "not run (refused)"
            lines.append(f"| {suffix} / float32 micro-batching {goal} | {callers} | {measured} |")
    return "\n".join(lines)


def chart(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for mode in dict.fromkeys(r.mode for r in results):
        rows = [r for r in results if r.mode == mode]
        left.plot([r.callers for r in rows], [r.rps for r in rows], marker="o", label=mode)
        right.plot([r.callers for r in rows], [r.percentile(99) for r in rows], marker="o", label=mode)
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
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every mode this many times, taking turns, and report the median round")
    parser.add_argument("--pool-size", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench"))
    parser.add_argument("--base-shape", action="store_true",
                        help="benchmark a randomly initialised model of RaNER base shape instead of --model")
    args = parser.parse_args()
    callers = [int(c) for c in args.callers.split(",")]
    if not args.base_shape:
        run(args.model, args.seconds, callers, args.pool_size, args.out, args.rounds)
        return
    with tempfile.TemporaryDirectory() as scratch:
        run(str(base_shape_model(Path(scratch))), args.seconds, callers, args.pool_size, args.out, args.rounds)


def base_shape_model(folder: Path) -> Path:
    """Random weights, RaNER base shape: 12 layers x 768 hidden, 21,128-token vocab, MSRA labels."""
    cjk = (chr(c) for c in range(0x4E00, 0x9FFF))
    vocab = [*SPECIAL_TOKENS, *itertools.islice(cjk, RANER_BASE_VOCAB - len(SPECIAL_TOKENS))]
    return build_random_model(folder / "raner-base-shape", vocab, RANER_BASE_SHAPE, seed=1)


if __name__ == "__main__":
    main()
