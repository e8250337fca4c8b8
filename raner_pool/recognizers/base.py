"""What every rule-based recogniser is: a type it finds, a cheap cue that says whether a text can hold one, and
`recognize(text, reference)`; plus the words around a number that qualify it (近 3亿元: under)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from raner_pool.entities import Entity

APPROX_BEFORE: dict[str, str | None] = {
    "将近": "under", "接近": "under", "不到": "under", "不足": "under", "近": "under",
    "逾": "over", "超过": "over", "超": "over", "高达": "over", "多达": "over", "达到": None, "达": None,
    "大约": "about", "约": "about", "大概": "about", "约合": "about",
}
"""Words before an amount that qualify it (None: a word that is not part of the amount and says nothing)."""
APPROX_AFTER = {"左右": "about", "上下": "about", "以上": "over", "以下": "under"}
"""Words after an amount that qualify it."""


class Recognizer(Protocol):
    """Finds one entity type by rule. `recognize` must be safe to call from one thread at a time per instance
    (each pool thread gets its own instances: see raner_pool.recognizers.RuleSet)."""

    type: str

    def cue(self, text: str) -> bool:
        """Whether `text` may hold an entity of this type at all: a cheap test that spares most texts the rules."""
        ...

    def recognize(self, text: str, reference: datetime) -> list[Entity]:
        """The entities of this type in `text`; relative expressions are resolved against `reference`."""
        ...


def approx_around(text: str, start: int, end: int) -> tuple[int, int, str | None]:
    """A number's span with the qualifying words at its edges left out (近3亿元 -> 3亿元, 3亿元左右 -> 3亿元), and
    the qualifier ("about", "over", "under") from those words or the ones just outside the span."""
    approx: str | None = None
    for word, meaning in sorted(APPROX_AFTER.items(), key=lambda item: -len(item[0])):
        if text.endswith(word, start, end) and end - start > len(word):
            end, approx = end - len(word), meaning
            break
    else:
        approx = next((meaning for word, meaning in APPROX_AFTER.items() if text.startswith(word, end)), None)
    for word, before in sorted(APPROX_BEFORE.items(), key=lambda item: -len(item[0])):
        if text.startswith(word, start) and end - start > len(word):
            return start + len(word), end, before or approx
        if text.endswith(word, 0, start):
            return start, end, before or approx
    return start, end, approx
