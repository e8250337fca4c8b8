"""Several named models side by side, each served by the pool in its `ModelSlot`, described by a registry TOML
file (raner_pool.model_specs); models are reloaded, added and removed while serving.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from pathlib import Path

from raner_pool.errors import RaNERError
from raner_pool.model_specs import ModelSpec, RegistryConfigError, load_specs
from raner_pool.pool import RaNERModelPool
from raner_pool.reload import ModelSlot, ReloadFailed, ReloadResult, build_pool, source_version

log = logging.getLogger(__name__)


class UnknownModel(RaNERError):
    """A model name that is in no registry entry, nor an alias of one."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"The model {name!r} does not exist. Known models: {', '.join(known)}")
        self.name = name
        self.known = known


@dataclass(frozen=True)
class RegistryReload:
    """What re-reading the registry file did, model by model."""

    added: list[str]
    removed: list[str]
    reloaded: list[ReloadResult]
    unchanged: list[str]
    failed: dict[str, str]


POOL_SETTINGS = ("model", "backend", "device", "dtype", "pool_size", "max_waiting", "batching", "max_wait_ms",
                 "cache_size", "cache_url", "extra_types", "dictionaries", "patterns")
"""Spec fields a pool is built from: a change to one of them means a new pool; the others apply at once."""


