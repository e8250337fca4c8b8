"""A thread-safe pool of NER engine instances over one shared copy of the model weights."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from raner_pool import threads
from raner_pool.backends import Backend
from raner_pool.batching import BatchingConfig, BatchListener, MicroBatcher
from raner_pool.cache import ResultCache, cache_key
from raner_pool.choices.batch_budget import BatchBudget
from raner_pool.choices.runtime import BackendChoice
from raner_pool.engine import PIPELINE_READING, EngineConfig, NEREngine, check_texts
from raner_pool.entities import Entity, confident
from raner_pool.errors import PoolBusy, PoolClosed, PoolTimeout, RaNERError
from raner_pool.loading import load_model, settle_batch_budget
from raner_pool.recognizers import EXTRA_TYPES, RuleSet
from raner_pool.recognizers.user_rules import files_digest
from raner_pool.timezones import DEFAULT_TIMEZONE, default_timezone, pick_timezone, reference_in, zone


@dataclass(frozen=True)
class PoolConfig:
    """How a pool is built: which model, on which runtime and device, how many instances."""

    model: str = "default"
    """"default", a local model dir, or a ModelScope id."""
    pool_size: int = 4
    backend: str = "modelscope"
    device: str = "cpu"
    engine: EngineConfig = field(default_factory=EngineConfig)
    max_waiting: int | None = None
    """Callers allowed to wait for an instance at once; one more gets `PoolBusy` at once. None: no limit."""
    batching: BatchingConfig | None = None
    """Gather concurrent predict calls into shared batches, one worker per instance; None: one call per checkout."""
    dtype: str = "float32"
    """Number format of the forward pass: "float32", or "bfloat16" on CPUs with AVX512-BF16 or AMX."""
    torch_threads: int | None = None
    """Threads per forward pass; None: the cores divided by every open pool's instances (raner_pool.threads)."""
    retune: bool = False
    """Time backend="auto" and the batch budget anew, even when they were timed for this model and machine before."""
    extra_types: tuple[str, ...] = EXTRA_TYPES
    """Types found by rules after the model (raner_pool.recognizers): TIME, MONEY, PERCENT, TITLE; () for none."""
    timezone: str = DEFAULT_TIMEZONE
    """The IANA zone texts' clock and relative times are read in, unless a call names its own (raner_pool.timezones)."""


