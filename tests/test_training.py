"""Training-time augmentation keeps every span true to its text, and the default's recipe runs from scratch."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from raner_pool import RaNERModelPool, TrainConfig, train
from raner_pool.corpus import load_msra
from raner_pool.tagging import decode_spans
from raner_pool.training import Example, Span
from raner_pool.training.augment import Augmentation, Lexicon, decorate, jieba_dictionary, joined_runs, replace_mentions

EXAMPLES = [
    Example("张三在北京。", (Span(0, 2, "PER"), Span(3, 5, "LOC")), "a:1"),
    Example("新华社报道。", (Span(0, 3, "ORG"),), "a:2"),
    Example("今天下雨。", (), "a:3"),
]


def names(example: Example) -> list[tuple[str, str]]:
    return [(s.type, example.text[s.start : s.end]) for s in example.spans]


def test_mention_replacement_swaps_names_of_the_same_type() -> None:
    lexicon = Lexicon({"PER": ("欧阳修文",), "LOC": ("上海",), "ORG": ("人民日报社",)})
    swapped = replace_mentions(EXAMPLES[0], lexicon, 1.0, random.Random(0))
    assert swapped.text == "欧阳修文在上海。"
    assert names(swapped) == [("PER", "欧阳修文"), ("LOC", "上海")]
    assert replace_mentions(EXAMPLES[0], lexicon, 0.0, random.Random(0)) == EXAMPLES[0]


def test_lexicon_takes_typed_names_from_jieba() -> None:
    lexicon = Lexicon.build(EXAMPLES, jieba_dictionary())
    assert {"张三", "北京", "新华社"} <= {n for found in lexicon.names.values() for n in found}
    assert len(lexicon.names["LOC"]) > 10_000
    assert all(name[0] == "张" for name in lexicon.names["PER"])  # person names only with a surname seen in training
    assert all(2 <= len(name) <= 12 for name in lexicon.names["ORG"][1:])


def test_lexicon_of_users_types_takes_the_datas_own_names() -> None:
    data = [Example("买了华为Mate60", (Span(2, 4, "BRAND"), Span(4, 10, "PRODUCT")), "b:1")]
    assert Lexicon.build(data, jieba_dictionary()).names == {"BRAND": ("华为",), "PRODUCT": ("Mate60",)}


@pytest.mark.parametrize("seed", range(5))
def test_decoration_puts_a_symbol_outside_names(seed: int) -> None:
    decorated = decorate(EXAMPLES[0], 1.0, random.Random(seed))
    assert len(decorated.text) == 7
    assert names(decorated) == names(EXAMPLES[0])


def test_joined_runs_keep_every_example_once_in_order_within_the_window() -> None:
    runs = joined_runs(EXAMPLES * 4, 0.7, 12, random.Random(1))
    assert "".join(r.text for r in runs) == "".join(s.text for s in EXAMPLES * 4)
    assert all(len(r.text) <= 12 for r in runs)
    assert any(len(r.text) > 6 for r in runs)
    assert [n for r in runs for n in names(r)] == [n for s in EXAMPLES * 4 for n in names(s)]
    assert joined_runs(EXAMPLES, 0.0, 100, random.Random(1)) == EXAMPLES


def test_the_defaults_recipe_trains_from_scratch_with_every_augmentation(tmp_path: Path) -> None:
    """`make train`'s options on a few MSRA sentences: a new vocab and encoder, names swapped in from jieba,
    decorations, joined runs, the window kept in the dir; then the same again initialised from the result."""
    data = tmp_path / "msra.jsonl"
    sentences = load_msra("train", limit=60)
    data.write_text("".join(json.dumps({"text": s.text, "entities": [
        {"start": d.start, "end": d.end, "type": d.type} for d in decode_spans(s.tags)]}, ensure_ascii=False) + "\n"
        for s in sentences), encoding="utf-8")
    recipe = TrainConfig(epochs=2, shape="2x64", window=60, min_char_count=1, progress=False, batch_size=8,
                         augment=Augmentation(replace_prob=0.3, join_prob=0.5, decorate_prob=0.05, jieba_names=True))
    first = train([data], "scratch", tmp_path / "gen1", recipe)
    assert first.labels == ("O", *(f"{p}-{t}" for t in ("LOC", "ORG", "PER") for p in "BMES"))
    assert json.loads((first.output / "raner_pool.json").read_text())["max_window_tokens"] == 60
    assert "none (from scratch, 2 x 64)" in (first.output / "README.md").read_text(encoding="utf-8")
    second = train([data], "scratch", tmp_path / "gen2",
                   TrainConfig(**{**recipe.__dict__, "init_from": str(first.output), "epochs": 1}))
    with RaNERModelPool(second.output, pool_size=1, extra_types=()) as pool:
        assert pool.labels == list(first.labels)
        assert pool.backend.max_positions == 62  # the window + [CLS] and [SEP]
