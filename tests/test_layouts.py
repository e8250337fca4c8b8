"""Published checkpoint layouts other than the one our training writes: each loads and matches the pipeline.

Each fixture builds a tiny random-weight model dir in one layout found on the
ModelScope hub, then the engine's entities are compared with the ModelScope
pipeline's on the same dir, text for text:

- ``legacy_head_keys``: the head stored at the top level (``linear.*``, ``crf.*``), not under ``head.``;
- ``structbert``: a StructBERT encoder (``model_type: structbert``) whose tokenizer comes from tokenizer_config.json;
- ``bioes_label_mapping`` / ``bioes_config_id2label``: BIOES labels, ids shuffled (``O`` not 0), read from
  label_mapping.json or, with no label_mapping.json, from config.json's id2label;
- ``no_split_into_words``: a preprocessor without ``is_split_into_words``, so the pipeline tokenises whole words;
- ``published``: all of the above at once.

The texts avoid what the pipeline's slow-tokenizer path (no ``is_split_into_words``) cannot handle or reads
differently by design: emoji and upper-case Latin (it crashes), whitespace (the engine drops whitespace-only
entities; the pipeline without ``is_split_into_words`` also drops whitespace from the model input).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from raner_pool import RaNERModelPool
from raner_pool.engine import PIPELINE_READING
from raner_pool.modeldir import build_random_model, new_crf_model, save_weights, write_model_dir
from raner_pool.parity import compare_with_pipeline

from .conftest import TINY_SHAPE, TINY_VOCAB

LAYOUT_TEXTS = [
    "阿里巴巴集团创始人马云在杭州出席了技术峰会。",
    "据说，刘德华平时生活在香港，但是他喜欢去北京钓鱼",
    "马云在上海",
    "北京上海香港杭州",
    "刘德华喜欢去香港钓鱼。",
    "阿里巴巴集团在杭州",
    "马云，刘德华，他",
    "技术峰会",
    "马",
    "上海阿里巴巴集团技术峰会在北京出席",
    "峰会，技术，集团。",
    "马a云1在b杭2州",
    "1马云2刘德华3",
    "a北b京c",
    "abc北京123",
    "马云在abc上海",
    "刘德华123",
    "ab12c",
    "据说马云123岁了",
    "2023年马云在杭州召开峰会",
]
"""Chinese in and out of the tiny vocab, single Latin letters and digits between Chinese, and Latin/digit runs.

Without ``is_split_into_words`` the pipeline crashes on a word its tokenizer maps to [UNK] (a run like ``abc``
with the tiny vocab, a character outside it): those texts are counted by compare_with_pipeline, not compared.
"""
NO_SPLIT_PIPELINE_FAILURES = 6
"""Texts of LAYOUT_TEXTS on which the pipeline without ``is_split_into_words`` crashes (see above)."""

BIOES_LABELS = ["O", *(f"{p}-{t}" for t in ("PER", "LOC", "ORG") for p in "BIES")]


def _shuffled_bioes(seed: int) -> list[str]:
    """BIOES labels in a random id order that does not start with ``O``."""
    labels = list(BIOES_LABELS)
    random.Random(seed).shuffle(labels)
    assert labels[0] != "O"
    return labels


def _edit_json(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")


def _weights(out: Path, seed: int) -> None:
    """Random weights for the config files already in `out` (the encoder class follows config.json)."""
    torch.manual_seed(seed)
    save_weights(new_crf_model(out), out, half=False)


def _top_level_head_keys(out: Path) -> None:
    """Store the head as older checkpoints do: ``linear.weight``, ``crf.transitions``, ... with no ``head.``."""
    state = torch.load(out / "pytorch_model.bin")
    torch.save({key.removeprefix("head."): value for key, value in state.items()}, out / "pytorch_model.bin")


def _structbert(out: Path) -> None:
    """A StructBERT encoder: ModelScope builds the encoder, and AutoTokenizer the tokenizer, from these files."""
    _edit_json(out / "config.json", lambda c: c.update(model_type="structbert", architectures=["SbertModel"]))
    tokenizer_config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512}
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=1))


def _labels_in_config_only(out: Path, labels: list[str]) -> None:
    """No label_mapping.json: the labels come from config.json, as Hugging Face writes them (string ids)."""
    (out / "label_mapping.json").unlink()
    _edit_json(
        out / "config.json",
        lambda c: c.update(
            id2label={str(i): label for i, label in enumerate(labels)},
            label2id={label: i for i, label in enumerate(labels)},
        ),
    )


def _without_split_into_words(out: Path) -> None:
    _edit_json(out / "configuration.json", lambda c: c["preprocessor"].pop("is_split_into_words"))


def build_legacy_head_keys(out: Path) -> None:
    build_random_model(out, TINY_VOCAB, TINY_SHAPE, seed=7)
    _top_level_head_keys(out)


def build_structbert(out: Path) -> None:
    write_model_dir(out, TINY_VOCAB, BIOES_LABELS, TINY_SHAPE)
    _structbert(out)
    _weights(out, seed=5)


def build_bioes_label_mapping(out: Path) -> None:
    write_model_dir(out, TINY_VOCAB, _shuffled_bioes(seed=3), TINY_SHAPE)
    _weights(out, seed=9)


def build_bioes_config_id2label(out: Path) -> None:
    labels = _shuffled_bioes(seed=4)
    write_model_dir(out, TINY_VOCAB, labels, TINY_SHAPE)
    _labels_in_config_only(out, labels)
    _weights(out, seed=9)


def build_no_split_into_words(out: Path) -> None:
    build_random_model(out, TINY_VOCAB, TINY_SHAPE, seed=7)
    _without_split_into_words(out)


def build_published(out: Path) -> None:
    """Every variation at once, as an old hub upload might have them."""
    labels = _shuffled_bioes(seed=5)
    write_model_dir(out, TINY_VOCAB, labels, TINY_SHAPE)
    _structbert(out)
    _labels_in_config_only(out, labels)
    _without_split_into_words(out)
    _weights(out, seed=13)
    _top_level_head_keys(out)


LAYOUTS: dict[str, Callable[[Path], None]] = {
    "legacy_head_keys": build_legacy_head_keys,
    "structbert": build_structbert,
    "bioes_label_mapping": build_bioes_label_mapping,
    "bioes_config_id2label": build_bioes_config_id2label,
    "no_split_into_words": build_no_split_into_words,
    "published": build_published,
}
SPLITS_INTO_WORDS = {"legacy_head_keys", "structbert", "bioes_label_mapping", "bioes_config_id2label"}


@pytest.fixture(autouse=True)
def torch_threads_restored():
    """Tests here run torch on one thread (see `open_pool`); the tests after them get the count they had."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def open_pool(model_dir: Path) -> RaNERModelPool:
    """A one-instance pool, and one torch thread for it and the pipeline: with models this tiny, each op is a few
    microseconds, and a second thread on busy shared cores makes each one wait milliseconds for the other."""
    pool = RaNERModelPool(model_dir, pool_size=1, engine_config=PIPELINE_READING)
    torch.set_num_threads(1)
    return pool


