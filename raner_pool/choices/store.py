"""Timed choices kept on disk, so that a restart (or the next test server, or the next Kubernetes pod on the same
node type) reuses them instead of timing again.

A choice is only as good as the conditions it was timed under, so each is filed under everything it depends on:
the model version (a content hash), this machine (CPU model and flags, cores available, threads per forward
pass), the library versions that run the model, and the question asked (device, number format, latency bound).
When any of those differs the key differs, and the choice is timed anew. Files live in
$RANER_POOL_CACHE/choices (default ~/.cache/raner-pool); a store that cannot be written is only a slower start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import tempfile
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from raner_pool.hub import cache_root
from raner_pool.precision import cpu_flags
from raner_pool.threads import available_cores

log = logging.getLogger(__name__)

STORE_FORMAT = 6
"""Bumped when what a stored choice means changes: older files are then simply not found (2: torch backends
fuse their linear layers, so timings of unfused ones no longer say how fast they serve; 3: they run a batch's
texts together unpadded, faster again; 4: OpenVINO is a candidate, and candidates are timed by callers at once,
as a pool's instances serve; 5: batch budgets are timed so too; 6: their sizes are timed in turns, and
auto's two closest candidates run off)."""
LIBRARIES = ("raner-pool", "torch", "onnxruntime", "openvino", "transformers", "modelscope", "numpy")


@cache
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@cache
def _library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def machine_fingerprint() -> dict[str, Any]:
    """What a timing on this machine depends on, besides the model: CPU, cores, threads, library versions."""
    import torch

    return {
        "cpu": _cpu_model(),
        "cpu_flags": hashlib.sha256(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:16],
        "cores": available_cores(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "libraries": _library_versions(),
    }


class ChoiceStore:
    """Timed choices filed by what they depend on: `get` finds one timed under exactly `key`, `put` files one."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else cache_root() / "choices"

    def _path(self, kind: str, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        return self.root / f"{kind}-{digest}.json"

    def get(self, kind: str, key: dict[str, Any]) -> dict[str, Any] | None:
        """The choice of `kind` stored under `key`, or None (never stored, or unreadable: then it is re-timed)."""
        path = self._path(kind, key)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            log.warning("ignoring unreadable stored choice %s (%s); timing anew", path, error)
            return None
        if not isinstance(document, dict) or document.get("key") != key or not isinstance(document.get("value"), dict):
            return None
        value: dict[str, Any] = document["value"]
        return value

    def put(self, kind: str, key: dict[str, Any], value: dict[str, Any]) -> None:
        """File `value` under `key`, atomically (a concurrent reader sees the old file or the new one, whole)."""
        path = self._path(kind, key)
        text = json.dumps({"format": STORE_FORMAT, "key": key, "value": value}, ensure_ascii=False, indent=1)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor, partial = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            try:
                with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                    handle.write(text)
                os.replace(partial, path)
            finally:
                Path(partial).unlink(missing_ok=True)
        except OSError as error:
            log.warning("cannot keep the %s choice in %s (%s): the next start will time it again", kind, path, error)


def choice_key(model_version: str, **question: Any) -> dict[str, Any]:
    """The full key of a choice: format, model version, this machine, and what was asked."""
    return {"format": STORE_FORMAT, "model_version": model_version, "machine": machine_fingerprint(), **question}
