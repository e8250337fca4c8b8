"""What a served model is: one `ModelSpec` per `[models.<name>]` table of a registry TOML file.

    [models.raner-default]
    model = "default"            # "default", a local model dir or a ModelScope id
    aliases = ["default"]
    pool_size = 2
    colors = { PER = "red", LOC = "cyan", ORG = "yellow" }
    timezone = "Asia/Shanghai"   # the zone its texts' times are read in (raner_pool.timezones)

With no file there is one spec: the embedded default model as `raner-default` (also reachable as `default`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, cast

from raner_pool.errors import RaNERError
from raner_pool.recognizers import EXTRA_TYPES, check_extra_types
from raner_pool.timezones import zone

DEFAULT_COLORS = {"PER": "red", "LOC": "cyan", "ORG": "yellow", "TIME": "green", "MONEY": "orange",
                  "PERCENT": "magenta", "TITLE": "blue", "PHONE": "pink", "EMAIL": "pink", "URL": "pink",
                  "ID_CARD": "pink"}
OTHER_COLOR = "white"


class RegistryConfigError(RaNERError):
    """The registry file is unreadable or names a setting with the wrong type."""


@dataclass(frozen=True)
class ModelSpec:
    """One served model: where it comes from, how it is pooled, and its per-request limits."""

    name: str
    """The served name: the `<name>` of its `[models.<name>]` table, what requests pass as `model`."""
    model: str = "default"
    """"default" (the embedded model), a local model dir (relative paths are read from where the server runs) or a
    ModelScope id (read from the local ModelScope cache; downloaded only when online)."""
    backend: str = "auto"
    """"auto": the fastest runtime and number format that keeps the answers, measured at load
    (raner_pool.choices.runtime); or one named in raner_pool.BACKENDS."""
    device: str = "cpu"
    """The torch device the model runs on ("cpu"; "cuda" where torch has one)."""
    dtype: str = "float32"
    """"bfloat16": autocast on CPUs with AVX512-BF16 or AMX (refused elsewhere)."""
    pool_size: int = 2
    """Model instances serving at once (with batching: micro-batch workers); they share one copy of the weights."""
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
    """Other names requests may use for this model."""
    colors: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_COLORS))
    """Display colour of each entity type (in /ner answers and the WebUI), merged over the defaults; types
    without one are white."""
    extra_types: tuple[str, ...] = EXTRA_TYPES
    """Types found by rules after the model (raner_pool.recognizers); [] for the model's types alone."""
    dictionaries: tuple[str, ...] = ()
    """Dictionary files (TSV or JSONL: term, type, id, override), matched after the model; relative paths are
    read from the registry file's dir. Part of the model's version: an edited one is reloaded like new weights."""
    patterns: tuple[str, ...] = ()
    """Pattern files (TSV or JSONL: regular expression, type, id, override), likewise."""
    train_dir: str = ""
    """Where Label Studio training (POST /label-studio/webhook START_TRAINING) writes the versions it promotes;
    set, it turns that training on for this model, and whenever it holds a model it is served instead of `model`
    (so a promoted version survives a restart). Relative paths are read from the registry file's dir."""
    train_minutes: float = 10.0
    """The time budget of one Label Studio training job."""
    timezone: str = ""
    """The IANA zone this model's texts' clock and relative times are read in (晚上8点, 明天), unless a request names
    one; "": $RANER_POOL_TIMEZONE, else Asia/Shanghai (raner_pool.timezones). Applies at once on a reload."""

    def color(self, entity_type: str) -> str:
        """Display colour of an entity type; types without one are white."""
        return self.colors.get(entity_type, OTHER_COLOR)


SETTING_TYPES: dict[str, type | tuple[type, ...]] = {
    "pool_size": int, "max_text_chars": int, "max_batch_texts": int, "max_waiting": int, "cache_size": int,
    "request_timeout_s": (int, float), "max_wait_ms": (int, float), "watch_s": (int, float), "batching": bool,
    "aliases": list, "colors": dict, "extra_types": list, "dictionaries": list, "patterns": list,
    "train_minutes": (int, float),
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
        if key in ("dictionaries", "patterns"):  # relative to the registry file, wherever the server runs
            value = [str((Path(path).parent / str(item)).resolve()) for item in cast(list[object], value)]
        values[key] = tuple(cast(list[str], value)) if key in ("aliases", "extra_types", "dictionaries",
                                                                "patterns") else value
    if "extra_types" in values:
        try:
            check_extra_types(values["extra_types"])
        except RaNERError as error:
            raise RegistryConfigError(f"{path}: models.{name}.extra_types: {error}") from None
    if "timezone" in values:
        try:
            values["timezone"] = zone(values["timezone"]).key
        except RaNERError as error:
            raise RegistryConfigError(f"{path}: models.{name}.timezone: {error}") from None
    if "colors" in values:
        values["colors"] = {**DEFAULT_COLORS, **values["colors"]}
    if values.get("train_dir"):
        values["train_dir"] = str((Path(path).parent / values["train_dir"]).resolve())
        if (Path(values["train_dir"]) / "configuration.json").is_file():  # a version training promoted
            values["model"] = values["train_dir"]
    return ModelSpec(name=name, **values)
