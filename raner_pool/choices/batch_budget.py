"""Warm-up measurements that fit serving to the loaded model on this machine.

Batching pays differently for every model and CPU: a 4 x 256 encoder gains from batches of dozens, a 12 x 768
one loses beyond a few (its activations leave the cache). So instead of fixed budgets, `tune_batch_budget`
times batches of a sentence-sized text at growing sizes and keeps the size that serves most texts per second
while a batch takes at most `max_latency_factor` x a single call. It times them as a pool serves them, every
instance that fits on the cores running at once (`ServedCallers`): what one pass costs in Python weighs more
when two instances share the GIL, and larger batches pay it less often. The sizes are timed in turns, the same
number of times each (`fastest_in_turns`), so neither a passing stall nor a count of tries favours one.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from raner_pool.engine import NEREngine
from raner_pool.threads import concurrent_passes

log = logging.getLogger(__name__)

TUNING_TEXT = (
    "新华社北京十月一日电国家主席习近平在人民大会堂会见了来访的法国总统马克龙双方就中法关系"
    "和共同关心的国际问题交换了意见外交部长王毅参加了会见"
)
"""A news sentence of common characters: what the batch budget is timed on."""
TUNING_TEXT_TOKENS = 48
"""Tokens per timed text ([CLS] and [SEP] included): a typical sentence (MSRA test averages 45)."""
BATCH_LADDER = (1, 2, 4, 8, 16, 32, 64)
BEST_TIME_S = 0.3
"""`best_time` repeats a run until this much time has passed (at least twice); the fastest run counts."""
TURNS = 3
TIME_FOR_TURNS_S = 1.5
"""`fastest_in_turns` goes round every run at least TURNS times and until this much time has passed."""
NEAR_BEST = 0.97
"""A smaller batch within this fraction of the best throughput is preferred: same speed, lower latency."""


@dataclass(frozen=True)
class BatchTiming:
    """One timed batch size: its fastest forward (with the other instances running theirs), and the texts per
    second that gives one instance."""

    size: int
    seconds: float

    @property
    def texts_per_s(self) -> float:
        return self.size / self.seconds


@dataclass(frozen=True)
class BatchBudget:
    """The batch a pool's workers assemble: at most `max_batch_calls` calls and `max_batch_tokens` padded
    tokens, and the timings it was chosen from (empty when it was not measured)."""

    max_batch_calls: int
    max_batch_tokens: int
    timings: tuple[BatchTiming, ...] = ()
    reason: str = ""
    timed_at: float | None = None
    """When the timings were taken (Unix time); None when nothing was timed."""
    reused: bool = False
    """Whether the budget was timed at an earlier start on this machine and read back (raner_pool.choices.store)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "max_batch_calls": self.max_batch_calls,
            "max_batch_tokens": self.max_batch_tokens,
            "reason": self.reason,
            **(timed_label(self.timed_at, self.reused) if self.timed_at is not None else {"timed": None}),
            "timings": [{"size": t.size, "ms": round(t.seconds * 1000, 2), "texts_per_s": round(t.texts_per_s, 1)}
                        for t in self.timings],
        }

    def stored(self) -> dict[str, Any]:
        """The budget as the store keeps it (read back by `from_stored`)."""
        return {**dataclasses.asdict(self), "reused": False}

    @classmethod
    def from_stored(cls, value: dict[str, Any]) -> BatchBudget:
        """A budget read back from the store, marked as reused."""
        timings = tuple(BatchTiming(int(t["size"]), float(t["seconds"])) for t in value["timings"])
        return cls(int(value["max_batch_calls"]), int(value["max_batch_tokens"]), timings, value["reason"],
                   float(value["timed_at"]), reused=True)


def timed_label(timed_at: float, reused: bool) -> dict[str, str]:
    """How /health says where a timed choice came from: timed at this start ("now") or read back ("reused"),
    and when it was timed (ISO 8601, UTC)."""
    return {"timed": "reused" if reused else "now",
            "timed_at": datetime.fromtimestamp(timed_at, UTC).isoformat(timespec="seconds")}


