"""What every data reader produces: a text with its entity spans, and where it came from (for error messages)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from raner_pool.errors import RaNERError


class DataError(RaNERError):
    """A training file cannot be used; the message names the file and line (or task id) and what is wrong."""


@dataclass(frozen=True)
class Span:
    """One labelled entity: `start` inclusive, `end` exclusive, in code points of the text."""

    start: int
    end: int
    type: str


@dataclass(frozen=True)
class Example:
    """One annotated text; `where` is "file:line" (or "file: task N") for messages about it."""

    text: str
    spans: tuple[Span, ...]
    where: str

    @property
    def types(self) -> set[str]:
        return {span.type for span in self.spans}


def checked_example(text: object, spans: Sequence[Span], where: str, quoted: Sequence[str | None] = ()) -> Example:
    """An `Example` once its spans are in range, non-empty, typed and non-overlapping, and each `quoted` text
    (where the format carries one) equals the text at its offsets; else `DataError` naming `where`."""
    if not isinstance(text, str):
        raise DataError(f"{where}: 'text' must be a string, not {type(text).__name__}")
    for index, span in enumerate(spans):
        if not (isinstance(span.start, int) and isinstance(span.end, int)) or isinstance(span.start, bool):
            raise DataError(f"{where}: entity {index + 1} has offsets {span.start!r}, {span.end!r}: not integers")
        if not 0 <= span.start < span.end <= len(text):
            raise DataError(f"{where}: entity {index + 1} ({span.type}) has offsets {span.start}-{span.end}, out of "
                            f"range for a text of {len(text)} characters (end is exclusive and must be > start)")
        if not isinstance(span.type, str) or not span.type.strip() or any(c.isspace() for c in span.type):
            raise DataError(f"{where}: entity {index + 1} has type {span.type!r}: use a non-empty word like PRODUCT")
        given = quoted[index] if index < len(quoted) else None
        if given is not None and given != text[span.start : span.end]:
            raise DataError(f"{where}: entity {index + 1} ({span.type}) says its text is {given!r} but offsets "
                            f"{span.start}-{span.end} hold {text[span.start:span.end]!r}")
    ordered = sorted(spans, key=lambda s: (s.start, s.end))
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end:
            raise DataError(f"{where}: entities overlap: {before.type} {before.start}-{before.end} "
                            f"({text[before.start:before.end]!r}) and {after.type} {after.start}-{after.end} "
                            f"({text[after.start:after.end]!r}); a character takes one type")
    return Example(text, tuple(ordered), where)
