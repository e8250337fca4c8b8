"""Result caches keyed by (model, model version, text): an in-process LRU, or Redis shared between processes.

Repeated texts (headlines, boilerplate, retries) skip the model entirely. The model version is a hash of the
weights, so a retrained model never serves its predecessor's answers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from raner_pool.entities import Entity
from raner_pool.errors import RaNERError

log = logging.getLogger(__name__)
WEIGHT_FILES = ("pytorch_model.bin", "model.safetensors", "model.onnx", "config.json", "configuration.json",
                "raner_pool.json", "vocab.txt", "label_mapping.json")
"""What a version covers: the weights and every file that changes an answer (raner_pool.json: window, calibration;
vocab.txt: how text becomes tokens; label_mapping.json: what the scores mean)."""


class ResultCache(Protocol):
    """Where a pool keeps answers it has already computed."""

    hits: int
    misses: int
    errors: int
    """Lookups or stores that failed (the answer was computed anyway)."""

    def get_many(self, keys: list[str]) -> list[list[Entity] | None]: ...

    def put_many(self, items: dict[str, list[Entity]]) -> None: ...


def model_version(model_dir: Path) -> str:
    """A short content hash of the model's weights and configuration."""
    digest = hashlib.sha256()
    for name in WEIGHT_FILES:
        path = model_dir / name
        if path.is_file():
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
    return digest.hexdigest()[:16]


def cache_key(model: str, version: str, text: str) -> str:
    """One key per (model, version, text); texts are hashed, so keys stay short whatever the text."""
    return f"raner:{model}:{version}:{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()}"


class LRUCache:
    """The `max_entries` most recently used answers, in this process."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self.hits = self.misses = self.errors = 0
        self._entries: OrderedDict[str, list[Entity]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get_many(self, keys: list[str]) -> list[list[Entity] | None]:
        found: list[list[Entity] | None] = []
        with self._lock:
            for key in keys:
                entities = self._entries.get(key)
                if entities is not None:
                    self._entries.move_to_end(key)
                found.append(entities)
            self.hits += sum(f is not None for f in found)
            self.misses += sum(f is None for f in found)
        return found

    def put_many(self, items: dict[str, list[Entity]]) -> None:
        with self._lock:
            for key, entities in items.items():
                self._entries[key] = entities
                self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


class RedisCache:
    """Answers in Redis, shared by every server process that points at it; entries expire after `ttl_s`.

    Redis is an accelerator, never a dependency: when it is unreachable (at start or later) the cache passes
    every text through to the model, counts the failure in `errors`, and leaves Redis alone for `backoff_s`
    before trying again, so an outage costs each request at most one short connect timeout per backoff.
    """

    def __init__(self, url: str, ttl_s: int = 86_400, timeout_s: float = 0.25, backoff_s: float = 1.0) -> None:
        import redis

        self.hits = self.misses = self.errors = 0
        self.url = url
        self.ttl_s = ttl_s
        self.backoff_s = backoff_s
        self._lock = threading.Lock()
        self._skip_until = 0.0
        try:
            self._redis: Any = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        except ValueError as error:  # a malformed URL is a configuration error, not an outage
            raise RaNERError(f"cannot use the Redis cache at {url}: {error}") from error

    def get_many(self, keys: list[str]) -> list[list[Entity] | None]:
        values = self._call("read", lambda: self._redis.mget(keys)) if keys else None
        found = [None if v is None else [Entity(**e) for e in json.loads(v)] for v in values or [None] * len(keys)]
        with self._lock:
            self.hits += sum(f is not None for f in found)
            self.misses += sum(f is None for f in found)
        return found

    def put_many(self, items: dict[str, list[Entity]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for key, entities in items.items():
            pipe.set(key, json.dumps([e.to_dict() for e in entities], ensure_ascii=False), ex=self.ttl_s)
        self._call("write", pipe.execute)

    def _call(self, what: str, command: Callable[[], Any]) -> Any:
        """Run a Redis command; None when Redis is failing (or was failing less than `backoff_s` ago)."""
        import redis

        if time.monotonic() < self._skip_until:
            return None
        try:
            return command()
        except redis.RedisError as error:
            with self._lock:
                self.errors += 1
            self._skip_until = time.monotonic() + self.backoff_s
            log.warning("Redis cache at %s unavailable (%s failed: %s); answering without it for %.1f s",
                        self.url, what, error, self.backoff_s)
            return None


def open_cache(size: int, url: str | None) -> ResultCache | None:
    """Redis when `url` is given, else an LRU of `size` entries, else (size 0) no cache."""
    if url:
        return RedisCache(url)
    return LRUCache(size) if size > 0 else None
