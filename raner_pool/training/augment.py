"""Training-time augmentation, drawn afresh each epoch (the same on a resumed run): what a small model gets wrong
about names it has not seen, attacked at the data.

- mention replacement: a name swapped for another of its type, from the data's own names (and for PER/LOC/ORG
  from jieba's dictionary: person `nr`, place `ns`, organisation `nt`), so the model learns from the context and
  the shape of a name rather than memorising the names the data has;
- joined runs: consecutive texts joined as they stood, up to the window, so a sentence end is learned as a
  boundary between entities rather than something the model never sees inside a text;
- decoration: a symbol or emoji dropped next to a name now and then, tagged O, as users' text has them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from raner_pool.training.examples import Example, Span

JIEBA_TAGS = {"nr": "PER", "ns": "LOC", "nt": "ORG"}
# name lengths kept from the dictionary: its nr entries include idioms and "于曼联"-like noise beyond these
JIEBA_LENGTHS = {"PER": (2, 3), "LOC": (2, 6), "ORG": (3, 12)}
DECORATIONS = "😀🔥👍★☆●■◆→※【】「」《》“”!?#@&*~·…—"


@dataclass(frozen=True)
class Augmentation:
    """How much of each augmentation an epoch gets; all 0: the data as it is."""

    replace_prob: float = 0.0
    """Per name: swapped for another of its type."""
    join_prob: float = 0.0
    """After each text: the next one is joined to it (when the run still fits the window)."""
    decorate_prob: float = 0.0
    """Per text: a symbol put next to a name."""
    jieba_names: bool = False
    """Swap in jieba's dictionary names too (PER/LOC/ORG only; needs the `train` extra)."""

    @property
    def active(self) -> bool:
        return bool(self.replace_prob or self.join_prob or self.decorate_prob)


@dataclass(frozen=True)
class Lexicon:
    """Names per entity type to swap in."""

    names: dict[str, tuple[str, ...]]

    @classmethod
    def build(cls, examples: Sequence[Example], dictionary: Path | None = None) -> Lexicon:
        """Every name in `examples`, plus the dictionary's PER/LOC/ORG names when a jieba dict.txt is given."""
        found: dict[str, set[str]] = {}
        for example in examples:
            for span in example.spans:
                found.setdefault(span.type, set()).add(example.text[span.start : span.end])
        if dictionary is not None:
            surnames = {name[0] for name in found.get("PER", ()) if 2 <= len(name) <= 3}
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
                if entity_type in found:
                    found[entity_type].add(word)
        return cls({t: tuple(sorted(names)) for t, names in found.items()})


def jieba_dictionary() -> Path:
    """jieba's dict.txt (349,046 `word freq tag` entries), from the installed package."""
    import jieba  # a training dependency only (the `train` extra)

    return Path(jieba.__file__).parent / "dict.txt"


def replace_mentions(example: Example, lexicon: Lexicon, prob: float, rng: random.Random) -> Example:
    """Each name swapped, with probability `prob`, for a random name of its type; spans moved to match."""
    if not example.spans or prob <= 0:
        return example
    text, spans, cursor = [], [], 0
    for span in example.spans:
        text.append(example.text[cursor : span.start])
        name = example.text[span.start : span.end]
        if rng.random() < prob and lexicon.names.get(span.type):
            name = rng.choice(lexicon.names[span.type])
        start = sum(map(len, text))
        text.append(name)
        spans.append(Span(start, start + len(name), span.type))
        cursor = span.end
    text.append(example.text[cursor:])
    return Example("".join(text), tuple(spans), example.where)


def decorate(example: Example, prob: float, rng: random.Random) -> Example:
    """With probability `prob`, one symbol put just before or after a name (or anywhere if it has none)."""
    if rng.random() >= prob:
        return example
    if example.spans:
        span = rng.choice(example.spans)
        where = rng.choice((span.start, span.end))
    else:
        where = rng.randrange(len(example.text) + 1)
    shifted = tuple(s if s.end <= where else Span(s.start + 1, s.end + 1, s.type) for s in example.spans)
    return Example(example.text[:where] + rng.choice(DECORATIONS) + example.text[where:], shifted, example.where)


def joined_runs(examples: Sequence[Example], join_prob: float, window: int, rng: random.Random) -> list[Example]:
    """Consecutive examples, in order, joined into runs of at most `window` characters; every example is in
    exactly one run, so an epoch sees the same characters as without joining."""
    runs: list[Example] = []
    text, where = "", ""
    spans: list[Span] = []
    for example in examples:
        if text and (len(text) + len(example.text) > window or rng.random() >= join_prob):
            runs.append(Example(text, tuple(spans), where))
            text, spans = "", []
        where = where if text else example.where
        spans.extend(Span(s.start + len(text), s.end + len(text), s.type) for s in example.spans)
        text += example.text
    if text:
        runs.append(Example(text, tuple(spans), where))
    return runs


def augmented(examples: Sequence[Example], lexicon: Lexicon, settings: Augmentation, window: int,
              rng: random.Random) -> list[Example]:
    """One epoch's texts: every example once, names swapped and decorated, joined into runs."""
    changed = []
    for example in examples:
        new = decorate(replace_mentions(example, lexicon, settings.replace_prob, rng), settings.decorate_prob, rng)
        changed.append(new if len(new.text) <= window else example)
    return joined_runs(changed, settings.join_prob, window, rng) if settings.join_prob else changed
