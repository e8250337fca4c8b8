"""How a pool gets its model: the runtime named, or with backend="auto" the one timed fastest on this machine;
and how its batch budget is settled. Both timed choices are kept per model version and machine
(raner_pool.choices.store) and reused at the next start, unless `retune` asks for a fresh timing.

This is the floor between the engine (which the timings need) and the pool (which uses what they chose).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from raner_pool.backends import RUNTIMES, Backend, load_runtime
from raner_pool.batching import BatchingConfig
from raner_pool.cache import model_version
from raner_pool.choices.batch_budget import BatchBudget, tune_batch_budget
from raner_pool.choices.runtime import MIN_AGREEMENT, BackendChoice, choose_runtime
from raner_pool.choices.store import ChoiceStore, choice_key
from raner_pool.engine import EngineConfig, NEREngine
from raner_pool.errors import RaNERError
from raner_pool.hub import resolve_model_dir
from raner_pool.precision import check_dtype

log = logging.getLogger(__name__)

BACKENDS = ("auto", *RUNTIMES)
T = TypeVar("T")


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for engines: its runtime, why that runtime (backend="auto" only), and its version."""

    backend: Backend
    choice: BackendChoice | None
    """Why backend="auto" picked this runtime, with what its timing measured; None when it was named."""
    version: str
    """A short content hash of the weights and config (raner_pool.cache.model_version)."""
    device: str
    dtype: str
    """The number format it computes in (for "auto", the one chosen)."""


_preloaded: dict[tuple[str, str, str, str], LoadedModel] = {}


def load_model(
    model: str | os.PathLike[str], backend: str = "modelscope", device: str = "cpu", dtype: str = "float32",
    *, retune: bool = False, store: ChoiceStore | None = None,
) -> LoadedModel:
    """Load `model` ("default", a dir or a ModelScope id) with the named runtime, computing in `dtype`. "auto"
    uses the runtime timed fastest (with answers kept) for this model on this machine before, or times every
    runtime and number format now when none was (or with `retune`); with dtype="bfloat16", only runtimes
    computing in bfloat16 compete."""
    if backend not in BACKENDS:
        raise RaNERError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    check_dtype(dtype, "modelscope" if backend == "auto" else backend, device)
    model_dir = resolve_model_dir(model)
    preloaded = _preloaded.pop((str(model_dir), backend, device, dtype), None)
    if preloaded is not None:  # each process takes it once: a later reload loads the source anew
        return preloaded
    version = model_version(model_dir)
    if backend != "auto":
        return LoadedModel(load_runtime(model_dir, backend, device, dtype), None, version, device, dtype)
    store = store or ChoiceStore()
    key = choice_key(version, device=device, dtype=dtype, min_agreement=MIN_AGREEMENT)
    stored = None if retune else _reuse(store, "runtime", key, BackendChoice.from_stored)
    if stored is not None:
        try:
            runtime = load_runtime(model_dir, stored.backend, device, stored.dtype)
        except Exception as error:  # e.g. an ONNX export that can no longer be written: choose again
            log.warning("the runtime chosen before for %s (%s) does not load (%s); timing anew", model_dir,
                        stored.backend, error)
        else:
            log.info("backend for %s: %s (timed before, reused)", model_dir, stored.reason)
            return LoadedModel(runtime, stored, version, device, stored.dtype)
    runtime, choice = choose_runtime(model_dir, device, dtype)
    store.put("runtime", key, choice.stored())
    return LoadedModel(runtime, choice, version, device, choice.dtype)


def load_backend(
    model: str | os.PathLike[str], backend: str = "modelscope", device: str = "cpu", dtype: str = "float32"
) -> Backend:
    """Just the runtime of `load_model`: what an engine (`NEREngine(load_backend(...))`) runs on."""
    return load_model(model, backend, device, dtype).backend


def preload_model(
    model: str | os.PathLike[str], backend: str = "modelscope", device: str = "cpu", dtype: str = "float32",
    *, retune: bool = False,
) -> LoadedModel:
    """Load a model now and keep it for the next `load_model` of the same model, here or in a process forked
    from here: a server loads weights once before forking its workers, which then share them copy-on-write."""
    loaded = load_model(model, backend, device, dtype, retune=retune)
    _preloaded[(str(loaded.backend.model_dir), backend, device, dtype)] = loaded
    return loaded


def settle_batch_budget(
    loaded: LoadedModel, engine_config: EngineConfig, batching: BatchingConfig,
    *, retune: bool = False, store: ChoiceStore | None = None,
) -> BatchBudget:
    """The budget `batching` gives, or for what it leaves open the one timed for this model, runtime and machine
    before (or now, when none was or with `retune`); a model that cannot be timed keeps the defaults."""
    defaults = EngineConfig()
    given = BatchBudget(batching.max_batch_calls or defaults.max_batch_size,
                        batching.max_batch_tokens or defaults.max_batch_tokens, reason="configured")
    if not batching.tuned:
        return given
    store = store or ChoiceStore()
    key = choice_key(loaded.version, runtime=loaded.backend.kind, device=loaded.device, dtype=loaded.dtype,
                     engine=dataclasses.asdict(engine_config), max_latency_factor=batching.max_latency_factor,
                     packs=loaded.backend.packs)  # a packed batch's tokens count differently
    tuned = None if retune else _reuse(store, "batch-budget", key, BatchBudget.from_stored)
    if tuned is None:
        try:
            tuned = tune_batch_budget(NEREngine(loaded.backend, engine_config), batching.max_latency_factor)
        except Exception as error:  # a model that fails here fails its real calls too, with the reason
            log.warning("could not time batches of %s (%s); using the default batch budget",
                        loaded.backend.model_dir, error)
            return dataclasses.replace(given, reason=f"defaults: timing failed ({error})")
        store.put("batch-budget", key, tuned.stored())
    log.info("batch budget for %s: %s%s", loaded.backend.model_dir, tuned.reason,
             " (timed before, reused)" if tuned.reused else "")
    return dataclasses.replace(tuned, max_batch_calls=batching.max_batch_calls or tuned.max_batch_calls,
                               max_batch_tokens=batching.max_batch_tokens or tuned.max_batch_tokens)


def _reuse(store: ChoiceStore, kind: str, key: dict[str, Any], read: Callable[[dict[str, Any]], T]) -> T | None:
    """The stored choice of `kind` under `key`, read back by `read`; None when there is none or it is malformed."""
    value = store.get(kind, key)
    if value is None:
        return None
    try:
        return read(value)
    except (KeyError, TypeError, ValueError) as error:
        log.warning("ignoring a malformed stored %s choice (%s); timing anew", kind, error)
        return None
