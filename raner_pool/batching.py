"""Dynamic micro-batching: concurrent calls share forward passes, run by the pool's instances.

Each pool instance is a worker thread. A worker takes the oldest waiting call,
waits up to `max_wait_ms` for company when every other worker is busy too (an
idle worker would serve a newcomer at once, so waiting then only adds
latency), then fills the batch with the calls closest in length to it from a
small FIFO window (so padding stays low and no call starves: the oldest is
always in the next batch), under a padded-token budget and a call cap, which
by default are timed for the model at warm-up (raner_pool.choices.batch_budget). Calls
whose caller gave up are skipped. One call larger than the budget still runs,
alone: the engine windows it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from raner_pool.engine import NEREngine, batch_cost
from raner_pool.entities import Entity
from raner_pool.errors import PoolBusy, PoolClosed, RaNERError

log = logging.getLogger(__name__)
Results = list[list[Entity]]
BatchListener = Callable[[int, list[float]], None]
"""Called after each batch with the number of calls in it and how long each waited, in seconds."""


@dataclass(frozen=True)
class BatchingConfig:
    """How calls are gathered into batches."""

    max_wait_ms: float = 1.0
    """How long the oldest call may wait for others to join it (only while all workers are busy); 0 takes only
    what is already there."""
    max_batch_tokens: int | None = None
    """Characters per batch: longest call x calls in the batch, or their sum where the backend packs rows
    (Backend.packs). None: timed at warm-up."""
    max_batch_calls: int | None = None
    """Calls per batch. None: timed at warm-up."""
    max_latency_factor: float = 4.0
    """Warm-up tuning bound: a batch may take at most this many times a single call."""
    fifo_window: int = 256
    """Calls, oldest first, among which a batch is grouped by length."""

    @property
    def tuned(self) -> bool:
        """Whether the budget is left to warm-up measurement."""
        return self.max_batch_tokens is None or self.max_batch_calls is None


@dataclass
class _Call:
    texts: Sequence[str]
    size: int
    future: Future[Results] = field(default_factory=Future)
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Queue of pending calls drained by `workers` threads, each running batches on a checked-out engine."""

    def __init__(
        self,
        checkout: Callable[[], AbstractContextManager[NEREngine]],
        workers: int,
        config: BatchingConfig,
        max_waiting: int | None = None,
        packed: bool = False,
    ) -> None:
        if config.max_batch_tokens is None or config.max_batch_calls is None:
            raise ValueError("the batch budget must be settled (tuned or given) before the batcher starts")
        self.config = config
        self.max_batch_tokens: int = config.max_batch_tokens
        self.max_batch_calls: int = config.max_batch_calls
        self.max_waiting = max_waiting
        self.packed = packed
        """Whether the engines pack rows (NEREngine.packs): a batch then costs the sum of its calls' sizes."""
        self.listeners: list[BatchListener] = []
        self._checkout = checkout
        self._pending: deque[_Call] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._workers = workers
        self._busy = 0
        """Workers holding an instance right now."""
        self._threads: list[threading.Thread] = []
        self._worker_ids = itertools.count()
        for _ in range(workers):
            self._start_worker()

    @property
    def waiting(self) -> int:
        """Calls queued and not yet taken into a batch."""
        with self._ready:
            return len(self._pending)

    def submit(self, texts: Sequence[str]) -> Future[Results]:
        """Queue one call; its future gets one entity list per text, or the exception the engine raised."""
        call = _Call(texts, max((len(t) for t in texts), default=0) + 2)
        with self._ready:
            if self._closed:
                raise PoolClosed("the pool is closed")
            if self.max_waiting is not None and len(self._pending) >= self.max_waiting:
                raise PoolBusy(f"{len(self._pending)} calls are already waiting (max_waiting={self.max_waiting})")
            self._pending.append(call)
            self._ready.notify()
        return call.future

    def close(self) -> None:
        """Stop the workers once the queue is empty (the pool refuses them instances from now on)."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def _work(self) -> None:
        """Serve batches until the pool closes. A worker that fails unexpectedly fails only the calls it held,
        and a new worker takes its place, so the pool never loses a worker and no caller waits forever."""
        try:
            while self._serve_one_batch():
                pass
        except Exception:
            log.exception("a batch worker failed; starting a replacement")
            with self._ready:
                if not self._closed:
                    self._start_worker()

    def _start_worker(self) -> None:
        thread = threading.Thread(target=self._work, name=f"raner-batcher-{next(self._worker_ids)}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _serve_one_batch(self) -> bool:
        """Wait for calls, get an instance, and only then take a batch off the queue: until an instance is free,
        calls stay queued, counted as waiting and cancellable by callers who give up. The answers are given once
        the instance is back, so what their futures' callbacks do (a pool's rules) never holds it. False: the
        pool closed."""
        with self._ready:
            while not self._pending and not self._closed:
                self._ready.wait()
            if not self._pending:
                return False
        live: list[_Call] = []
        answers: list[Results | BaseException] = []
        try:
            try:
                with self._checkout() as engine:
                    with self._ready:
                        self._busy += 1
                    try:
                        started = time.perf_counter()
                        live = [call for call in self._take_batch() if call.future.set_running_or_notify_cancel()]
                        if live:
                            answers = self._answer(engine, live, started)
                    finally:
                        with self._ready:
                            self._busy -= 1
            except PoolClosed as error:  # no instance to be had: nobody may wait forever
                self._fail_pending(error)
                return False
            for call, answer in zip(live, answers, strict=False):
                if isinstance(answer, BaseException):
                    call.future.set_exception(answer)
                else:
                    call.future.set_result(answer)
        finally:
            for call in live:
                if not call.future.done():
                    call.future.set_exception(RaNERError("the batch worker failed on this call; see the log"))
        return True

    def _fail_pending(self, error: Exception) -> None:
        with self._ready:
            pending, self._pending = list(self._pending), deque()
        for call in pending:
            if call.future.set_running_or_notify_cancel():
                call.future.set_exception(error)

    def _take_batch(self) -> list[_Call]:
        """The oldest call and the calls nearest its length within the window (none if others took them all)."""
        config = self.config
        with self._ready:
            if not self._pending:
                return []
            if config.max_wait_ms > 0 and not self._closed and self._busy >= self._workers:
                deadline = self._pending[0].enqueued + config.max_wait_ms / 1000
                while len(self._pending) < self.max_batch_calls and not self._closed:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0 or not self._pending:
                        break
                    self._ready.wait(remaining)
                if not self._pending:
                    return []
            window = [self._pending[i] for i in range(min(len(self._pending), config.fifo_window))]
            by_size = sorted(range(len(window)), key=lambda i: window[i].size)
            oldest = by_size.index(0)
            low, high = oldest, oldest + 1
            chosen = [0]
            sizes = [window[0].size]
            while len(chosen) < self.max_batch_calls and (low > 0 or high < len(by_size)):
                below = window[by_size[low - 1]].size if low > 0 else None
                above = window[by_size[high]].size if high < len(by_size) else None
                longest = window[by_size[high - 1]].size  # the chosen calls are by_size[low:high]
                take_above = below is None or (above is not None and above - longest <= longest - below)
                candidate = by_size[high] if take_above else by_size[low - 1]
                if batch_cost([*sizes, window[candidate].size], self.packed) > self.max_batch_tokens:
                    break
                chosen.append(candidate)
                sizes.append(window[candidate].size)
                if take_above:
                    high += 1
                else:
                    low -= 1
            batch = [window[i] for i in sorted(chosen)]
            taken = {id(call) for call in batch}
            self._pending = deque(call for call in self._pending if id(call) not in taken)
            return batch

    def _answer(self, engine: NEREngine, calls: list[_Call], started: float) -> list[Results | BaseException]:
        """Each call's results, or the exception the engine raised on it."""
        texts = [text for call in calls for text in call.texts]
        try:
            results = engine.predict_batch(texts)
        except Exception as error:
            if len(calls) > 1:  # find the call at fault; the others still get their answers
                return [answer for call in calls for answer in self._answer(engine, [call], started)]
            return [error]
        answers: list[Results | BaseException] = []
        offset = 0
        for call in calls:
            answers.append(results[offset : offset + len(call.texts)])
            offset += len(call.texts)
        self.record_batch(len(calls), [started - call.enqueued for call in calls])
        return answers

    def record_batch(self, calls: int, waits: list[float]) -> None:
        """Tell the listeners about a batch that ran (here, or on a caller's thread: see RaNERModelPool)."""
        for listener in self.listeners:
            try:
                listener(calls, waits)
            except Exception:  # an observer's fault must not touch the answers already given
                log.exception("batch listener %r failed", listener)