def best_time(run: Callable[[], object], budget_s: float = BEST_TIME_S, at_least: int = 2) -> float:
    """The fastest of repeated runs of `run` (seconds), repeated for `budget_s` and at least `at_least` times:
    the minimum is the figure least disturbed by whatever else the machine does."""
    fastest = float("inf")
    began, runs = time.perf_counter(), 0
    while runs < at_least or time.perf_counter() - began < budget_s:
        started = time.perf_counter()
        run()
        fastest = min(fastest, time.perf_counter() - started)
        runs += 1
    return fastest


def fastest_in_turns(runs: Mapping[int, Callable[[], object]], turns: int = TURNS,
                     budget_s: float = TIME_FOR_TURNS_S) -> dict[int, float]:
    """The fastest time (seconds) of each of `runs`, timed in turns, one run of each per round, for at least `turns`
    rounds and `budget_s`. Every run gets the same number of tries, so the minimum favours none: a run timed
    alone for a fixed time gets more tries the faster it is, and the least of more tries comes out lower. A stall of
    the machine falls on one round of all of them."""
    fastest = dict.fromkeys(runs, float("inf"))
    began, rounds = time.perf_counter(), 0
    while rounds < turns or time.perf_counter() - began < budget_s:
        for key, run in runs.items():
            started = time.perf_counter()
            run()
            fastest[key] = min(fastest[key], time.perf_counter() - started)
        rounds += 1
    return fastest


class ServedCallers:
    """As many threads as a pool's instances fit on the cores (each on this process's threads per pass), each
    running the same work, all started together: a time taken through them includes what instances cost one
    another under load (the GIL, shared cores) and what one instance alone would not show."""

    def __init__(self) -> None:
        self.count = concurrent_passes()
        self._threads = ThreadPoolExecutor(self.count)

    def run(self, work: Callable[[], object]) -> None:
        """`work` on every caller at once; returns when all are done, raising what any raised."""
        start_together = threading.Barrier(self.count)

        def started() -> None:
            start_together.wait()
            work()

        for future in [self._threads.submit(started) for _ in range(self.count)]:
            future.result()

    def __enter__(self) -> ServedCallers:
        return self

    def __exit__(self, *exc: object) -> None:
        self._threads.shutdown()


def tune_batch_budget(engine: NEREngine, max_latency_factor: float = 4.0, max_calls: int = 64) -> BatchBudget:
    """Time batches of 1, 2, 4, ... sentence-sized texts, on every caller of `ServedCallers` at once, and keep the
    size that serves the most texts per second while one batch takes at most `max_latency_factor` x a single text;
    of sizes within 3% of the best, the smallest. The climb up the ladder (two runs per size, the first warming
    its shape) stops at the first size that breaks the bound; the sizes climbed are then timed in turns."""
    timed_at = time.time()
    text = (TUNING_TEXT * 4)[: TUNING_TEXT_TOKENS - 2]
    engine.predict_batch([text] * 2)  # first-call costs (allocations, kernel choice) are not the model's speed
    with ServedCallers() as callers:
        def served(size: int) -> Callable[[], object]:
            batch = [text] * size
            return lambda: callers.run(lambda: engine.predict_batch(batch))

        climbed: dict[int, Callable[[], object]] = {}
        single = 0.0
        for size in (s for s in BATCH_LADDER if s <= max_calls):
            climbed[size] = served(size)
            seconds = best_time(climbed[size], budget_s=0.0)
            single = single or seconds
            if seconds > max_latency_factor * single:
                break
        fastest = fastest_in_turns(climbed)
    timings = [BatchTiming(size, seconds) for size, seconds in fastest.items()]
    bound = max_latency_factor * timings[0].seconds
    best = max((t for t in timings if t.seconds <= bound), key=lambda t: t.texts_per_s)
    chosen = min((t for t in timings if t.size <= best.size and t.texts_per_s >= NEAR_BEST * best.texts_per_s),
                 key=lambda t: t.size)
    instances = f"{callers.count} instance{'s' if callers.count > 1 else ''}"
    reason = (f"{chosen.size} texts per batch served {chosen.texts_per_s * callers.count:.0f} texts/s on {instances} "
              f"at once ({chosen.texts_per_s / timings[0].texts_per_s:.2f}x one at a time) within "
              f"{max_latency_factor:g}x a single call's {timings[0].seconds * 1000:.1f} ms")
    return BatchBudget(chosen.size, chosen.size * TUNING_TEXT_TOKENS, tuple(timings), reason, timed_at)