class ModelRegistry:
    """Named models, each served by the pool in its `ModelSlot`; models can be reloaded, added and removed while
    serving (`reload`, `reload_model`), and every pool is warmed up before it serves."""

    def __init__(self, specs: list[ModelSpec], source: Path | None = None, retune: bool = False) -> None:
        self.source = source
        """The registry file `reload` re-reads; None: the specs were given in code."""
        self.retune = retune
        """Time backend="auto" and batch budgets anew at the first load, rather than reuse earlier timings."""
        self.specs: dict[str, ModelSpec] = {spec.name: spec for spec in specs}
        self._names = _names_of(specs)
        self._slots = {spec.name: ModelSlot(spec.name) for spec in specs}
        self.listeners: list[Callable[[str, RaNERModelPool], None]] = []
        """Called with (name, pool) whenever a pool starts serving, e.g. to attach metrics."""
        self._lock = threading.Lock()
        self._reloading = threading.Lock()
        self._stop_watching = threading.Event()

    @classmethod
    def from_file(cls, path: Path | None) -> ModelRegistry:
        """The models of a registry TOML file (None: the embedded default), reloadable from that file."""
        return cls(load_specs(path), path)

    @property
    def default_name(self) -> str:
        """The model a request gets when it names none: the first in the file."""
        return next(iter(self.specs))

    def resolve(self, name: str | None) -> ModelSpec:
        """The spec a request's model name (or alias, or None for the default) refers to."""
        with self._lock:
            if name is None or name == "":
                return self.specs[self.default_name]
            if name not in self._names:
                raise UnknownModel(name, list(self.specs))
            return self.specs[self._names[name]]

    def slot(self, name: str) -> ModelSlot:
        with self._lock:
            if name not in self._slots:
                raise UnknownModel(name, list(self.specs))
            return self._slots[name]

    def entries(self) -> list[tuple[ModelSpec, ModelSlot]]:
        """Every model's spec and slot, in file order, as one consistent snapshot (a reload may follow)."""
        with self._lock:
            return [(spec, self._slots[name]) for name, spec in self.specs.items()]

    def lease(self, name: str) -> AbstractContextManager[RaNERModelPool]:
        """The serving pool of `name`, kept open for the block even if a reload replaces it meanwhile."""
        return self.slot(name).lease()

    def load_all(self) -> None:
        """Load and warm up every model, in file order; a model that fails is recorded, the others still load."""
        for spec in list(self.specs.values()):
            with suppress(ReloadFailed):  # one broken model must not keep the others from serving
                self._load(self.slot(spec.name), spec, self.retune)

    def reload_model(self, name: str, source: str | None = None) -> ReloadResult:
        """Load model `name` anew from its source, or from `source` (a model dir) which then becomes its source,
        and switch to it; `ReloadFailed` leaves the old one, and its source, serving."""
        with self._reloading:
            spec = self.resolve(name)
            new_spec = spec if source is None else dataclasses.replace(spec, model=source)
            result = self._load(self.slot(spec.name), new_spec)
            with self._lock:
                self.specs[spec.name] = new_spec
            return result

    def _load(self, slot: ModelSlot, spec: ModelSpec, retune: bool = False) -> ReloadResult:
        """Build `spec`'s pool beside the serving one and switch `slot` to it; on failure the old one stays."""
        try:
            pool = build_pool(spec, retune)
        except Exception as error:
            raise ReloadFailed(slot.record_failure(error)) from error
        result = slot.install(pool)
        self._announce(spec.name, pool)
        return result

    def reload(self) -> RegistryReload:
        """Re-read the registry file: load added models, reload changed ones (settings or source content), drop
        removed ones. New pools are built first, then switched in together; a model whose new version fails keeps
        its old version and settings. `RegistryConfigError` (a bad file) changes nothing."""
        with self._reloading:
            specs = load_specs(self.source) if self.source is not None else list(self.specs.values())
            _names_of(specs)
            built: dict[str, RaNERModelPool] = {}
            failed: dict[str, BaseException] = {}
            unchanged: list[str] = []
            for spec in specs:
                current = self.specs.get(spec.name)
                if current is not None and not self._needs_new_pool(current, spec):
                    unchanged.append(spec.name)
                    continue
                try:
                    built[spec.name] = build_pool(spec)
                except Exception as error:
                    failed[spec.name] = error
            final = [self.specs[s.name] if s.name in failed and s.name in self.specs else s for s in specs]
            try:
                names = _names_of(final)
            except RegistryConfigError:
                for pool in built.values():
                    pool.close()
                raise
            with self._lock:
                old_slots = self._slots
                self._slots = {s.name: old_slots.get(s.name) or ModelSlot(s.name) for s in final}
                self.specs = {s.name: s for s in final}
                self._names = names
            reloaded = [self._slots[name].install(pool) for name, pool in built.items()]
            messages = {name: self._slots[name].record_failure(error) for name, error in failed.items()}
            removed = [name for name in old_slots if name not in self._slots]
            for name in removed:
                old_slots[name].close()
            for name, pool in built.items():
                self._announce(name, pool)
            added = [r.model for r in reloaded if r.old_version is None]
            return RegistryReload(added, removed, [r for r in reloaded if r.old_version is not None], unchanged,
                                  messages)

    def _needs_new_pool(self, current: ModelSpec, new: ModelSpec) -> bool:
        slot = self.slot(new.name)
        if slot.pool is None or any(getattr(current, f) != getattr(new, f) for f in POOL_SETTINGS):
            return True
        try:
            return source_version(new) != slot.version
        except RaNERError:
            return True  # the source is gone: loading it will fail and say why

    def _announce(self, name: str, pool: RaNERModelPool) -> None:
        for listener in self.listeners:
            listener(name, pool)

    @property
    def loading(self) -> list[str]:
        """Models with no pool yet and no failure: still loading."""
        slots = self._slot_list()
        return [slot.name for slot in slots if slot.pool is None and slot.failure is None]

    @property
    def failures(self) -> dict[str, str]:
        """Why each model that failed to load (or to reload) did."""
        slots = self._slot_list()
        return {slot.name: slot.failure for slot in slots if slot.failure is not None}

    @property
    def ready(self) -> bool:
        """No model is still loading and at least one serves (a model that failed is reported, not waited for)."""
        slots = self._slot_list()
        return all(slot.pool is not None or slot.failure is not None for slot in slots) and any(
            slot.pool is not None for slot in slots
        )

    def _slot_list(self) -> list[ModelSlot]:
        with self._lock:
            return list(self._slots.values())

    def start_watching(self) -> threading.Thread:
        """Reload models with `watch_s` set whenever their source changes, on a background thread, until close."""
        thread = threading.Thread(target=self._watch_sources, name="raner-watch", daemon=True)
        thread.start()
        return thread

    def _watch_sources(self, tick_s: float = 1.0) -> None:
        """Until close: every `watch_s` seconds, look at each watched model's source and reload the model when the
        content changed. A source that cannot be read (offline, gone) is logged; the serving version stays."""
        next_check: dict[str, float] = {}
        while not self._stop_watching.wait(tick_s):
            now = time.monotonic()
            for spec in list(self.specs.values()):
                if spec.watch_s <= 0 or now < next_check.setdefault(spec.name, now + spec.watch_s):
                    continue
                next_check[spec.name] = now + spec.watch_s
                try:
                    changed = source_version(spec, refresh=True) != self.slot(spec.name).version
                except RaNERError as error:
                    log.warning("model %s: cannot check its source (%s); the serving version stays", spec.name, error)
                    continue
                if changed:
                    with suppress(ReloadFailed):  # logged and shown in /health; the old version keeps serving
                        self.reload_model(spec.name)

    def close(self) -> None:
        """Stop watching and serving: each pool closes once the requests running on it are done."""
        self._stop_watching.set()
        slots = self._slot_list()
        for slot in slots:
            slot.close()


def _names_of(specs: list[ModelSpec]) -> dict[str, str]:
    """Every name and alias, mapped to its model's name; a name used twice is a configuration error."""
    names: dict[str, str] = {}
    for spec in specs:
        for alias in (spec.name, *spec.aliases):
            if alias in names:
                raise RegistryConfigError(f"model name {alias!r} is used twice")
            names[alias] = spec.name
    return names
