"""Training code: the plain-PyTorch model is ModelScope's model, and augmentation keeps tags true to the text."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raner_pool.corpus import TaggedSentence
from raner_pool.modeldir import MSRA_LABELS, SPECIAL_TOKENS, EncoderShape, new_crf_model, save_weights, write_model_dir
from raner_pool.tagging import decode_spans
from training.augment import Lexicon, decorate, jieba_dictionary, joined_runs, replace_mentions
from training.bert_crf import BertCRF

SENTENCES = [
    TaggedSentence("张三在北京。", ("B-PER", "E-PER", "O", "B-LOC", "E-LOC", "O")),
    TaggedSentence("新华社报道。", ("B-ORG", "M-ORG", "E-ORG", "O", "O", "O")),
    TaggedSentence("今天下雨。", ("O", "O", "O", "O", "O")),
]


def names(sentence: TaggedSentence) -> list[tuple[str, str]]:
    return [(s.type, sentence.text[s.start : s.end]) for s in decode_spans(sentence.tags)]


def test_plain_pytorch_model_is_the_modelscope_model(tmp_path: Path) -> None:
    shape = EncoderShape(layers=2, hidden=64, heads=4, intermediate=128)
    vocab = [*SPECIAL_TOKENS, *"甲乙丙丁戊己庚辛壬癸"]
    torch.manual_seed(0)
    ours = BertCRF(len(vocab), len(MSRA_LABELS), shape).eval()
    write_model_dir(tmp_path, vocab, MSRA_LABELS, shape)
    save_weights(ours, tmp_path, half=False)
    theirs = new_crf_model(tmp_path)
    theirs.load_state_dict(torch.load(tmp_path / "pytorch_model.bin"), strict=True)
    theirs.eval()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]

    ids = torch.randint(len(SPECIAL_TOKENS), len(vocab), (3, 9))
    attention = torch.ones_like(ids)
    attention[1, 6:] = 0
    attention[2, 4:] = 0
    mask = torch.zeros(3, 7, dtype=torch.bool)
    mask[0, :], mask[1, :4], mask[2, :2] = True, True, True
    expected = theirs.head.linear(theirs.encoder(input_ids=ids, attention_mask=attention).last_hidden_state)[:, 1:-1]
    emissions = ours.emissions(ids, attention)
    assert torch.allclose(emissions[mask], expected[mask], atol=1e-5)
    tags = torch.randint(0, len(MSRA_LABELS), (3, 7))
    ours_llh = ours.head.crf.log_likelihood(expected, tags, mask)
    assert torch.allclose(ours_llh, theirs.head.crf(expected, tags, mask, reduction="none"), atol=1e-4)
    assert torch.equal(ours.head.crf.decode(expected, mask), theirs.head.crf.decode(expected, mask.byte()).squeeze(0))


def test_mention_replacement_swaps_names_of_the_same_type() -> None:
    lexicon = Lexicon({"PER": ("欧阳修文",), "LOC": ("上海",), "ORG": ("人民日报社",)})
    swapped = replace_mentions(SENTENCES[0], lexicon, 1.0, random.Random(0))
    assert swapped.text == "欧阳修文在上海。"
    assert names(swapped) == [("PER", "欧阳修文"), ("LOC", "上海")]
    assert replace_mentions(SENTENCES[0], lexicon, 0.0, random.Random(0)) == SENTENCES[0]


def test_lexicon_takes_typed_names_from_jieba() -> None:
    lexicon = Lexicon.build(SENTENCES, jieba_dictionary())
    assert {"张三", "北京", "新华社"} <= {n for found in lexicon.names.values() for n in found}
    assert len(lexicon.names["LOC"]) > 10_000
    assert all(name[0] == "张" for name in lexicon.names["PER"])  # person names only with a surname seen in training
    assert all(2 <= len(name) <= 12 for name in lexicon.names["ORG"][1:])


@pytest.mark.parametrize("seed", range(5))
def test_decoration_puts_a_symbol_outside_names(seed: int) -> None:
    decorated = decorate(SENTENCES[0], 1.0, random.Random(seed))
    assert len(decorated.text) == len(decorated.tags) == 7
    assert names(decorated) == names(SENTENCES[0])


def test_joined_runs_keep_every_sentence_once_in_order_within_the_window() -> None:
    runs = joined_runs(SENTENCES * 4, 0.7, 12, random.Random(1))
    assert "".join(r.text for r in runs) == "".join(s.text for s in SENTENCES * 4)
    assert all(len(r.text) <= 12 for r in runs)
    assert any(len(r.text) > 6 for r in runs)
    assert [n for r in runs for n in names(r)] == [n for s in SENTENCES * 4 for n in names(s)]
    assert joined_runs(SENTENCES, 0.0, 100, random.Random(1)) == SENTENCES
