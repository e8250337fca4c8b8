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


def decode_spans_like_modelscope(tags: Sequence[str]) -> list[TagSpan]:
    """Spans exactly as ModelScope's token-classification pipeline chunks them, quirks included.

    Only the first letter of a tag counts: B/S close the open span and open a new one; I (or E) with no open
    span opens one; I/E/S extend the open span to here, whatever their type; E/S close it. M and O do nothing,
    so ``B M`` is a one-character span, ``M E`` starts at the E, and ``B O E`` spans the O. Serving the same
    model dir, this gives the same entities the pipeline gives.
    """
    spans: list[TagSpan] = []
    open_span: list[str | int] | None = None  # [type, start, end]
    for position, tag in enumerate(tags):
        letter, entity_type = tag[:1], tag[2:]
        if letter in ("B", "S"):
            if open_span is not None:
                spans.append(TagSpan(str(open_span[0]), int(open_span[1]), int(open_span[2])))
            open_span = [entity_type, position, position + 1]
        if letter in ("I", "E") and open_span is None:
            open_span = [entity_type, position, position + 1]
        if letter in ("I", "E", "S") and open_span is not None:
            open_span[2] = position + 1
        if letter in ("E", "S") and open_span is not None:
            spans.append(TagSpan(str(open_span[0]), int(open_span[1]), int(open_span[2])))
            open_span = None
    if open_span is not None:
        spans.append(TagSpan(str(open_span[0]), int(open_span[1]), int(open_span[2])))
    return spans
