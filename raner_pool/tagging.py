"""Turn per-token tags (BIO, BIOES/BILOU or BMES) into entity spans.

Every scheme is read by one lenient state machine, so that a model's broken
sequences (an I- with no B-, a type change mid-entity, an E- alone) still
yield sensible spans instead of being dropped or merged across an O:

- ``B-T`` starts a span of type T; ``S-T``/``U-T`` is a one-token span.
- ``I-T``/``M-T`` continues an open span of type T, else starts one.
- ``E-T``/``L-T`` ends an open span of type T, else is a one-token span.
- ``O`` (or any tag without a type) closes the open span.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

BEGIN, INSIDE, END, SINGLE = "B", "I", "E", "S"
_PREFIX_ROLE = {"B": BEGIN, "I": INSIDE, "M": INSIDE, "E": END, "L": END, "S": SINGLE, "U": SINGLE}


@dataclass(frozen=True)
class TagSpan:
    """A decoded span over token positions: `start` inclusive, `end` exclusive."""

    type: str
    start: int
    end: int


def split_tag(tag: str) -> tuple[str, str] | None:
    """``"B-PER"`` -> ``("B", "PER")``; ``None`` for ``O`` or anything without a type."""
    if len(tag) < 3 or tag[1] not in "-_":
        return None
    role = _PREFIX_ROLE.get(tag[0].upper())
    if role is None:
        return None
    return role, tag[2:]


def tag_scheme(labels: Iterable[str]) -> str:
    """Name the scheme a label set uses: ``"BMES"``, ``"BIOES"`` or ``"BIO"``."""
    prefixes = {tag[0].upper() for tag in labels if split_tag(tag)}
    if "M" in prefixes:
        return "BMES"
    if prefixes & {"E", "S", "L", "U"}:
        return "BIOES"
    return "BIO"


def entity_types(labels: Iterable[str]) -> list[str]:
    """The entity types a label set names, sorted (``["LOC", "ORG", "PER"]``)."""
    return sorted({parsed[1] for parsed in map(split_tag, labels) if parsed})


def decode_spans(tags: Sequence[str]) -> list[TagSpan]:
    """Spans of the tag sequence, in order, never overlapping."""
    spans: list[TagSpan] = []
    open_type: str | None = None
    open_start = 0
    for position, tag in enumerate(tags):
        parsed = split_tag(tag)
        if parsed is None:
            if open_type is not None:
                spans.append(TagSpan(open_type, open_start, position))
                open_type = None
            continue
        role, entity_type = parsed
        continues = open_type == entity_type and role in (INSIDE, END)
        if open_type is not None and not continues:
            spans.append(TagSpan(open_type, open_start, position))
            open_type = None
        if role == SINGLE or (role == END and not continues):
            spans.append(TagSpan(entity_type, position, position + 1))
        elif role == END:
            spans.append(TagSpan(entity_type, open_start, position + 1))
            open_type = None
        elif open_type is None:
            open_type, open_start = entity_type, position
    if open_type is not None:
        spans.append(TagSpan(open_type, open_start, len(tags)))
    return spans
