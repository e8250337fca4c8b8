"""The bare encoder per runtime and number format: emissions for one batch of 16 texts x 48 tokens, called back to
back with nothing around it (no tokenizer, CRF, batching or threads of callers), through the forward pass serving
runs (texts run together where the backend packs). What serving a format can reach on this CPU, and so the figure
bench/run.py divides the served pool by.

Runtimes: the backends themselves (torch float32 and bfloat16, ONNX Runtime float32 and dynamic INT8, OpenVINO
float32 and bfloat16), and two that are not backends, to show whether they would be worth one: PyTorch's own
dynamic INT8 (torch.ao, deprecated but still shipped) and ONNX Runtime with static INT8 (activations calibrated on
MSRA sentences, on the graph the onnx backend exports). A format the CPU cannot compute natively is left out, with
why.

    python bench/bare.py [--model default | --base-shape]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from raner_pool.backends.base import Backend
from raner_pool.backends.modelscope import ModelScopeBackend
from raner_pool.backends.onnx import onnx_cache_dir
from raner_pool.cache import model_version
from raner_pool.corpus import load_msra
from raner_pool.errors import RaNERError
from raner_pool.hub import resolve_model_dir
from raner_pool.loading import load_backend
from raner_pool.threads import available_cores

BATCH, TOKENS = 16, 48
SECONDS = 3.0


@dataclass(frozen=True)
class Bare:
    """Texts per second one runtime computes emissions for, batch 16 x 48 tokens."""

    runtime: str
    number_format: str
    texts_per_s: float


Emit = Callable[[np.ndarray, np.ndarray], object]


def msra_batch(tokenizer: Any) -> np.ndarray:
    """BATCH rows of TOKENS token ids: MSRA test sentences run together and cut, between [CLS] and [SEP]."""
    stream = [t for s in load_msra("test", 200) for ids in tokenizer.encode(s.text) for t in ids]
    body = np.array(stream[: BATCH * (TOKENS - 2)], dtype=np.int64).reshape(BATCH, TOKENS - 2)
    column = np.ones((BATCH, 1), dtype=np.int64)
    return np.hstack([column * tokenizer.cls_id, body, column * tokenizer.sep_id])


def texts_per_s(emit: Emit, ids: np.ndarray, seconds: float = SECONDS) -> float:
    """Mean rate over `seconds` of back-to-back calls on one fixed batch (after one warm-up call)."""
    mask = np.ones_like(ids)
    emit(ids, mask)
    calls, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        emit(ids, mask)
        calls += 1
    return calls * BATCH / (time.perf_counter() - began)


def served_pass(backend: Backend) -> Emit:
    """The forward pass serving runs: the batch's texts run together where the backend packs, else padded rows."""
    if not backend.packs:
        return backend.emissions
    return lambda ids, mask: backend.emissions_packed(ids.reshape(-1), [ids.shape[1]] * len(ids))


def calibration_batches(tokenizer: Any, count: int = 64) -> Iterator[dict[str, np.ndarray]]:
    """MSRA training sentences as the onnx graph's inputs, one per batch: what static INT8 sets its scales from."""
    for sentence in load_msra("train", count):
        row = [tokenizer.cls_id, *(t for ids in tokenizer.encode(sentence.text) for t in ids), tokenizer.sep_id]
        ids = np.array([row[:TOKENS * 4]], dtype=np.int64)
        yield {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def static_int8(fp32: Path, out: Path, tokenizer: Any) -> Path:
    """The exported graph quantized statically (QDQ, per-channel weights, activations calibrated on MSRA)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = calibration_batches(tokenizer)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    quantize_static(str(fp32), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def torch_dynamic_int8(model_dir: Path) -> Emit:
    """The PyTorch backend with its linear layers replaced by torch.ao's dynamically quantized INT8 ones."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    backend = ModelScopeBackend(model_dir, fused=False)  # torch.ao replaces nn.Linear modules, not fused ones
    quantize_dynamic(backend.model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)  # type: ignore[attr-defined]
    return backend.emissions


def onnx_session(path: Path) -> Emit:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = available_cores()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda ids, mask: session.run(["emissions"], {"input_ids": ids, "attention_mask": mask})


def measure(model_dir: Path, seconds: float = SECONDS) -> tuple[list[Bare], list[str]]:
    """Every runtime and format this CPU runs natively; and why the others were left out."""
    results: list[Bare] = []
    left_out: list[str] = []
    tokenizer = load_backend(model_dir).tokenizer
    ids = msra_batch(tokenizer)
    for runtime, number_format in [("modelscope", "float32"), ("modelscope", "bfloat16"), ("onnx", "float32"),
                                   ("onnx-int8", "int8"), ("openvino", "float32"), ("openvino", "bfloat16")]:
        try:
            backend = load_backend(model_dir, runtime, dtype="bfloat16" if number_format == "bfloat16" else "float32")
        except RaNERError as error:
            left_out.append(f"{runtime} {number_format}: {error}")
            continue
        results.append(Bare(runtime, number_format, texts_per_s(served_pass(backend), ids, seconds)))
        print(f"  bare {runtime:<12} {number_format:<8} {results[-1].texts_per_s:8.1f} texts/s", flush=True)
    fp32_graph = onnx_cache_dir() / model_version(model_dir) / "emissions.onnx"  # written by the onnx backend above
    with tempfile.TemporaryDirectory() as scratch:
        extra: list[tuple[str, str, Callable[[], Emit]]] = [
            ("torch dynamic", "int8", lambda: torch_dynamic_int8(model_dir)),
            ("onnx static", "int8", lambda: onnx_session(static_int8(fp32_graph, Path(scratch) / "s.onnx", tokenizer))),
        ]
        for runtime, number_format, build in extra:
            emit = build()
            results.append(Bare(runtime, number_format, texts_per_s(emit, ids, seconds)))
            print(f"  bare {runtime:<12} {number_format:<8} {results[-1].texts_per_s:8.1f} texts/s", flush=True)
    return results, left_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--base-shape", action="store_true")
    parser.add_argument("--seconds", type=float, default=SECONDS)
    args = parser.parse_args()
    from bench.run import base_shape_model

    with tempfile.TemporaryDirectory() as scratch:
        model_dir = base_shape_model(Path(scratch)) if args.base_shape else resolve_model_dir(args.model)
        results, left_out = measure(model_dir, args.seconds)
    print("| runtime | format | texts/s |\n| --- | --- | ---: |")
    for r in results:
        print(f"| {r.runtime} | {r.number_format} | {r.texts_per_s:.1f} |")
    for line in left_out:
        print(f"- {line}")


if __name__ == "__main__":
    main()
