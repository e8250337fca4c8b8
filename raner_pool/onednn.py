"""Linear layers served through oneDNN: weights reordered once for its kernels, the bias and a GELU that follows
fused into the product. Eager PyTorch writes each bias into the output before the product and runs GELU as a pass
of its own (with the attention's copies, 14% of a float32 pass on AVX-512); fused, the base shape's bare
encoder went from 18.7 to 23.6 texts/s on two Zen 4 cores, with the same entities (docs/explanation/cpus.md).

For inference only: a fused module has no gradients and cannot be exported to ONNX, so training and export load
their models unfused.
"""

from __future__ import annotations

from typing import Any

import torch

GELU_ALGORITHMS = {"GELUActivation": "none", "NewGELUActivation": "tanh", "GELUTanh": "tanh"}
"""transformers' GELU modules by class name, and oneDNN's name for the formula each computes."""


def can_fuse(device: str, dtype: str) -> bool:
    """Whether this torch can run fused linear layers on `device` in `dtype`: oneDNN, on the CPU only, and for
    bfloat16 only where oneDNN computes it natively (it says so from the CPU itself)."""
    if torch.device(device).type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    return dtype == "float32" or bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def fuse_linear_layers(model: torch.nn.Module) -> int:
    """Replace every nn.Linear of `model` by a `OneDNNLinear` in the same number format as its weight, with the GELU
    of a BERT intermediate layer (`dense` then `intermediate_act_fn`) fused into it; how many were replaced."""
    replaced = 0
    for parent in list(model.modules()):
        activation = getattr(parent, "intermediate_act_fn", None)
        gelu = gelu_algorithm(activation) if isinstance(getattr(parent, "dense", None), torch.nn.Linear) else None
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear):
                setattr(parent, name, OneDNNLinear(child, gelu if name == "dense" else None))
                replaced += 1
        if gelu is not None:
            parent.intermediate_act_fn = torch.nn.Identity()
    return replaced


def gelu_algorithm(activation: Any) -> str | None:
    """oneDNN's name for the GELU `activation` computes, or None where it is not a GELU oneDNN can fuse."""
    if isinstance(activation, torch.nn.GELU):
        return "tanh" if activation.approximate == "tanh" else "none"
    return GELU_ALGORITHMS.get(type(activation).__name__)


class OneDNNLinear(torch.nn.Module):
    """y = x W^T + b (then GELU, when `gelu` names its formula) in one oneDNN call, on weights reordered once."""

    def __init__(self, linear: torch.nn.Linear, gelu: str | None = None) -> None:
        super().__init__()
        weight = linear.weight.detach()
        self.dtype = weight.dtype
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight, None)
        self.bias = None if linear.bias is None else linear.bias.detach().to(weight.dtype)
        self.post_op, self.algorithm = ("gelu", gelu) if gelu is not None else ("none", "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = torch.ops.mkldnn._linear_pointwise(
            x.to(self.dtype), self.weight, self.bias, self.post_op, [], self.algorithm)
        return result

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, dtype={self.dtype}, "
                f"post_op={self.post_op}")
