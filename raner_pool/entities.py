"""The result type every predict call returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SOURCES = ("model", "rule", "dictionary", "pattern")
"""Where an entity comes from: the model, a built-in recogniser (raner_pool.recognizers), a user's dictionary or
pattern."""


@dataclass(frozen=True)
class Entity:
    """One entity found in a text.

    `start`/`end` are Python code-point offsets into the text the caller sent,
    `end` exclusive, so ``span == text[start:end]``. `prob` is the model's
    confidence: the lowest, over the span's characters, of the probability of
    the tag the decoder chose there (CRF marginals by forward-backward; a
    softmax for models without a CRF). The ModelScope pipeline instead reports
    a softmax over the first character's emissions, which ignores the CRF.
    Entities found by rules (TIME, MONEY, PERCENT, TITLE) have `prob` 1.0 and
    `source` "rule", and their normalised `value` (None for the model's types
    and TITLE).
    """

    type: str
    start: int
    end: int
    span: str
    prob: float
    value: dict[str, Any] | None = None
    source: str = "model"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict: the ModelScope keys (type, start, end, span, prob), then value and source."""
        return {"type": self.type, "start": self.start, "end": self.end, "span": self.span, "prob": self.prob,
                "value": self.value, "source": self.source}


def confident(results: Sequence[list[Entity]], min_prob: float) -> list[list[Entity]]:
    """Each text's entities with `prob` at least `min_prob` (0 keeps all): trade recall for precision."""
    if not 0.0 <= min_prob <= 1.0:
        raise ValueError(f"min_prob must be between 0 and 1, got {min_prob}")
    return [[e for e in found if e.prob >= min_prob] for found in results] if min_prob else list(results)
