"""OpenVINO backend: the exported graph compiled for this CPU answers as PyTorch does in float32, agrees with it in
bfloat16, and serves concurrent callers each their own answers (one infer request per calling thread)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from raner_pool import BatchingConfig, RaNERModelPool, precision
from raner_pool.backends import load_runtime
from raner_pool.choices.runtime import agreement
from raner_pool.corpus import load_msra
from raner_pool.errors import RaNERError

from .conftest import SAMPLE_TEXTS, assert_same_results


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RANER_POOL_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def msra_texts() -> list[str]:
    return [s.text for s in load_msra("test", 300) if s.text]


def test_float32_answers_as_pytorch_and_the_compiled_graph_is_cached(
    default_pool: RaNERModelPool, msra_texts: list[str], cache: Path
):
    texts = [*msra_texts, "据说，刘德华平时生活在香港。" * 40]  # and one cut into windows
    with RaNERModelPool("default", pool_size=2, backend="openvino") as pool:
        assert pool.backend.kind == "openvino"
        got = pool.predict_batch(texts)
    want = default_pool.predict_batch(texts)
    assert [[(e.type, e.start, e.end) for e in r] for r in got] == [[(e.type, e.start, e.end) for e in r] for r in want]
    for found, expected in zip(got, want, strict=True):
        assert [e.prob for e in found] == pytest.approx([e.prob for e in expected], abs=1e-4)
    assert list(cache.glob("onnx/*/emissions.onnx")), "OpenVINO compiles the graph the onnx backend exports"
    assert any((cache / "openvino").iterdir()), "and caches what it compiled, for the next start"


def test_bfloat16_entities_agree_with_float32(
    monkeypatch: pytest.MonkeyPatch, default_pool: RaNERModelPool, msra_texts: list[str]
):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512_bf16"})  # where emulated: right, only slower
    with RaNERModelPool("default", pool_size=1, backend="openvino", dtype="bfloat16") as pool:
        got = pool.predict_batch(msra_texts)
    assert agreement(default_pool.predict_batch(msra_texts), got) >= 0.98


def test_concurrent_callers_each_get_their_own_answers(tiny_model_dir: Path, tiny_pool: RaNERModelPool):
    texts = [f"{text}{'，然后' * (i % 7)}" for i, text in enumerate(SAMPLE_TEXTS * 6)]  # many lengths at once
    want = tiny_pool.predict_batch(texts)
    with RaNERModelPool(tiny_model_dir, pool_size=4, backend="openvino", batching=BatchingConfig()) as pool, \
            ThreadPoolExecutor(16) as callers:
        got = list(callers.map(pool.predict, texts * 4))
    for round_start in range(0, len(got), len(texts)):
        assert_same_results(got[round_start:round_start + len(texts)], want)


def test_it_runs_on_the_cpu_only(tiny_model_dir: Path):
    with pytest.raises(RaNERError, match="CPU only"):
        load_runtime(tiny_model_dir, "openvino", device="cuda")


def test_a_process_forked_after_loading_serves(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """A server loads its models, then forks its workers: a graph compiled in the parent would hang in the child."""
    import os
    import time

    import numpy as np

    from raner_pool.backends import openvino

    monkeypatch.setattr(openvino, "torch_threads", lambda: 1)  # one stream per core, as a server's workers have
    backend = load_runtime(tiny_model_dir, "openvino")
    ids = np.array([[backend.tokenizer.cls_id, 5, 6, 7, backend.tokenizer.sep_id]], dtype=np.int64)
    want = backend.emissions(ids, np.ones_like(ids))
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports by its exit status)
        with ThreadPoolExecutor(1) as worker:  # a worker's pool thread, new in this process
            got = worker.submit(backend.emissions, ids, np.ones_like(ids)).result()
        os._exit(0 if np.allclose(got, want, atol=1e-5) else 3)
    deadline = time.monotonic() + 60
    while (finished := os.waitpid(child, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    if finished[0] == 0:
        os.kill(child, 9)
        os.waitpid(child, 0)
        pytest.fail("the forked process hung in its first pass")
    assert os.waitstatus_to_exitcode(finished[1]) == 0
    assert np.allclose(backend.emissions(ids, np.ones_like(ids)), want, atol=1e-5), "and the parent still serves"
