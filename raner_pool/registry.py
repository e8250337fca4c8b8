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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, cast

from raner_pool.batching import BatchingConfig
from raner_pool.cache import open_cache
from raner_pool.errors import RaNERError
from raner_pool.pool import RaNERModelPool

DEFAULT_COLORS = {"PER": "red", "LOC": "cyan", "ORG": "yellow"}
OTHER_COLOR = "white"
WARMUP_TEXT = "阿里巴巴集团创始人马云在杭州出席了技术峰会。"


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
    backend: str = "modelscope"
    device: str = "cpu"
    pool_size: int = 2
    max_text_chars: int = 100_000
    """Longer texts are refused (HTTP 413) rather than tying up an instance."""
    max_batch_texts: int = 1024
    """Texts one /ner/batch request may carry (HTTP 413 beyond)."""
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
    aliases: tuple[str, ...] = ()
    colors: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_COLORS))

    def color(self, entity_type: str) -> str:
        """Display colour of an entity type; types without one are white."""
        return self.colors.get(entity_type, OTHER_COLOR)


SETTING_TYPES: dict[str, type | tuple[type, ...]] = {
    "pool_size": int, "max_text_chars": int, "max_batch_texts": int, "max_waiting": int, "cache_size": int,
    "request_timeout_s": (int, float), "max_wait_ms": (int, float), "batching": bool, "aliases": list,
    "colors": dict,
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


class ModelRegistry:
    """Named pools; models load in `load_all` (optionally on a background thread) and are warmed up once."""

    def __init__(self, specs: list[ModelSpec]) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self._names: dict[str, str] = {}
        for spec in specs:
            for alias in (spec.name, *spec.aliases):
                if alias in self._names:
                    raise RegistryConfigError(f"model name {alias!r} is used twice")
                self._names[alias] = spec.name
        self._pools: dict[str, RaNERModelPool] = {}
        self.load_errors: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def default_name(self) -> str:
        """The model a request gets when it names none: the first in the file."""
        return next(iter(self.specs))

    def resolve(self, name: str | None) -> ModelSpec:
        """The spec a request's model name (or alias, or None for the default) refers to."""
        if name is None or name == "":
            return self.specs[self.default_name]
        if name not in self._names:
            raise UnknownModel(name, list(self.specs))
        return self.specs[self._names[name]]

    def pool(self, name: str) -> RaNERModelPool | None:
        """The loaded pool of a model, or None while it is still loading (or failed to)."""
        with self._lock:
            return self._pools.get(name)

    def load_all(self, on_loaded: Callable[[str, RaNERModelPool], None] | None = None) -> None:
        """Load and warm up every model, in file order; a model that fails is recorded, the others still load."""
        for spec in self.specs.values():
            try:
                batching = BatchingConfig(max_wait_ms=spec.max_wait_ms) if spec.batching else None
                pool = RaNERModelPool(
                    spec.model, spec.pool_size, backend=spec.backend, device=spec.device,
                    max_waiting=spec.max_waiting, batching=batching,
                    cache=open_cache(spec.cache_size, spec.cache_url or None),
                )
                for _ in range(spec.pool_size):
                    with pool.checkout() as engine:
                        engine.predict(WARMUP_TEXT)
                if on_loaded is not None:
                    on_loaded(spec.name, pool)
            except Exception as error:  # one broken model must not keep the others from serving
                self.load_errors[spec.name] = f"{type(error).__name__}: {error}"
                continue
            with self._lock:
                self._pools[spec.name] = pool

    @property
    def ready(self) -> bool:
        """Every model is loaded and warmed up."""
        with self._lock:
            return len(self._pools) == len(self.specs)

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
