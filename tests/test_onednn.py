"""Fused linear layers (raner_pool.onednn) serve what ModelScope's own modules compute, and stay out of what
training and the ONNX export need."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers.activations import GELUActivation, NewGELUActivation

from raner_pool.backends.modelscope import ModelScopeBackend
from raner_pool.engine import NEREngine
from raner_pool.hub import DEFAULT_MODEL_DIR
from raner_pool.onednn import OneDNNLinear, can_fuse, fuse_linear_layers, gelu_algorithm

pytestmark = pytest.mark.skipif(not can_fuse("cpu", "float32"), reason="this torch has no oneDNN")


def emissions_of(backend: ModelScopeBackend, rows: int = 3, tokens: int = 11) -> np.ndarray:
    generator = np.random.default_rng(0)
    ids = generator.integers(5, backend.model.encoder.config.vocab_size, size=(rows, tokens))
    return backend.emissions(ids, np.ones_like(ids))


def test_served_backend_has_every_linear_layer_fused_and_the_same_emissions(tiny_model_dir: Path):
    fused, plain = ModelScopeBackend(tiny_model_dir), ModelScopeBackend(tiny_model_dir, fused=False)
    plain_linears = [m for m in plain.model.modules() if isinstance(m, torch.nn.Linear)]
    fused_linears = [m for m in fused.model.modules() if isinstance(m, OneDNNLinear)]
    assert not [m for m in fused.model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(fused_linears) == len(plain_linears) > 0
    # every BERT intermediate layer's GELU moved into its product
    assert sum(m.post_op == "gelu" for m in fused_linears) == len(plain.model.encoder.encoder.layer)
    np.testing.assert_allclose(emissions_of(fused), emissions_of(plain), atol=1e-4)


def test_fused_default_model_finds_the_same_entities():
    from raner_pool.corpus import load_msra

    texts = [s.text for s in load_msra("test", 100)]
    got = NEREngine(ModelScopeBackend(DEFAULT_MODEL_DIR)).predict_batch(texts)
    want = NEREngine(ModelScopeBackend(DEFAULT_MODEL_DIR, fused=False)).predict_batch(texts)
    assert [[(e.type, e.start, e.end) for e in r] for r in got] == [[(e.type, e.start, e.end) for e in r]
                                                                    for r in want]
    assert sum(map(len, got)) > 20


@pytest.mark.parametrize(
    ("activation", "algorithm"),
    [(torch.nn.GELU(), "none"), (torch.nn.GELU(approximate="tanh"), "tanh"), (GELUActivation(), "none"),
     (NewGELUActivation(), "tanh"), (torch.nn.ReLU(), None)],
)
def test_only_gelus_oneDNN_computes_are_fused(activation: torch.nn.Module, algorithm: str | None):
    assert gelu_algorithm(activation) == algorithm


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_fused_gelu_matches_the_module_it_replaced(approximate: str):
    class Intermediate(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dense = torch.nn.Linear(16, 64)
            self.intermediate_act_fn = torch.nn.GELU(approximate=approximate)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.intermediate_act_fn(self.dense(x))

    layer, x = Intermediate(), torch.randn(2, 5, 16)
    with torch.inference_mode():
        want = layer(x)
        assert fuse_linear_layers(layer) == 1
        assert isinstance(layer.intermediate_act_fn, torch.nn.Identity)
        torch.testing.assert_close(layer(x), want, atol=1e-5, rtol=1e-5)


def test_training_and_export_load_modelscope_modules_unfused(tiny_model_dir: Path):
    from raner_pool.training.model import TrainableModel

    module = TrainableModel(tiny_model_dir).module
    assert not [m for m in module.modules() if isinstance(m, OneDNNLinear)]
    assert any(p.requires_grad for p in module.parameters())
