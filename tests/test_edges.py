"""Entity edges: no symbol, punctuation or whitespace at either end, and no entity across a sentence end."""

from __future__ import annotations

import itertools

import pytest

from raner_pool import RaNERModelPool
from raner_pool.corpus import load_msra
from raner_pool.edges import SENTENCE_ENDS, clean_span, is_edge_noise


@pytest.mark.parametrize(("text", "start", "end", "expected"), [
    ("😀阿里巴巴集团创始人", 0, 7, ["阿里巴巴集团"]),
    ("★马云★在杭州", 0, 2, ["马"]),
    ("★马云★在杭州", 0, 4, ["马云"]),
    ("“马云”说", 0, 4, ["“马云”"]),          # quotes that open and close inside the span stay
    ("《人民日报》社论", 0, 6, ["《人民日报》"]),
    ("《人民日报社论", 0, 6, ["人民日报社"]),    # an opener with no closer inside goes
    ("克里斯·保罗来了", 0, 6, ["克里斯·保罗"]),  # the middle dot inside a transliterated name stays
    ("马云。李彦宏", 0, 6, ["马云", "李彦宏"]),   # cut at a sentence end
    ("北京！\n", 0, 4, ["北京"]),
    ("。！？", 0, 3, []),                        # nothing left: no entity
    (" 杭州 ", 0, 4, ["杭州"]),
])
def test_clean_span(text: str, start: int, end: int, expected: list[str]):
    assert [text[s:e] for s, e in clean_span(text, start, end)] == expected


def assert_clean(text: str, entities: list) -> None:
    for e in entities:
        assert e.span == text[e.start:e.end] and e.span
        assert not is_edge_noise(e.span[0]) or e.span[0] in "“《（(「『‘\"'", e
        assert not is_edge_noise(e.span[-1]) or e.span[-1] in "”》）)」』’\"'", e
        assert not set(e.span) & SENTENCE_ENDS, e


@pytest.mark.parametrize("text", [
    "😀阿里巴巴集团创始人马云在杭州出席了技术峰会。",
    "★马云★在杭州",
    "【新华社北京电】国务院总理李克强……",
    "据说，刘德华平时生活在香港！周杰伦？在台北。\n张学友在澳门",
])
def test_the_default_model_never_puts_noise_at_an_edge(default_pool: RaNERModelPool, text: str):
    assert_clean(text, default_pool.predict(text))


def test_no_entity_crosses_a_sentence_end_in_joined_msra_sentences(default_pool: RaNERModelPool):
    sentences = [s.text for s in load_msra("test", 201)]
    pairs = [a + b for a, b in itertools.pairwise(sentences) if a.endswith("。")]
    assert len(pairs) > 100
    for text, entities in zip(pairs, default_pool.predict_batch(pairs), strict=True):
        assert_clean(text, [e for e in entities if e.source == "model"])  # 12％ keeps its sign: a rule's span


def test_a_text_of_several_sentences_reads_as_its_sentences_one_by_one(default_pool: RaNERModelPool):
    """The model's reading; the rules read a long text in pieces of several sentences (raner_pool.recognizers)."""
    sentences = [s.text for s in load_msra("test", 400) if s.text.endswith("。")][:150]
    expected, offset = [], 0
    for sentence, found in zip(sentences, default_pool.predict_batch(sentences), strict=True):
        expected += [(e.type, e.start + offset, e.end + offset, e.span, e.prob) for e in found if e.source == "model"]
        offset += len(sentence)
    joined = [(e.type, e.start, e.end, e.span, e.prob) for e in default_pool.predict("".join(sentences))
              if e.source == "model"]
    assert len(expected) > 30
    assert [e[:4] for e in joined] == [e[:4] for e in expected]
    assert [e[4] for e in joined] == pytest.approx([e[4] for e in expected], abs=1e-4)


def test_min_prob_keeps_only_confident_entities(default_pool: RaNERModelPool):
    text = "据说，刘德华平时生活在香港，阿里巴巴集团创始人马云在杭州出席了技术峰会。"
    everything = default_pool.predict(text)
    threshold = sorted(e.prob for e in everything)[len(everything) // 2]
    kept = default_pool.predict(text, min_prob=threshold)
    assert kept == [e for e in everything if e.prob >= threshold] and 0 < len(kept) < len(everything)
    assert default_pool.predict_batch([text], min_prob=1.0) == [[e for e in everything if e.prob >= 1.0]]
    with pytest.raises(ValueError, match=r"min_prob must be between 0 and 1, got 1\.5"):
        default_pool.predict(text, min_prob=1.5)