@pytest.fixture(scope="module", params=list(LAYOUTS))
def layout(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    name: str = request.param
    out = tmp_path_factory.mktemp(name) / "model"
    LAYOUTS[name](out)
    return name, out


def test_layout_loads_every_stored_weight(layout: tuple[str, Path]):
    """Nothing is silently re-initialised: the loaded model holds every tensor of the checkpoint."""
    name, model_dir = layout
    pool = open_pool(model_dir)
    # the pool's modules hold fused linear layers (raner_pool.onednn); the same load, unfused, has every tensor
    loaded = type(pool.backend)(model_dir, fused=False).model.state_dict()  # type: ignore[call-arg,attr-defined]
    stored = torch.load(model_dir / "pytorch_model.bin")
    if name in ("legacy_head_keys", "published"):
        assert not any(key.startswith("head.") for key in stored) and "crf.transitions" in stored
    for key, value in stored.items():
        model_key = key if key.startswith(("encoder.", "head.")) else f"head.{key}"
        assert torch.equal(loaded[model_key], value), key
    assert pool.backend.crf is not None
    assert (
        pool.backend.crf.transitions == stored[next(k for k in stored if k.endswith("crf.transitions"))].numpy()
    ).all()
    if name in ("structbert", "published"):
        assert type(pool.backend.model.encoder).__name__ == "SbertModel"  # type: ignore[attr-defined]
    expected_labels = json.loads((model_dir / "config.json").read_text()).get("id2label")
    if expected_labels is None and (model_dir / "label_mapping.json").is_file():
        mapping = json.loads((model_dir / "label_mapping.json").read_text())
        expected_labels = {str(i): label for label, i in mapping.items()}
    assert pool.labels == [expected_labels[str(i)] for i in range(len(expected_labels))]
    pool.close()


def test_layout_matches_the_modelscope_pipeline(layout: tuple[str, Path]):
    name, model_dir = layout
    pool = open_pool(model_dir)
    report = compare_with_pipeline(model_dir, LAYOUT_TEXTS, pool)
    assert report.mismatches == []
    failures = 0 if name in SPLITS_INTO_WORDS else NO_SPLIT_PIPELINE_FAILURES
    assert (report.compared, report.pipeline_failed) == (len(LAYOUT_TEXTS) - failures, failures)
    # random weights, random CRF: entities anyway, so the comparison is not vacuous
    found = pool.predict_batch(LAYOUT_TEXTS)
    assert sum(map(bool, found)) >= len(LAYOUT_TEXTS) // 2
    assert any(e.end - e.start > 1 for entities in found for e in entities)
    pool.close()


WORDPIECE_VOCAB = [*TINY_VOCAB, "##b", "##c", "##2", "##3"]
"""The tiny vocab plus word pieces, so that ``abc`` and ``123`` tokenise as words ("a ##b ##c") instead of [UNK]."""


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="without is_split_into_words the pipeline tags a Latin/digit run as one word (its first word piece, "
    "offsets over the whole word); the engine always tags code points one by one",
)
def test_no_split_into_words_with_latin_words_in_the_vocab(tmp_path: Path):
    model_dir = tmp_path / "model"
    build_random_model(model_dir, WORDPIECE_VOCAB, TINY_SHAPE, seed=7)
    _without_split_into_words(model_dir)
    pool = open_pool(model_dir)
    report = compare_with_pipeline(model_dir, ["abc北京123", "马云在abc上海"], pool)
    pool.close()
    assert report.compared == 2
    assert report.mismatches == []
