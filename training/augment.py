"""Training-time augmentation of MSRA sentences: what the first default model got wrong, attacked at the data.

- mention replacement: a name is swapped for another of the same type, from MSRA train's own names or from
  jieba's dictionary (person `nr`, place `ns`, organisation `nt`), so the model learns from the context and the
  shape of a name rather than memorising the few thousand names MSRA train has (unseen names are its misses);
- joined runs: consecutive sentences of an article joined as they stood, up to the served window, so a sentence
  end is learned as a boundary between entities rather than something the model never sees inside a text;
- decoration: a symbol or emoji dropped next to a name now and then, tagged O, as users' text has them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from raner_pool.corpus import TaggedSentence
from raner_pool.tagging import decode_spans

ENTITY_TYPES = ("PER", "LOC", "ORG")
JIEBA_TAGS = {"nr": "PER", "ns": "LOC", "nt": "ORG"}
# name lengths kept from the dictionary: its nr entries include idioms and "于曼联"-like noise beyond these
JIEBA_LENGTHS = {"PER": (2, 3), "LOC": (2, 6), "ORG": (3, 12)}
DECORATIONS = "😀🔥👍★☆●■◆→※【】「」《》“”!?#@&*~·…—"


@dataclass(frozen=True)
class Lexicon:
    """Names per entity type to swap in; `surnames` filters the dictionary's person names."""

    names: dict[str, tuple[str, ...]]

    @classmethod
    def build(cls, sentences: Sequence[TaggedSentence], dictionary: Path | None = None) -> Lexicon:
        """Every name in `sentences`, plus the dictionary's names of each type when a jieba dict.txt is given."""
        found: dict[str, set[str]] = {t: set() for t in ENTITY_TYPES}
        for sentence in sentences:
            for span in decode_spans(sentence.tags):
                found[span.type].add(sentence.text[span.start : span.end])
        if dictionary is not None:
            surnames = {name[0] for name in found["PER"] if 2 <= len(name) <= 3}
            for line in dictionary.read_text(encoding="utf-8").splitlines():
                fields = line.split()
                if len(fields) != 3 or fields[2] not in JIEBA_TAGS:
                    continue
                word, entity_type = fields[0], JIEBA_TAGS[fields[2]]
                low, high = JIEBA_LENGTHS[entity_type]
                if not (low <= len(word) <= high and all("\u4e00" <= ch <= "\u9fff" for ch in word)):
                    continue
                if entity_type == "PER" and word[0] not in surnames:
                    continue
                found[entity_type].add(word)
        return cls({t: tuple(sorted(names)) for t, names in found.items()})


def jieba_dictionary() -> Path:
    """jieba's dict.txt (349,046 `word freq tag` entries), from the installed package."""
    import jieba  # a training dependency only

    return Path(jieba.__file__).parent / "dict.txt"


def replace_mentions(sentence: TaggedSentence, lexicon: Lexicon, prob: float, rng: random.Random) -> TaggedSentence:
    """Each name swapped, with probability `prob`, for a random name of its type; tags rewritten to match."""
    spans = decode_spans(sentence.tags)
    if not spans or prob <= 0:
        return sentence
    text, tags, cursor = [], [], 0
    for span in spans:
        text.append(sentence.text[cursor : span.start])
        tags.extend(sentence.tags[cursor : span.start])
        name = sentence.text[span.start : span.end]
        if rng.random() < prob and lexicon.names[span.type]:
            name = rng.choice(lexicon.names[span.type])
        text.append(name)
        tags.extend(entity_tags(span.type, len(name)))
        cursor = span.end
    text.append(sentence.text[cursor:])
    tags.extend(sentence.tags[cursor:])
    return TaggedSentence("".join(text), tuple(tags))


def entity_tags(entity_type: str, length: int) -> list[str]:
    """BMES tags of one name of `length` characters."""
    if length == 1:
        return [f"S-{entity_type}"]
    return [f"B-{entity_type}", *[f"M-{entity_type}"] * (length - 2), f"E-{entity_type}"]


def decorate(sentence: TaggedSentence, prob: float, rng: random.Random) -> TaggedSentence:
    """With probability `prob`, one symbol put just before or after a name (or anywhere if it has none), tag O."""
    if rng.random() >= prob:
        return sentence
    spans = decode_spans(sentence.tags)
    if spans:
        span = rng.choice(spans)
        where = rng.choice((span.start, span.end))
    else:
        where = rng.randrange(len(sentence.text) + 1)
    symbol = rng.choice(DECORATIONS)
    return TaggedSentence(
        sentence.text[:where] + symbol + sentence.text[where:],
        (*sentence.tags[:where], "O", *sentence.tags[where:]),
    )


def joined_runs(
    sentences: Sequence[TaggedSentence], join_prob: float, window: int, rng: random.Random
) -> list[TaggedSentence]:
    """Consecutive sentences, in corpus order, joined into runs of at most `window` characters.

    After each sentence the run goes on to the next one with probability `join_prob` if it still fits; every
    sentence is in exactly one run, so an epoch sees the same characters as without joining.
    """
    runs: list[TaggedSentence] = []
    text, tags = "", ()
    for sentence in sentences:
        if text and (len(text) + len(sentence.text) > window or rng.random() >= join_prob):
            runs.append(TaggedSentence(text, tags))
            text, tags = "", ()
        text, tags = text + sentence.text, (*tags, *sentence.tags)
    if text:
        runs.append(TaggedSentence(text, tags))
    return runs
