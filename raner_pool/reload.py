"""Hot model updates: a new pool loads and warms up beside the serving one, then takes its place atomically.

A `ModelSlot` holds the pool that serves one model name. Requests lease the
current pool for as long as they run on it; `swap` puts a new pool in the slot
at once, and the old one is closed (and its memory given back) only when its
last lease ends, so a request queued or running on it finishes there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from raner_pool.batching import BatchingConfig
from raner_pool.cache import model_version, open_cache
from raner_pool.errors import RaNERError
from raner_pool.hub import resolve_model_dir
from raner_pool.memory import return_freed_memory
from raner_pool.model_specs import ModelSpec
from raner_pool.pool import RaNERModelPool, version_with_rules

log = logging.getLogger(__name__)
WARMUP_TEXT = "阿里巴巴集团创始人马云在杭州出席了技术峰会。"


class ModelUnavailable(RaNERError):
    """The model has no pool to serve with: it is still loading, or it failed to load (`failure` says why)."""

    def __init__(self, name: str, failure: str | None) -> None:
        message = f"model {name!r} failed to load: {failure}" if failure else f"model {name!r} is still loading"
        super().__init__(message)
        self.failure = failure


class ReloadFailed(RaNERError):
    """A new version of a model could not be loaded; the one serving before still serves."""


@dataclass(frozen=True)
class ReloadResult:
    """What one reload did: the version that served before (None: none did) and the one serving now."""

    model: str
    old_version: str | None
    new_version: str | None
    changed: bool


def build_pool(spec: ModelSpec, retune: bool = False) -> RaNERModelPool:
    """Load the pool `spec` describes and warm up every instance, so its first request is not slow; `retune` times
    backend="auto" and the batch budget anew rather than reusing what was timed for this model and machine."""
    batching = BatchingConfig(max_wait_ms=spec.max_wait_ms) if spec.batching else None
    pool = RaNERModelPool(
        spec.model, spec.pool_size, backend=spec.backend, device=spec.device, dtype=spec.dtype,
        max_waiting=spec.max_waiting, batching=batching, cache=open_cache(spec.cache_size, spec.cache_url or None),
        retune=retune, extra_types=spec.extra_types, dictionaries=spec.dictionaries, patterns=spec.patterns,
    )
    try:
        for _ in range(spec.pool_size):
            with pool.checkout() as engine:
                engine.predict(WARMUP_TEXT)
    except BaseException:
        pool.close()
        raise
    return pool


def source_version(spec: ModelSpec, refresh: bool = False) -> str:
    """The version the model's source holds now (a content hash), without loading it; `refresh` asks the
    ModelScope hub for a newer revision of an id first (when online)."""
    rule_files = [Path(p) for p in (*spec.dictionaries, *spec.patterns)]
    return version_with_rules(model_version(resolve_model_dir(spec.model, refresh)), rule_files)


class ModelSlot:
    """The pool serving one model name, swapped atomically; a pool is closed once no request leases it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.failure: str | None = None
        """Why the model could not be loaded (first load or latest reload); None after a good load."""
        self.last_reload: dict[str, object] | None = None
        self.loads = self.load_failures = 0
        """Pools that started serving in this slot, and loads that failed (first load or reload)."""
        self._pool: RaNERModelPool | None = None
        self._leases: dict[int, int] = {}
        self._retired: dict[int, RaNERModelPool] = {}
        self._lock = threading.Lock()

    @property
    def pool(self) -> RaNERModelPool | None:
        """The serving pool, or None while none has loaded."""
        return self._pool

    @property
    def version(self) -> str | None:
        """The serving pool's version (content hash), or None while none serves."""
        pool = self._pool
        return None if pool is None else pool.version

    @contextmanager
    def lease(self) -> Iterator[RaNERModelPool]:
        """The serving pool, kept open until the block ends even if a reload replaces it meanwhile."""
        with self._lock:
            pool = self._pool
            if pool is None:
                raise ModelUnavailable(self.name, self.failure)
            self._leases[id(pool)] = self._leases.get(id(pool), 0) + 1
        try:
            yield pool
        finally:
            with self._lock:
                self._leases[id(pool)] -= 1
                done = False
                if self._leases[id(pool)] == 0:
                    del self._leases[id(pool)]
                    done = self._retired.pop(id(pool), None) is not None
            if done:
                _release(pool)

    def swap(self, pool: RaNERModelPool | None) -> None:
        """Serve `pool` from now on (None: serve nothing); the previous pool closes when its last lease ends."""
        with self._lock:
            old, self._pool = self._pool, pool
            if pool is not None:
                self.failure = None
            if old is None:
                return
            idle = id(old) not in self._leases
            if not idle:
                self._retired[id(old)] = old
        if idle:
            _release(old)

    def install(self, pool: RaNERModelPool) -> ReloadResult:
        """Serve a freshly built `pool` from now on, and record the switch."""
        old_version = self.version
        self.swap(pool)
        self.loads += 1
        self.last_reload = {"at": time.time(), "from": old_version, "to": pool.version, "error": None}
        if old_version is not None:
            log.info("model %s: version %s -> %s", self.name, old_version, pool.version)
        return ReloadResult(self.name, old_version, pool.version, changed=old_version != pool.version)

    def record_failure(self, error: BaseException) -> str:
        """Note that a load failed (the serving pool, if any, stays); the message names the model and the reason."""
        self.failure = f"{type(error).__name__}: {error}"
        self.load_failures += 1
        serving = self.version
        self.last_reload = {"at": time.time(), "from": serving, "to": None, "error": self.failure}
        message = f"model {self.name!r} could not be loaded: {self.failure}"
        message += f"; version {serving} still serves" if serving else "; it serves nothing"
        log.error("%s", message)
        return message

    def close(self) -> None:
        """Stop serving: the pool closes once requests running on it are done."""
        self.swap(None)


def _release(pool: RaNERModelPool) -> None:
    """Close a pool no request uses any more; its memory goes back to the OS once the last references are gone."""
    pool.close()
    timer = threading.Timer(1.0, return_freed_memory)
    timer.daemon = True
    timer.start()
