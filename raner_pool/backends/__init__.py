"""Model runtimes behind one protocol; `load_runtime` loads a model with the one named.

Choosing among them (backend="auto") needs the engine to time them, so it lives above it, in raner_pool.choices;
nothing in this package imports the engine.
"""

from __future__ import annotations

from pathlib import Path

from raner_pool.backends.base import Backend
from raner_pool.errors import RaNERError
from raner_pool.precision import check_dtype

RUNTIMES = ("modelscope", "transformers", "onnx", "onnx-int8", "openvino")


def load_runtime(model_dir: Path, runtime: str = "modelscope", device: str = "cpu", dtype: str = "float32") -> Backend:
    """Load the model in `model_dir` with the named runtime, computing in `dtype`."""
    if runtime not in RUNTIMES:
        raise RaNERError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    check_dtype(dtype, runtime, device)
    if runtime == "transformers":
        from raner_pool.backends.transformers import TransformersBackend

        return TransformersBackend(model_dir, device, dtype)
    if runtime in ("onnx", "onnx-int8"):
        from raner_pool.backends.onnx import OnnxBackend

        return OnnxBackend(model_dir, device, int8=runtime == "onnx-int8")
    if runtime == "openvino":
        from raner_pool.backends.openvino import OpenVinoBackend

        return OpenVinoBackend(model_dir, device, dtype)
    from raner_pool.backends.modelscope import ModelScopeBackend

    return ModelScopeBackend(model_dir, device, dtype)


__all__ = ["RUNTIMES", "Backend", "load_runtime"]
