"""Distributed annotation throughput: lines/s of `annotate --ray` on a 1-node and a 2-node Ray cluster started on
this machine (one CPU and one single-threaded actor per node), end to end and per actor.

    python bench/distributed.py [--lines 3000] [--out artifacts/bench/distributed.md]

Every node of these clusters runs on the same 2 cores, so "2 nodes" here measures the distribution machinery
(actors, scheduling, object store, the driver writing in order), not more hardware. Each job is timed twice: a
small one (fixed costs: connecting, actors loading their models) and the full one; the marginal rate is the
full job's extra lines over its extra seconds.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raner_pool.corpus import load_msra  # noqa: E402
from raner_pool.distributed import AnnotateConfig, annotate_files  # noqa: E402
from raner_pool.raycluster import LocalRayCluster  # noqa: E402
from raner_pool.threads import available_cores  # noqa: E402

SMALL = 50


def run(nodes: int, corpus: Path, small: Path, work: Path) -> dict[str, float]:
    """One cluster of `nodes` nodes: the small job, then the full one; seconds and rates."""
    config = AnnotateConfig("default", concurrency=nodes, pool_size=1, torch_threads=1, num_cpus=1)
    with LocalRayCluster(nodes=nodes, cpus_per_node=1) as cluster:
        started = time.perf_counter()
        annotate_files([small], work / f"small-{nodes}.jsonl", config, address=cluster.address)
        small_s = time.perf_counter() - started
        started = time.perf_counter()
        summary = annotate_files([corpus], work / f"full-{nodes}.jsonl", config, address=cluster.address)
        full_s = time.perf_counter() - started
    lines = summary.rows
    # a full job no slower than the small one means the machine was busy with other work: no marginal rate
    marginal = (lines - SMALL) / (full_s - small_s) if full_s > small_s + 1 else float("nan")
    return {"nodes": nodes, "actors": nodes, "lines": lines, "small_s": small_s, "full_s": full_s,
            "end_to_end": lines / full_s, "marginal": marginal, "per_actor": marginal / nodes,
            "used_nodes": len(summary.rows_per_node)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=3000, help="MSRA test sentences in the full job")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts/bench/distributed.md")
    args = parser.parse_args()
    texts = [s.text for s in load_msra("test", args.lines)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="rp-bench-") as tmp:
        work = Path(tmp)
        corpus, small = work / "msra.txt", work / "small.txt"
        corpus.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
        small.write_text("".join(t + "\n" for t in texts[:SMALL]), encoding="utf-8")
        for nodes in (1, 2):
            rows.append(run(nodes, corpus, small, work))
            print(rows[-1], flush=True)
    lines = [
        "# Distributed annotation (Ray), measured",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {available_cores()} cores; Python "
        f"{platform.python_version()}; `bench/distributed.py --lines {args.lines}` (MSRA test sentences, embedded "
        "default model, one actor per node, 1 torch thread and 1 CPU per actor).",
        "",
        "**Both clusters run on the same 2 cores**: the 2-node figures show what Ray's distribution adds or costs "
        "on one machine, not what a second machine would give.",
        "",
        "| nodes | actors | lines | small job (s) | full job (s) | lines/s end to end | lines/s marginal "
        "| lines/s per actor | nodes that did work |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['nodes']} | {r['actors']} | {r['lines']} | {r['small_s']:.1f} | {r['full_s']:.1f} "
                     f"| {r['end_to_end']:.0f} | {r['marginal']:.0f} | {r['per_actor']:.0f} | {r['used_nodes']} |")
    lines += [
        "",
        f"Small job: {SMALL} lines, so mostly fixed costs (driver connecting, actors starting and loading the "
        "model). Marginal: (lines - small) / (full s - small s), the steady rate once the actors are up.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
