"""ONNX Runtime backends: the fp32 export answers as PyTorch does; INT8 runs through the same pool and batching."""

from __future__ import annotations

from pathlib import Path

import pytest

from raner_pool import BatchingConfig, RaNERModelPool

from .conftest import SAMPLE_TEXTS, assert_same_results


@pytest.fixture(autouse=True)
def onnx_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RANER_POOL_CACHE", str(tmp_path))
    return tmp_path


def test_onnx_fp32_matches_pytorch(tiny_model_dir: Path, tiny_pool: RaNERModelPool, onnx_cache: Path):
    pool = RaNERModelPool(tiny_model_dir, pool_size=2, backend="onnx")
    texts = [*SAMPLE_TEXTS, "据说，刘德华平时生活在香港。" * 80]
    assert_same_results(pool.predict_batch(texts), tiny_pool.predict_batch(texts))
    [export] = onnx_cache.glob("onnx/*/emissions.onnx")
    before = export.stat().st_mtime_ns
    RaNERModelPool(tiny_model_dir, pool_size=1, backend="onnx")
    assert export.stat().st_mtime_ns == before, "the export is cached per model version"


def test_onnx_int8_serves_through_batching(tiny_model_dir: Path, onnx_cache: Path):
    pool = RaNERModelPool(tiny_model_dir, pool_size=2, backend="onnx-int8", batching=BatchingConfig())
    assert pool.backend.kind == "onnx-int8"
    for text, entities in zip(SAMPLE_TEXTS, pool.predict_batch(SAMPLE_TEXTS), strict=True):
        assert all(e.span == text[e.start : e.end] and 0 < e.prob <= 1 for e in entities)
    import onnx

    graph = onnx.load(str(next(onnx_cache.glob("onnx/*/emissions.int8.onnx")))).graph
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= {node.op_type for node in graph.node}
