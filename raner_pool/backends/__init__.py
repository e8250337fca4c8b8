"""Model runtimes behind one protocol; `load_backend` picks one by name."""

from __future__ import annotations

import os

from raner_pool.backends.base import Backend
from raner_pool.errors import RaNERError
from raner_pool.hub import resolve_model_dir

BACKENDS = ("modelscope", "transformers", "onnx", "onnx-int8")


def load_backend(model: str | os.PathLike[str], backend: str = "modelscope", device: str = "cpu") -> Backend:
    """Load `model` ("default", a dir or a ModelScope id) with the named runtime."""
    if backend not in BACKENDS:
        raise RaNERError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    model_dir = resolve_model_dir(model)
    if backend == "transformers":
        from raner_pool.backends.transformers import TransformersBackend

        return TransformersBackend(model_dir, device)
    if backend in ("onnx", "onnx-int8"):
        from raner_pool.backends.onnx import OnnxBackend

        return OnnxBackend(model_dir, device, int8=backend == "onnx-int8")
    from raner_pool.backends.modelscope import ModelScopeBackend

    return ModelScopeBackend(model_dir, device)


__all__ = ["BACKENDS", "Backend", "load_backend"]
