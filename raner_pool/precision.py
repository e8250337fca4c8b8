"""Number formats a torch backend can compute in: float32, or bfloat16 on CPUs that have it (matrix products in
bfloat16 weights kept so once, the rest through autocast).

bfloat16 pays only where the CPU multiplies it natively (AVX512-BF16 or AMX); elsewhere torch emulates it, slower
than float32, so asking for it there is refused at construction rather than served slowly.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from raner_pool.errors import RaNERError

if TYPE_CHECKING:
    import torch

DTYPES = ("float32", "bfloat16")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str]:
    """The instruction-set flags of this machine's CPU (empty where /proc/cpuinfo is not available)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def check_dtype(dtype: str, backend: str, device: str) -> None:
    """Refuse a number format the backend or this CPU cannot compute fast, saying which and why."""
    if dtype not in DTYPES:
        raise RaNERError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype == "float32":
        return
    if backend not in ("modelscope", "transformers", "openvino"):
        raise RaNERError(f"dtype={dtype!r} needs backend modelscope, transformers or openvino, not {backend!r}; "
                         "for a faster ONNX model use backend='onnx-int8'")
    if device == "cpu" and not cpu_flags() & set(BF16_CPU_FLAGS):
        raise RaNERError(f"dtype='bfloat16' needs a CPU with {' or '.join(BF16_CPU_FLAGS)}; this one has neither, "
                         "so bfloat16 would be emulated and slower than float32: use dtype='float32'")


def keep_weights_in(model: torch.nn.Module, dtype: str) -> None:
    """Store the weights of `model`'s linear layers in `dtype` once, so that autocast does not cast them again on
    every forward pass (a fifth of a bfloat16 pass on AMX); layer norms and embeddings stay float32."""
    if dtype == "float32":
        return
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.to(torch.bfloat16)


def compute_in(dtype: str, device: str) -> AbstractContextManager[object]:
    """The context a forward pass runs in: autocast to bfloat16, or nothing for float32."""
    if dtype == "float32":
        return nullcontext()
    import torch

    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
