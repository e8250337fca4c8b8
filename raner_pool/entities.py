"""The result type every predict call returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Entity:
    """One entity found in a text.

    `start`/`end` are Python code-point offsets into the text the caller sent,
    `end` exclusive, so ``span == text[start:end]``. `prob` is the model's
    softmax probability of the tag chosen for the span's first character (the
    same figure the ModelScope pipeline reports).
    """

    type: str
    start: int
    end: int
    span: str
    prob: float

    def to_dict(self) -> dict[str, str | int | float]:
        """Plain JSON-ready dict with the ModelScope keys: type, start, end, span, prob."""
        return asdict(self)
