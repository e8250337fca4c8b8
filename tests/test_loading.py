"""Loading: the embedded default, local dirs, ModelScope ids offline, and Hugging Face dirs."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from raner_pool import DEFAULT_MODEL_DIR, ModelNotAvailable, RaNERError, RaNERModelPool, load_backend
from raner_pool.hub import resolve_model_dir

from .conftest import TINY_VOCAB
from .test_cli import raner_pool


def test_default_resolves_to_the_shipped_dir():
    assert resolve_model_dir("default") == DEFAULT_MODEL_DIR
    for name in ("configuration.json", "config.json", "vocab.txt", "label_mapping.json", "pytorch_model.bin"):
        assert (DEFAULT_MODEL_DIR / name).is_file()
    assert (DEFAULT_MODEL_DIR / "pytorch_model.bin").stat().st_size <= 20_000_000


def test_uncached_modelscope_id_offline_fails_fast_and_clearly():
    began = time.monotonic()
    with pytest.raises(ModelNotAvailable) as error:
        RaNERModelPool("damo/nlp_raner_named-entity-recognition_chinese-base-news", pool_size=1)
    assert time.monotonic() - began < 10
    message = str(error.value)
    assert "'damo/nlp_raner_named-entity-recognition_chinese-base-news'" in message
    assert "local directory" in message
    assert "Traceback" not in message and "\n" not in message


def test_cached_modelscope_id_loads_from_the_local_cache(tiny_model_dir: Path, tmp_path: Path):
    """An id in the ModelScope cache loads offline with no hub access, giving the same answer as its dir.

    A fresh process, because ModelScope reads MODELSCOPE_CACHE once, at import.
    """
    snapshot = tmp_path / "models" / "raner-pool--tiny" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_model_dir, snapshot)
    by_id = raner_pool("predict", "--model", "raner-pool/tiny", "马云在杭州", env={"MODELSCOPE_CACHE": str(tmp_path)})
    assert by_id.returncode == 0, by_id.stderr
    by_dir = raner_pool("predict", "--model", str(tiny_model_dir), "马云在杭州")
    assert json.loads(by_id.stdout) == json.loads(by_dir.stdout)


@pytest.mark.parametrize("bad", ["no/such/dir/at/all", "./missing-dir", "not-an-id"])
def test_names_that_are_neither_dir_nor_id(bad: str):
    with pytest.raises(ModelNotAvailable, match="neither 'default', an existing directory, nor a ModelScope id"):
        resolve_model_dir(bad)


def test_a_dir_that_is_not_a_model(tmp_path: Path):
    with pytest.raises(ModelNotAvailable, match=r"no configuration\.json"):
        load_backend(tmp_path)
    with pytest.raises(ModelNotAvailable, match=r"no config\.json"):
        load_backend(tmp_path, backend="transformers")
    with pytest.raises(RaNERError, match="unknown backend 'tensorflow'"):
        load_backend(tmp_path, backend="tensorflow")


@pytest.fixture(scope="module")
def hf_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Hugging Face BertForTokenClassification dir with a BIO label set."""
    import torch
    from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

    out = tmp_path_factory.mktemp("hf") / "model"
    out.mkdir()
    (out / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    config = BertConfig(
        vocab_size=len(TINY_VOCAB), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
    )
    torch.manual_seed(3)
    BertForTokenClassification(config).save_pretrained(out)
    BertTokenizerFast(vocab_file=str(out / "vocab.txt")).save_pretrained(out)
    return out


def test_transformers_backend(hf_model_dir: Path):
    pool = RaNERModelPool(hf_model_dir, pool_size=2, backend="transformers")
    assert pool.labels[:3] == ["O", "B-PER", "I-PER"]
    text = "😀据说，刘德华平时生活在香港"
    entities = pool.predict(text)
    assert all(e.span == text[e.start : e.end] for e in entities)
    assert pool.predict_batch([text, ""]) == [entities, []]


def test_transformers_backend_serves_fused_linear_layers_with_the_same_scores(hf_model_dir: Path):
    import numpy as np

    from raner_pool.backends.transformers import TransformersBackend
    from raner_pool.onednn import OneDNNLinear, can_fuse

    fused, plain = TransformersBackend(hf_model_dir), TransformersBackend(hf_model_dir, fused=False)
    assert any(isinstance(m, OneDNNLinear) for m in fused.model.modules()) == can_fuse("cpu", "float32")
    ids = np.array([[2, 7, 9, 11, 3], [2, 8, 3, 0, 0]], dtype=np.int64)
    mask = (ids != 0).astype(np.int64)
    np.testing.assert_allclose(fused.emissions(ids, mask), plain.emissions(ids, mask), atol=1e-5)


def test_transformers_bert_runs_texts_together_with_the_scores_each_gets_alone(hf_model_dir: Path):
    import numpy as np

    from raner_pool.backends.transformers import TransformersBackend

    backend = TransformersBackend(hf_model_dir)
    assert backend.packs
    texts = [np.array([2, 7, 9, 11, 3]), np.array([2, 8, 3]), np.array([2, 3])]
    packed = backend.emissions_packed(np.concatenate(texts), [len(t) for t in texts])
    alone = [backend.emissions(t[None], np.ones((1, len(t)), dtype=np.int64))[0] for t in texts]
    np.testing.assert_allclose(packed, np.concatenate(alone), atol=1e-5)


def test_transformers_backend_refuses_a_modelscope_dir_instead_of_answering_with_random_weights():
    with pytest.raises(ModelNotAvailable, match=r"weights are missing.*use backend='modelscope'"):
        RaNERModelPool("default", pool_size=1, backend="transformers")


def test_modelscope_backend_refuses_a_hugging_face_dir(hf_model_dir: Path):
    with pytest.raises(ModelNotAvailable, match="backend='transformers'"):
        RaNERModelPool(hf_model_dir, pool_size=1)
