"""Entity types beyond the model's: TIME, MONEY, PERCENT and TITLE, found by rules after the model and merged
with its entities by one policy (merge.py). Each recogniser is one module behind the small protocol of base.py;
a pool runs the ones its `extra_types` name and knows nothing else of them."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from raner_pool.entities import Entity
from raner_pool.errors import RaNERError
from raner_pool.recognizers.base import Recognizer
from raner_pool.recognizers.merge import merge

log = logging.getLogger(__name__)


def _time() -> Recognizer:
    from raner_pool.recognizers.times import TimeRecognizer

    return TimeRecognizer()


def _money() -> Recognizer:
    from raner_pool.recognizers.money import MoneyRecognizer

    return MoneyRecognizer()


def _percent() -> Recognizer:
    from raner_pool.recognizers.percent import PercentRecognizer

    return PercentRecognizer()


def _title() -> Recognizer:
    from raner_pool.recognizers.titles import TitleRecognizer

    return TitleRecognizer()


def _contact(kind: str) -> Callable[[], Recognizer]:
    def build() -> Recognizer:
        from raner_pool.recognizers import contacts

        classes: dict[str, Callable[[], Recognizer]] = {
            "PHONE": contacts.PhoneRecognizer, "EMAIL": contacts.EmailRecognizer, "URL": contacts.UrlRecognizer,
            "ID_CARD": contacts.IdCardRecognizer,
        }
        return classes[kind]()

    return build


RECOGNIZERS: dict[str, Callable[[], Recognizer]] = {
    "TIME": _time, "MONEY": _money, "PERCENT": _percent, "TITLE": _title,
    **{kind: _contact(kind) for kind in ("PHONE", "EMAIL", "URL", "ID_CARD")},
}
EXTRA_TYPES = ("TIME", "MONEY", "PERCENT", "TITLE")
"""The types a pool adds to the model's by default."""
CONTACT_TYPES = ("PHONE", "EMAIL", "URL", "ID_CARD")
"""Off by default: each is turned on by naming it in `extra_types` (content moderation)."""
CHUNK_CHARS = 512
"""Rules read a long text in pieces of about this many characters, cut after a sentence end."""
WARM_UP_TEXT = "2023年11月2日晚上8点，腾讯总裁在深圳宣布追加投资2.8亿美元，营收同比增长百分之二十。"
SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])")


def check_extra_types(types: Sequence[str]) -> tuple[str, ...]:
    """`types` as a tuple, or a `RaNERError` naming the first one no recogniser finds."""
    if isinstance(types, str):
        raise RaNERError(f"extra_types takes a list of types, not the string {types!r}")
    for name in types:
        if name not in RECOGNIZERS:
            raise RaNERError(f"unknown extra type {name!r}; choose from {', '.join(RECOGNIZERS)}")
    return tuple(dict.fromkeys(types))


class RuleSet:
    """The recognisers of `types`, a set of its own for every thread that calls (jionlp's extractors keep state
    between the steps of one call, so two threads must never share one), and those of the users' dictionary and
    pattern files (raner_pool.recognizers.user_rules), built once and shared: matching only reads them."""

    def __init__(self, types: Sequence[str], dictionaries: Sequence[Path] = (),
                 patterns: Sequence[Path] = ()) -> None:
        from raner_pool.recognizers.user_rules import DictionaryRecognizer, PatternRecognizer

        self.types = check_extra_types(types)
        self._local = threading.local()
        self._shared: list[DictionaryRecognizer | PatternRecognizer] = []
        if dictionaries:
            self._shared.append(DictionaryRecognizer(dictionaries))
        if patterns:
            self._shared.append(PatternRecognizer(patterns))
        self.user_types = sorted({t for r in self._shared for t in r.types} - set(self.types))
        """Types only the users' dictionaries and patterns give."""
        if self.types:  # imports and first-call set-up (jionlp's tables) at start, not in the first request
            self.apply(WARM_UP_TEXT, [], datetime.now().astimezone())

    @property
    def active(self) -> bool:
        """Whether there is any rule to run."""
        return bool(self.types or self._shared)

    def _recognizers(self) -> list[Recognizer]:
        recognizers: list[Recognizer] | None = getattr(self._local, "recognizers", None)
        if recognizers is None:
            recognizers = self._local.recognizers = [RECOGNIZERS[name]() for name in self.types]
        return recognizers

    def apply(self, text: str, model_entities: list[Entity], reference: datetime) -> list[Entity]:
        """The model's entities of `text` with the rules' merged in (merge.py), in text order."""
        if not self.active or not text:
            return model_entities
        found = []
        recognizers = [*self._recognizers(), *self._shared]
        for offset, chunk in _chunks(text):
            for recognizer in recognizers:
                if not recognizer.cue(chunk):
                    continue
                try:
                    entities = recognizer.recognize(chunk, reference)
                except Exception:  # a rule library failing on odd text costs that text its rule entities, no more
                    log.warning("the %s recogniser failed on a text of %d characters; skipped", recognizer.type,
                                len(chunk), exc_info=True)
                    continue
                found += [replace(e, start=e.start + offset, end=e.end + offset) for e in entities]
        return merge(model_entities, found)


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    """(offset, piece) of `text`, pieces of up to about CHUNK_CHARS cut after sentence ends."""
    if len(text) <= CHUNK_CHARS:
        yield 0, text
        return
    start = 0
    piece_start = 0
    for sentence in SENTENCE_END.split(text):
        if start - piece_start + len(sentence) > CHUNK_CHARS and start > piece_start:
            yield piece_start, text[piece_start:start]
            piece_start = start
        start += len(sentence)
        while start - piece_start > 2 * CHUNK_CHARS:  # one sentence longer than two pieces: cut it plainly
            yield piece_start, text[piece_start : piece_start + CHUNK_CHARS]
            piece_start += CHUNK_CHARS
    if start > piece_start:
        yield piece_start, text[piece_start:start]


__all__ = ["CONTACT_TYPES", "EXTRA_TYPES", "RuleSet", "check_extra_types"]
