"""This machine's practical ceiling per number format, and the encoder work a served request represents.

The ceiling is a large matrix product (2048 x 2048) through the libraries the backends use: torch for float32
and bfloat16, ONNX Runtime for float32 and dynamically quantized INT8 (the `onnx-int8` backend's kernels). An
encoder is mostly such products, so served encoder FLOP/s over this figure says how much of the CPU serving
uses. Run alone it prints the ceilings:

    python bench/ceiling.py
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from raner_pool.precision import BF16_CPU_FLAGS, cpu_flags
from raner_pool.threads import available_cores

SIZE = 2048
SECONDS = 1.5


@dataclass(frozen=True)
class Ceiling:
    """The fastest large matrix product of one number format, and which library reached it."""

    number_format: str
    gflops: float
    library: str


def _best_gflops(run: Callable[[], object], flops: float, seconds: float = SECONDS) -> float:
    run()
    fastest, began = float("inf"), time.perf_counter()
    while time.perf_counter() - began < seconds:
        started = time.perf_counter()
        run()
        fastest = min(fastest, time.perf_counter() - started)
    return flops / fastest / 1e9


def torch_gflops(dtype: torch.dtype) -> float:
    """A SIZE x SIZE product in `dtype` through torch, on every core."""
    torch.set_num_threads(available_cores())
    a, b = torch.randn(SIZE, SIZE).to(dtype), torch.randn(SIZE, SIZE).to(dtype)
    with torch.inference_mode():
        return _best_gflops(lambda: a @ b, 2 * SIZE**3)


def onnx_gflops(int8: bool) -> float:
    """A SIZE x SIZE product through ONNX Runtime: float32, or the weights dynamically quantized to INT8 exactly
    as the onnx-int8 backend quantizes the encoder (activations quantized at run time)."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weights = numpy_helper.from_array(np.random.default_rng(0).standard_normal((SIZE, SIZE), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [SIZE, SIZE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [SIZE, SIZE])], [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "matmul.onnx"
        onnx.save(model, str(path))
        if int8:
            quantize_dynamic(str(path), str(path.with_suffix(".int8.onnx")), weight_type=QuantType.QInt8)
            path = path.with_suffix(".int8.onnx")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = available_cores()
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((SIZE, SIZE), np.float32)
    return _best_gflops(lambda: session.run(["y"], {"x": x}), 2 * SIZE**3)


def measure_ceilings() -> dict[str, Ceiling]:
    """Each number format's ceiling: the best library for it on this machine (float32: torch or ONNX Runtime)."""
    native_bf16 = bool(cpu_flags() & set(BF16_CPU_FLAGS))
    measured = [
        Ceiling("float32", torch_gflops(torch.float32), "torch"),
        Ceiling("float32", onnx_gflops(int8=False), "onnxruntime"),
        Ceiling("bfloat16", torch_gflops(torch.bfloat16), "torch" if native_bf16 else "torch, emulated"),
        Ceiling("int8", onnx_gflops(int8=True), "onnxruntime"),
    ]
    for ceiling in measured:
        print(f"  ceiling {ceiling.number_format:<8} {ceiling.library:<11} {ceiling.gflops:7.1f} GFLOP/s", flush=True)
    return highest(*measured)


def highest(*measured: Ceiling | dict[str, Ceiling]) -> dict[str, Ceiling]:
    """The highest ceiling of each number format among `measured` (single ceilings or earlier results): on a
    shared VM one product can run a quarter slower than the next minute's, and a ratio to the highest is the
    honest one."""
    flat = [c for m in measured for c in (m.values() if isinstance(m, dict) else [m])]
    best: dict[str, Ceiling] = {}
    for ceiling in flat:
        if ceiling.number_format not in best or ceiling.gflops > best[ceiling.number_format].gflops:
            best[ceiling.number_format] = ceiling
    return best


def encoder_flops_per_token(model_dir: Path) -> float:
    """Matrix-product FLOPs of the encoder per token: 2 x layers x (4 h^2 + 2 h ffn), as DESIGN.md counts them
    (attention scores, a few percent at sentence lengths, left out)."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    hidden, ffn = config["hidden_size"], config["intermediate_size"]
    return 2.0 * config["num_hidden_layers"] * (4 * hidden**2 + 2 * hidden * ffn)


if __name__ == "__main__":
    measure_ceilings()
