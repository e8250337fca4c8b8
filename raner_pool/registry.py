"""Several named models side by side, each with its own pool, described by a TOML file.

    [models.raner-default]
    model = "default"            # "default", a local model dir or a ModelScope id
    aliases = ["default"]
    pool_size = 2
    colors = { PER = "red", LOC = "cyan", ORG = "yellow" }

With no file the registry holds the embedded default model as `raner-default`
(also reachable as `default`).
"""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, cast

from raner_pool.errors import RaNERError
from raner_pool.pool import RaNERModelPool
from raner_pool.reload import ModelSlot, ReloadFailed, ReloadResult, build_pool, source_version, watch_sources

DEFAULT_COLORS = {"PER": "red", "LOC": "cyan", "ORG": "yellow"}
OTHER_COLOR = "white"


class UnknownModel(RaNERError):
    """A model name that is in no registry entry, nor an alias of one."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"The model {name!r} does not exist. Known models: {', '.join(known)}")
        self.name = name
        self.known = known


class RegistryConfigError(RaNERError):
    """The registry file is unreadable or names a setting with the wrong type."""


@dataclass(frozen=True)
class ModelSpec:
    """One served model: where it comes from, how it is pooled, and its per-request limits."""

    name: str
    model: str = "default"
    backend: str = "auto"
    """"auto": the fastest runtime and number format that keeps the answers, measured at load
    (raner_pool.backends.auto); or one named in raner_pool.BACKENDS."""
    device: str = "cpu"
    dtype: str = "float32"
    """"bfloat16": autocast on CPUs with AVX512-BF16 or AMX (refused elsewhere)."""
    pool_size: int = 2
    max_text_chars: int = 100_000
    """Longer texts are refused (HTTP 413) rather than tying up an instance."""
    max_batch_texts: int = 64
    """Texts one /ner/batch request may carry (HTTP 413 beyond). With max_text_chars it sets the default body
    limit (about 19 MB at the defaults), which is what a refused oversized body may cost in memory."""
    max_waiting: int = 64
    """Requests allowed to queue for an instance; more are refused at once (HTTP 429)."""
    request_timeout_s: float = 30.0
    """How long a request waits for a free instance before it is refused (HTTP 503)."""
    batching: bool = True
    """Gather concurrent requests into shared forward passes (see raner_pool.batching)."""
    max_wait_ms: float = 1.0
    """With batching: how long the oldest request waits for others to join its batch."""
    cache_size: int = 0
    """Answers kept in an in-process LRU cache; 0: no cache."""
    cache_url: str = ""
    """A redis:// URL: keep answers in Redis instead, shared between server processes."""
    watch_s: float = 0.0
    """Poll the model's source this often (seconds) and reload it when its content changed; 0: never."""
    aliases: tuple[str, ...] = ()
    colors: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_COLORS))

    def color(self, entity_type: str) -> str:
        """Display colour of an entity type; types without one are white."""
        return self.colors.get(entity_type, OTHER_COLOR)


SETTING_TYPES: dict[str, type | tuple[type, ...]] = {
    "pool_size": int, "max_text_chars": int, "max_batch_texts": int, "max_waiting": int, "cache_size": int,
    "request_timeout_s": (int, float), "max_wait_ms": (int, float), "watch_s": (int, float), "batching": bool,
    "aliases": list, "colors": dict,
}
DEFAULT_SPEC = ModelSpec(name="raner-default", model="default", aliases=("default",))


def load_specs(path: Path | None) -> list[ModelSpec]:
    """The model specs of a registry TOML file; with no file, the embedded default model."""
    if path is None:
        return [DEFAULT_SPEC]
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RegistryConfigError(f"cannot read registry file {path}: {error}") from error
    tables = document.get("models")
    if not isinstance(tables, dict) or not tables:
        raise RegistryConfigError(f"{path}: no [models.<name>] tables")
    return [_spec(name, table, path) for name, table in tables.items()]


def _spec(name: str, table: Any, path: Path) -> ModelSpec:
    if not isinstance(table, dict):
        raise RegistryConfigError(f"{path}: models.{name} must be a table")
    known = {f.name: f for f in fields(ModelSpec) if f.name != "name"}
    values: dict[str, Any] = {}
    for key, value in cast(dict[str, Any], table).items():
        if key not in known:
            raise RegistryConfigError(f"{path}: models.{name}.{key} is not a setting; use one of {', '.join(known)}")
        expected = SETTING_TYPES.get(key, str)
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
            raise RegistryConfigError(f"{path}: models.{name}.{key} has the wrong type ({type(value).__name__})")
        values[key] = tuple(cast(list[str], value)) if key == "aliases" else value
    if "colors" in values:
        values["colors"] = {**DEFAULT_COLORS, **values["colors"]}
    return ModelSpec(name=name, **values)


@dataclass(frozen=True)
class RegistryReload:
    """What re-reading the registry file did, model by model."""

    added: list[str]
    removed: list[str]
    reloaded: list[ReloadResult]
    unchanged: list[str]
    failed: dict[str, str]


POOL_SETTINGS = ("model", "backend", "device", "dtype", "pool_size", "max_waiting", "batching", "max_wait_ms",
                 "cache_size", "cache_url")
"""Spec fields a pool is built from: a change to one of them means a new pool; the others apply at once."""


class ModelRegistry:
    """Named models, each served by the pool in its `ModelSlot`; models can be reloaded, added and removed while
    serving (`reload`, `reload_model`), and every pool is warmed up before it serves."""

    def __init__(self, specs: list[ModelSpec], source: Path | None = None) -> None:
        self.source = source
        """The registry file `reload` re-reads; None: the specs were given in code."""
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
                self._load(self.slot(spec.name), spec)

    def reload_model(self, name: str) -> ReloadResult:
        """Load model `name` anew from its source and switch to it; `ReloadFailed` leaves the old one serving."""
        with self._reloading:
            spec = self.resolve(name)
            return self._load(self.slot(spec.name), spec)

    def _load(self, slot: ModelSlot, spec: ModelSpec) -> ReloadResult:
        """Build `spec`'s pool beside the serving one and switch `slot` to it; on failure the old one stays."""
        try:
            pool = build_pool(spec)
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
        thread = threading.Thread(target=watch_sources, args=(self, self._stop_watching), name="raner-watch",
                                  daemon=True)
        thread.start()
        return thread

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
