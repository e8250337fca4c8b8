"""The engine returns a correct list for any string: offsets are code points, nothing is truncated."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from raner_pool import EngineConfig, Entity, RaNERModelPool
from raner_pool.engine import batch_cost
from raner_pool.windows import Window, plan_windows

from .conftest import SAMPLE_TEXTS, assert_same_results

STRING_ZOO = {
    "empty": "",
    "whitespace": " \t\n\u3000  ",
    "emoji": "😀马云🇨🇳在👨‍👩‍👧杭州😀",
    "not in vocab": "龘靐齉爩鱻麤",
    "latin": "Jack Ma founded Alibaba in Hangzhou.",
    "full width": "ＡＢＣ１２３，北京（中国）",
    "control": "马\x00云\x07在\x1b[31m杭州\x7f\u200b\ufeff",
    "mixed scripts": "马云(Jack Ma)は東京에서 Москва العربية 北京",
    "lone surrogate": "北京\ud800上海",
    "combining": "e\u0301马\u0308云",
    "private use": "\ue000\U000f0000北京",
}


def assert_well_formed(text: str, entities: list[Entity]) -> None:
    previous_end = 0
    for e in entities:
        assert isinstance(e.start, int) and isinstance(e.end, int) and isinstance(e.prob, float)
        assert 0 <= e.start < e.end <= len(text)
        assert e.span == text[e.start : e.end]
        assert e.start >= previous_end, "entities are sorted and never overlap"
        assert 0.0 <= e.prob <= 1.0
        previous_end = e.end


@pytest.mark.parametrize("name", list(STRING_ZOO))
def test_string_zoo(tiny_pool: RaNERModelPool, name: str):
    text = STRING_ZOO[name]
    entities = tiny_pool.predict(text)
    assert_well_formed(text, entities)
    if not text:
        assert entities == []


def test_batch_keeps_order_and_matches_single_calls(tiny_pool: RaNERModelPool):
    texts = [*SAMPLE_TEXTS, *STRING_ZOO.values()]
    assert_same_results(tiny_pool.predict_batch(texts), [tiny_pool.predict(t) for t in texts])


def test_one_megabyte_of_text(tiny_pool: RaNERModelPool):
    text = ("阿里巴巴集团创始人马云在杭州出席了技术峰会。abc 123\n" * 40000)[:1_000_000]
    entities = tiny_pool.predict(text)
    assert_well_formed(text, entities)
    assert entities and entities[-1].end > 990_000, "the end of the text is analysed, not truncated"


def test_windows_use_global_offsets(tiny_model_dir: Path):
    """A windowed text reports, inside each window's owned stretch, what that window alone reports, shifted."""
    text = "据说，刘德华平时生活在香港，但是他喜欢去北京钓鱼。" * 30
    config = EngineConfig(max_window_tokens=128, window_overlap=48, sentence_windows=False)
    pool = RaNERModelPool(tiny_model_dir, pool_size=1, engine_config=config)
    windowed = pool.predict(text)
    assert_well_formed(text, windowed)
    windows = plan_windows([1] * len(text), 128, 48)  # every character here is one token
    assert len(windows) > 5
    for w in windows:
        alone = [replace(e, start=e.start + w.start, end=e.end + w.start) for e in pool.predict(text[w.start : w.end])]

        def owned(entities: list[Entity], w: Window = w) -> list[tuple[str, int, int]]:
            return [(e.type, e.start, e.end) for e in entities if e.start > w.own_start and e.end < w.own_end]

        assert owned(windowed) == owned(alone)
        assert [e.prob for e in windowed if (e.type, e.start, e.end) in owned(alone)] == pytest.approx(
            [e.prob for e in alone if (e.type, e.start, e.end) in owned(alone)], abs=1e-5
        )


def test_wrong_input_types_are_named(tiny_pool: RaNERModelPool):
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        tiny_pool.predict_batch(["北京", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="list of texts"):
        tiny_pool.predict_batch("北京")
    with pytest.raises(TypeError, match=r"texts\[0\] is NoneType"):
        tiny_pool.predict(None)  # type: ignore[arg-type]


def test_entities_are_plain_json(tiny_pool: RaNERModelPool):
    import json

    entities = tiny_pool.predict(SAMPLE_TEXTS[0])
    decoded = json.loads(json.dumps([e.to_dict() for e in entities]))
    assert [Entity(**d) for d in decoded] == entities


def test_entities_never_start_or_end_with_whitespace(tiny_pool: RaNERModelPool):
    texts = [" 马云 在 杭州 ", "\n北京\t上海\r\n", "刘德华\u3000平时"]
    for text, entities in zip(texts, tiny_pool.predict_batch(texts), strict=True):
        assert all(e.span == text[e.start : e.end] == e.span.strip() and e.span for e in entities)


def test_a_packed_batch_costs_its_tokens_and_a_padded_one_its_longest_times_its_size():
    assert batch_cost([10, 30, 20], packed=True) == 60
    assert batch_cost([10, 30, 20], packed=False) == 90
    assert batch_cost([], packed=False) == 0


def test_texts_run_together_score_as_each_on_its_own_padded_row(default_pool: RaNERModelPool):
    """Texts run together, each attending only to itself with positions from 0, give the scores and entities that
    one text per padded row gives (the backend of the default model packs)."""
    from raner_pool.corpus import load_msra
    from raner_pool.engine import NEREngine

    assert default_pool.backend.packs
    texts = [s.text for s in load_msra("test", 200) if s.text] + SAMPLE_TEXTS
    packed = NEREngine(default_pool.backend)
    padded = NEREngine(default_pool.backend)
    padded.packs = False
    got, want = packed.classify_tokens(texts), padded.classify_tokens(texts)
    assert_same_results([g.entities for g in got], [w.entities for w in want])
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.token_probs, w.token_probs, atol=1e-4)