def version_with_rules(model_version: str, rule_files: Sequence[Path]) -> str:
    """The model's version, or with dictionary and pattern files a hash of it and their contents: an edited
    dictionary is a new version (what reloads and `watch_s` compare)."""
    if not rule_files:
        return model_version
    return hashlib.sha256(f"{model_version}:{files_digest(rule_files)}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of the pool's state and counters."""

    size: int
    idle: int
    in_use: int
    waiting: int
    served: int
    failed: int


class RaNERModelPool:
    """`pool_size` engine instances in a `queue.Queue`, checked out and returned by callers.

    Every instance runs the same backend, so the weights are held once
    (inference only reads them) and the pool bounds how many calls run at once.
    A checked-out instance goes back to the queue on every exit path.

        with RaNERModelPool("default", pool_size=4) as pool:
            pool.predict("阿里巴巴集团创始人马云在杭州出席了技术峰会。")
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = "default",
        pool_size: int = 4,
        *,
        backend: str = "modelscope",
        device: str = "cpu",
        engine_config: EngineConfig | None = None,
        max_waiting: int | None = None,
        batching: BatchingConfig | None = None,
        cache: ResultCache | None = None,
        dtype: str = "float32",
        torch_threads: int | None = None,
        retune: bool = False,
        extra_types: Sequence[str] | None = None,
        dictionaries: Sequence[str | os.PathLike[str]] = (),
        patterns: Sequence[str | os.PathLike[str]] = (),
        timezone: str | None = None,
    ) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        if max_waiting is not None and max_waiting < 0:
            raise ValueError(f"max_waiting must be 0 or more, got {max_waiting}")
        self.timezone = zone(timezone).key if timezone else default_timezone()
        """The IANA zone times are read in when a call names none: `timezone`, else $RANER_POOL_TIMEZONE, else
        Asia/Shanghai (raner_pool.timezones); an unknown name is refused here, before any loading."""
        dictionary_files, pattern_files = [Path(p) for p in dictionaries], [Path(p) for p in patterns]
        if extra_types is None:  # the pipeline has none: a pool reading texts as it does compares with it
            extra_types = () if engine_config == PIPELINE_READING else EXTRA_TYPES
        self.rules = RuleSet(extra_types, dictionary_files, pattern_files)
        """The recognisers of the extra types and the users' dictionaries and patterns, run after the model."""
        self.config = PoolConfig(
            str(model), pool_size, backend, device, engine_config or EngineConfig(), max_waiting, batching, dtype,
            torch_threads, retune, self.rules.types, self.timezone,
        )
        self.threads = threads.pool_opened(pool_size, torch_threads)
        """Threads per forward pass when the pool opened (process-wide; other pools opening later may lower it)."""
        try:
            loaded = load_model(model, backend, device, dtype, retune=retune)
        except BaseException:
            threads.pool_closed(pool_size, torch_threads)
            raise
        self.backend: Backend = loaded.backend
        self.backend_choice: BackendChoice | None = loaded.choice
        """Why backend="auto" serves with this runtime, and whether that was timed now or reused; None if named."""
        self.version = version_with_rules(loaded.version, [*dictionary_files, *pattern_files])
        """A short content hash of the weights and config (and of the dictionary and pattern files, if any):
        which model produced an answer."""
        self.batch_budget: BatchBudget | None = None
        """The batch budget the workers use (batching only), with the warm-up timings it was chosen from."""
        engine_config = self.config.engine
        if batching is not None:
            self.batch_budget = settle_batch_budget(loaded, engine_config, batching, retune=retune)
            batching = dataclasses.replace(batching, max_batch_tokens=self.batch_budget.max_batch_tokens,
                                           max_batch_calls=self.batch_budget.max_batch_calls)
            if self.batch_budget.timings:  # a large predict_batch call is best cut into the same batches
                engine_config = dataclasses.replace(engine_config,
                                                    max_batch_tokens=self.batch_budget.max_batch_tokens,
                                                    max_batch_size=self.batch_budget.max_batch_calls)
        self._idle: queue.Queue[NEREngine] = queue.Queue(maxsize=pool_size)
        for _ in range(pool_size):
            self._idle.put(NEREngine(self.backend, engine_config))
        self._lock = threading.Lock()
        self._waiting = self._served = self._failed = 0
        self._closed = False
        self.cache = cache
        self._batcher = None if batching is None else MicroBatcher(
            lambda: self._checkout(None, count=False), pool_size, batching, max_waiting,
            packed=self.backend.packs,
        )

    @property
    def labels(self) -> list[str]:
        """The model's tag labels, in label-id order."""
        return list(self.backend.labels)

    @property
    def entity_types(self) -> list[str]:
        """Every type this pool returns: the model's (from its labels), then the extra types."""
        model_types = dict.fromkeys(label.split("-", 1)[1] for label in self.backend.labels if "-" in label)
        return [*model_types, *(t for t in (*self.rules.types, *self.rules.user_types) if t not in model_types)]

    def checkout(self, timeout: float | None = None) -> AbstractContextManager[NEREngine]:
        """Borrow an instance, waiting up to `timeout` seconds (None: forever); it is always returned."""
        return self._checkout(timeout, count=True)

    def predict(
        self, text: str, timeout: float | None = None, *, min_prob: float = 0.0, reference_time: datetime | None = None,
        timezone: str | None = None,
    ) -> list[Entity]:
        """Entities of `text`, run on the next free instance (or in the next shared batch); with `min_prob`,
        only those the model is at least that sure of. Clock and relative times (晚上8点, 明天) are read in
        `timezone` (an IANA name; default: the pool's, see `reference`), relative ones against `reference_time`
        (default: now)."""
        return self.predict_batch([text], timeout, min_prob=min_prob, reference_time=reference_time,
                                  timezone=timezone)[0]

    def reference(self, reference_time: datetime | None = None, timezone: str | None = None) -> datetime:
        """The moment relative times are resolved against, as a wall clock in `timezone` or else the pool's
        (`self.timezone`): `reference_time` (a naive one is a wall clock in that zone), or now. Unknown zones are
        `UnknownTimezone`, a `RaNERError`."""
        return reference_in(pick_timezone(timezone, self.timezone), reference_time)

    def predict_batch(
        self, texts: Sequence[str], timeout: float | None = None, *, min_prob: float = 0.0,
        reference_time: datetime | None = None, timezone: str | None = None,
    ) -> list[list[Entity]]:
        """Entities of each text, in order: the model's from the cache, on one instance, or in shared batches,
        then the extra types' (read in `timezone` against `reference_time`, see `reference`); with `min_prob`,
        only those with `prob` at least that."""
        check_texts(texts)
        confident([], min_prob)  # a bad threshold is refused before any work
        reference = self.reference(reference_time, timezone)
        try:
            results = self._cached(texts, timeout) if self.cache is not None else self._compute(texts, timeout)
            results = self._apply_rules(texts, results, reference)
        except BaseException:
            self._count(served=False)
            raise
        self._count(served=True)
        return confident(results, min_prob)

    @property
    def submits(self) -> bool:
        """Whether `submit` is open: batching on and no result cache (a cache lookup may block, as on Redis)."""
        return self._batcher is not None and self.cache is None

    def submit(
        self, texts: Sequence[str], *, reference_time: datetime | None = None, timezone: str | None = None
    ) -> Future[list[list[Entity]]]:
        """What `predict_batch(texts)` returns, in a future completed on the pool's own threads, for callers that
        must not block, such as an event loop: the model's part runs in the shared batches, the rules on the
        batch worker after it has handed its instance back. Cancelling the future withdraws a call still queued.
        Only while `submits`; `PoolBusy` and `PoolClosed` are raised here, at once."""
        if not self.submits:
            raise RaNERError("submit needs a batching pool without a result cache; call predict_batch")
        assert self._batcher is not None
        check_texts(texts)
        reference = self.reference(reference_time, timezone)
        model_part = self._batcher.submit(texts)
        answer: Future[list[list[Entity]]] = Future()
        answer.add_done_callback(lambda done: done.cancelled() and model_part.cancel())

        def finish(done: Future[list[list[Entity]]]) -> None:
            if done.cancelled() or not answer.set_running_or_notify_cancel():
                return
            try:
                results = self._apply_rules(texts, done.result(), reference)
            except BaseException as error:
                self._count(served=False)
                answer.set_exception(error)
            else:
                self._count(served=True)
                answer.set_result(results)

        model_part.add_done_callback(finish)
        return answer

    def _cached(self, texts: Sequence[str], timeout: float | None) -> list[list[Entity]]:
        assert self.cache is not None
        keys = [cache_key(self.config.model, self.version, text) for text in texts]
        found = self.cache.get_many(keys)
        missing = [i for i, entities in enumerate(found) if entities is None]
        if missing:
            computed = self._compute([texts[i] for i in missing], timeout)
            self.cache.put_many({keys[i]: entities for i, entities in zip(missing, computed, strict=True)})
            for i, entities in zip(missing, computed, strict=True):
                found[i] = entities
        return [entities or [] for entities in found]

    def _compute(self, texts: Sequence[str], timeout: float | None) -> list[list[Entity]]:
        if self._batcher is None:
            with self._checkout(timeout, count=False) as engine:
                return engine.predict_batch(texts)
        idle = self._idle_instance()
        if idle is not None:  # nobody to batch with: handing over to a worker thread would only add latency
            try:
                results = idle.predict_batch(texts)
            finally:
                self._idle.put(idle)
            self._batcher.record_batch(1, [0.0])
            return results
        future = self._batcher.submit(texts)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise PoolTimeout(f"no result within {timeout} s (pool_size={self.config.pool_size})") from None

    def with_rules(
        self, texts: Sequence[str], model_results: list[list[Entity]], reference_time: datetime | None = None,
        timezone: str | None = None,
    ) -> list[list[Entity]]:
        """The model's entities of each text with the extra types' and the users' rules merged in. It runs after
        the result cache, which so holds only the model's answers, never a relative time resolved long ago."""
        return self._apply_rules(texts, model_results, self.reference(reference_time, timezone))

    def _apply_rules(
        self, texts: Sequence[str], model_results: list[list[Entity]], reference: datetime
    ) -> list[list[Entity]]:
        """`with_rules` against a reference already resolved (`reference`): its zone is the one times are read in."""
        if not self.rules.active:
            return model_results
        return [self.rules.apply(text, found, reference) for text, found in zip(texts, model_results, strict=True)]

    def count_tokens(self, text: str) -> int:
        """Sub-tokens the model sees for `text`, with [CLS] and [SEP]: the figure reported as prompt tokens."""
        return sum(len(ids) for ids in self.backend.tokenizer.encode(text)) + 2

    def add_batch_listener(self, listener: BatchListener) -> None:
        """Have `listener(calls_in_batch, queue_waits_s)` called after every shared batch (batching only)."""
        if self._batcher is not None:
            self._batcher.listeners.append(listener)

    def stats(self) -> PoolStats:
        """Size, idle and in-use instances, callers waiting, calls served and failed."""
        with self._lock:
            idle = self._idle.qsize()
            size = self.config.pool_size
            waiting = self._waiting if self._batcher is None else self._batcher.waiting
            return PoolStats(size, idle, size - idle, waiting, self._served, self._failed)

    def close(self) -> None:
        """Stop accepting calls; calls already running finish normally, queued ones get `PoolClosed`."""
        if not self._closed:
            threads.pool_closed(self.config.pool_size, self.config.torch_threads)
        self._closed = True
        if self._batcher is not None:
            self._batcher.close()

    def __enter__(self) -> RaNERModelPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _checkout(self, timeout: float | None, count: bool) -> Iterator[NEREngine]:
        engine = self._acquire(timeout)
        try:
            yield engine
        except BaseException:
            if count:
                self._count(served=False)
            raise
        else:
            if count:
                self._count(served=True)
        finally:
            self._idle.put(engine)

    def _idle_instance(self) -> NEREngine | None:
        """A free instance for a batching pool's caller to run on itself, when no call is queued (so no one is
        overtaken); None otherwise."""
        assert self._batcher is not None
        if self._closed or self._batcher.waiting:
            return None
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return None

    def _count(self, served: bool) -> None:
        with self._lock:
            if served:
                self._served += 1
            else:
                self._failed += 1

    def _acquire(self, timeout: float | None) -> NEREngine:
        if self._closed:
            raise PoolClosed("the pool is closed")
        with self._lock:
            limit = self.config.max_waiting
            if limit is not None and self._idle.empty() and self._waiting >= limit:
                raise PoolBusy(f"{self._waiting} callers are already waiting for an instance (max_waiting={limit})")
            self._waiting += 1
        try:
            engine = self._idle.get(timeout=timeout)
        except queue.Empty:
            raise PoolTimeout(
                f"no pool instance became free within {timeout} s (pool_size={self.config.pool_size})"
            ) from None
        finally:
            with self._lock:
                self._waiting -= 1
        if self._closed:
            self._idle.put(engine)
            raise PoolClosed("the pool is closed")
        return engine
