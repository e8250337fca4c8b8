"""ONNX Runtime: the encoder and emission layer exported once per model version, optionally INT8-quantized.

The CRF stays in numpy (raner_pool.crf), so ONNX only has to run the part that is plain tensor algebra.
Exports are cached under $RANER_POOL_CACHE (default ~/.cache/raner-pool), keyed by the weights' hash.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from raner_pool.backends.modelscope import ModelScopeBackend
from raner_pool.cache import model_version
from raner_pool.hub import cache_root
from raner_pool.threads import torch_threads

OPSET = 17


def onnx_cache_dir() -> Path:
    return cache_root() / "onnx"


class _Emitter(torch.nn.Module):
    """Encoder + head as one module with plain tensor inputs and output, the shape ONNX export wants."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.encoder = model.encoder
        self.head = model.head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        features = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        logits: torch.Tensor = self.head.forward(features).logits
        return logits


def export_onnx(model: Any, path: Path) -> None:
    """Write encoder + emissions to `path`, with dynamic batch and sequence axes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sample = torch.ones((2, 8), dtype=torch.int64)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch, torch.inference_mode():
        partial = Path(scratch) / path.name
        torch.onnx.export(
            _Emitter(model).eval(),
            (sample, sample),
            str(partial),
            input_names=["input_ids", "attention_mask"],
            output_names=["emissions"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                          "emissions": {0: "batch", 1: "tokens"}},
            opset_version=OPSET,
            dynamo=False,
        )
        os.replace(partial, path)  # atomic: a half-written export is never picked up


def quantize_int8(fp32: Path, int8: Path) -> None:
    """Dynamic INT8 quantization of the exported graph's weights (activations quantized at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=int8.parent) as scratch:
        partial = Path(scratch) / int8.name
        quantize_dynamic(str(fp32), str(partial), weight_type=QuantType.QInt8)
        os.replace(partial, int8)


class ExportedGraph:
    """A ModelScope RaNER dir as its exported ONNX graph: the tokenizer, labels and CRF read from the dir, the
    encoder + emissions exported once per weights' hash. The base of the runtimes that execute that graph."""

    packs = False

    def __init__(self, model_dir: Path, kind: str) -> None:
        source = ModelScopeBackend(model_dir, "cpu", fused=False)
        self.kind = kind
        self.model_dir = model_dir
        self.labels = source.labels
        self.tokenizer = source.tokenizer
        self.max_positions = source.max_positions
        self.crf = source.crf
        self.graph_dir = onnx_cache_dir() / model_version(model_dir)
        self.fp32_graph = self.graph_dir / "emissions.onnx"
        if not self.fp32_graph.is_file():
            export_onnx(source.model, self.fp32_graph)
        # the torch weights are not kept: the graph has them

    def emissions_packed(self, token_ids: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
        raise NotImplementedError(f"the exported graph takes padded rows only ({type(self).__name__}.packs is False)")


class OnnxBackend(ExportedGraph):
    """A ModelScope RaNER dir served by ONNX Runtime, fp32 or dynamic INT8."""

    def __init__(self, model_dir: Path, device: str = "cpu", int8: bool = False) -> None:
        import onnxruntime

        super().__init__(model_dir, "onnx-int8" if int8 else "onnx")
        path = self.fp32_graph
        if int8:
            path = self.graph_dir / "emissions.int8.onnx"
            if not path.is_file():
                quantize_int8(self.fp32_graph, path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch_threads()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CUDAExecutionProvider"] if device.startswith("cuda") else ["CPUExecutionProvider"]
        self.session = onnxruntime.InferenceSession(str(path), options, providers=providers)

    def emissions(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        outputs = self.session.run(["emissions"], {"input_ids": input_ids, "attention_mask": attention_mask})
        result: np.ndarray = np.asarray(outputs[0], dtype=np.float32)
        return result
