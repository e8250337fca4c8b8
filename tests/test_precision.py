"""Number formats: bfloat16 is refused where the CPU cannot compute it natively, and where it runs its entities
agree with float32."""

from __future__ import annotations

from pathlib import Path

import pytest

from raner_pool import RaNERModelPool, precision
from raner_pool.errors import RaNERError
from raner_pool.model_specs import load_specs
from raner_pool.onednn import OneDNNLinear


@pytest.mark.parametrize(
    ("dtype", "backend", "flags", "message"),
    [
        ("float16", "modelscope", {"avx512_bf16"}, "unknown dtype 'float16'"),
        ("bfloat16", "onnx", {"avx512_bf16"}, "needs backend modelscope, transformers or openvino"),
        ("bfloat16", "modelscope", {"avx512f"}, "needs a CPU with avx512_bf16 or amx_bf16"),
        ("bfloat16", "openvino", {"avx2"}, "needs a CPU with avx512_bf16 or amx_bf16"),
    ],
)
def test_formats_that_would_be_slow_or_wrong_are_refused_at_construction(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, dtype: str, backend: str, flags: set[str], message: str
):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    with pytest.raises(RaNERError, match=message):
        RaNERModelPool(tiny_model_dir, pool_size=1, backend=backend, dtype=dtype)


def test_bfloat16_entities_agree_with_float32(monkeypatch: pytest.MonkeyPatch, default_pool: RaNERModelPool):
    from raner_pool.corpus import load_msra

    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512_bf16"})  # emulated here: right, only slower
    texts = [s.text for s in load_msra("test", 300) if s.text]
    with RaNERModelPool("default", pool_size=1, dtype="bfloat16") as bf16:
        got = bf16.predict_batch(texts)
    want = default_pool.predict_batch(texts)
    spans = [[(e.type, e.start, e.end) for e in r] for r in got]
    agree = sum(g == [(e.type, e.start, e.end) for e in w] for g, w in zip(spans, want, strict=True))
    assert sum(map(len, spans)) > 100, "the sample has entities"
    assert agree >= 0.98 * len(texts), f"only {agree} of {len(texts)} texts got the same entities"


def test_dtype_is_a_registry_setting(tmp_path: Path):
    path = tmp_path / "models.toml"
    path.write_text('[models.m]\nmodel = "default"\ndtype = "bfloat16"\n', encoding="utf-8")
    assert load_specs(path)[0].dtype == "bfloat16"


def test_bfloat16_keeps_linear_weights_in_bfloat16_once_and_layer_norms_in_float32(
    monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path
):
    """Casting the weights once, not on every forward pass under autocast, is what lets a served bfloat16 model
    run near the speed of the bare encoder; layer norms and embeddings stay float32 for accuracy."""
    import torch

    monkeypatch.setattr(precision, "cpu_flags", lambda: {"amx_bf16"})
    with RaNERModelPool(tiny_model_dir, pool_size=1, dtype="bfloat16") as pool:
        modules = list(pool.backend.model.modules())  # type: ignore[attr-defined]
        assert pool.predict("马云在杭州") is not None
    linears = [m for m in modules if isinstance(m, torch.nn.Linear | OneDNNLinear)]
    norms = [m for m in modules if isinstance(m, torch.nn.LayerNorm | torch.nn.Embedding)]
    assert linears and norms
    assert {m.weight.dtype for m in linears} == {torch.bfloat16}
    assert {m.weight.dtype for m in norms} == {torch.float32}
