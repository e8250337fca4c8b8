"""OpenVINO: the exported ONNX graph (raner_pool.backends.onnx) compiled for this CPU, in float32 or bfloat16.

On CPUs with AVX512-BF16 its bfloat16 kernels beat PyTorch's at RaNER's shapes (docs/explanation/cpus.md), so
backend="auto" times it beside the others. Compiled graphs are cached under $RANER_POOL_CACHE/openvino.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from raner_pool.backends.onnx import ExportedGraph
from raner_pool.errors import RaNERError
from raner_pool.hub import cache_root
from raner_pool.threads import concurrent_passes, torch_threads

PRECISION_HINTS = {"float32": "f32", "bfloat16": "bf16"}


class OpenVinoBackend(ExportedGraph):
    """The graph on OpenVINO's CPU plugin. Pool instances share it: each calling thread gets its own infer request,
    and the graph runs as many streams as instances fit on the cores, so their passes run side by side."""

    def __init__(self, model_dir: Path, device: str = "cpu", dtype: str = "float32") -> None:
        if device != "cpu":
            raise RaNERError(f"backend='openvino' runs on the CPU only, not {device!r}")
        super().__init__(model_dir, "openvino")
        self.dtype = dtype
        self.compiled: Any = None
        self._requests = threading.local()
        self._compile()
        _live.add(self)

    def _compile(self) -> None:
        """Compile the graph for this process: the streams as raner_pool.threads sized the pool's instances."""
        threads = torch_threads()
        streams = concurrent_passes()
        self.compiled = _core().compile_model(str(self.fp32_graph), "CPU", {
            "CACHE_DIR": str(cache_root() / "openvino"),  # a recompile (after a fork, or a restart) is a load
            "INFERENCE_PRECISION_HINT": PRECISION_HINTS[self.dtype],
            # the pool keeps requests running side by side, which is what THROUGHPUT schedules for; LATENCY, the
            # default, served base-shape bfloat16 6% slower at 16 callers (37.7 against 39.9 texts/s, 4 rounds)
            "PERFORMANCE_HINT": "THROUGHPUT",
            "NUM_STREAMS": streams,
            "INFERENCE_NUM_THREADS": streams * threads,
        })

    def emissions(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        request: Any = getattr(self._requests, "request", None)
        if request is None:
            with _lock:
                if self.compiled is None:  # released before a fork (_release_before_fork)
                    self._compile()
                request = self._requests.request = self.compiled.create_infer_request()
        outputs = request.infer({"input_ids": input_ids, "attention_mask": attention_mask})
        return np.array(outputs[0], dtype=np.float32)  # a copy: the request reuses its output buffer

    def _release(self) -> None:
        self.compiled = None
        self._requests = threading.local()


_lock = threading.RLock()
_cores: list[Any] = []
_live: weakref.WeakSet[OpenVinoBackend] = weakref.WeakSet()


def _core() -> Any:
    """The process's OpenVINO runtime."""
    import openvino

    with _lock:
        if not _cores:
            _cores.append(openvino.Core())
        return _cores[0]


def _release_before_fork() -> None:
    """A graph compiled before a fork hangs or aborts in the child (its plugin's threads are not there), so every
    compiled graph and the runtime are released in the parent, where that is safe; each process compiles again on
    its next pass (a server loads models before forking its workers)."""
    with _lock:
        for backend in list(_live):
            backend._release()
        _cores.clear()


def _new_lock_in_child() -> None:
    global _lock
    _lock = threading.RLock()  # one held by a thread of the parent would never be released here


os.register_at_fork(before=_release_before_fork, after_in_child=_new_lock_in_child)
