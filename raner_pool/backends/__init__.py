"""Model runtimes behind one protocol; `load_backend` picks one by name."""

from __future__ import annotations

import os

from raner_pool.backends.base import Backend
from raner_pool.errors import RaNERError
from raner_pool.hub import resolve_model_dir
from raner_pool.precision import check_dtype

BACKENDS = ("auto", "modelscope", "transformers", "onnx", "onnx-int8")
_preloaded: dict[tuple[str, str, str, str], Backend] = {}


def preload_backend(
    model: str | os.PathLike[str], backend: str = "modelscope", device: str = "cpu", dtype: str = "float32"
) -> Backend:
    """Load a model now and keep it for the next `load_backend` of the same model, here or in a process forked
    from here: a server loads weights once before forking its workers, which then share them copy-on-write."""
    loaded = load_backend(model, backend, device, dtype)
    _preloaded[(str(loaded.model_dir), backend, device, dtype)] = loaded
    return loaded


def load_backend(
    model: str | os.PathLike[str], backend: str = "modelscope", device: str = "cpu", dtype: str = "float32"
) -> Backend:
    """Load `model` ("default", a dir or a ModelScope id) with the named runtime, computing in `dtype`;
    "auto" measures the runtimes and formats this CPU can run and keeps the fastest that keeps the answers
    (with dtype="bfloat16", the fastest runtime computing in bfloat16)."""
    if backend not in BACKENDS:
        raise RaNERError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    check_dtype(dtype, "modelscope" if backend == "auto" else backend, device)
    model_dir = resolve_model_dir(model)
    preloaded = _preloaded.pop((str(model_dir), backend, device, dtype), None)
    if preloaded is not None:  # each process takes it once: a later reload loads the source anew
        return preloaded
    if backend == "auto":
        from raner_pool.backends.auto import choose_backend

        return choose_backend(model_dir, device, dtype)
    if backend == "transformers":
        from raner_pool.backends.transformers import TransformersBackend

        return TransformersBackend(model_dir, device, dtype)
    if backend in ("onnx", "onnx-int8"):
        from raner_pool.backends.onnx import OnnxBackend

        return OnnxBackend(model_dir, device, int8=backend == "onnx-int8")
    from raner_pool.backends.modelscope import ModelScopeBackend

    return ModelScopeBackend(model_dir, device, dtype)


__all__ = ["BACKENDS", "Backend", "load_backend", "preload_backend"]
