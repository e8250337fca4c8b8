"""What may stand at an entity's edge: never whitespace, a symbol or punctuation, and no entity crosses a
sentence end.

A model tags characters, and a small one sometimes lets a tag run onto a neighbouring emoji, star or full stop
(`😀阿里巴巴集团`, `★马`). Names do not begin or end with such characters (Unicode categories Z*, S*, P*), so they
are trimmed off the edges; inside a name they stay (the middle dot of 克里斯·保罗), and so do brackets and quotes
that open and close within the span (`《人民日报》`). A span is also cut at every sentence end (。！？ and line
breaks): the pieces are entities of their own, trimmed the same way, and pieces left empty are dropped. This is
one of the two places where we deliberately differ from the ModelScope pipeline (the other is `prob`).
"""

from __future__ import annotations

import unicodedata

SENTENCE_ENDS = frozenset("。！？!?\n\r\u2028\u2029")
PAIRS = {"(": ")", "[": "]", "{": "}", "（": "）", "［": "］", "｛": "｝", "【": "】", "〔": "〕", "《": "》",
         "〈": "〉", "「": "」", "『": "』", "“": "”", "‘": "’", '"': '"', "'": "'", "＂": "＂"}
CLOSERS = {closer: opener for opener, closer in PAIRS.items()}


def is_edge_noise(char: str) -> bool:
    """Whitespace, a symbol (S*: emoji, ★, ¥) or punctuation (P*): never the first or last character of a name."""
    return char.isspace() or unicodedata.category(char)[0] in "SPZ"


def clean_span(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The parts of text[start:end] that can be an entity: cut at sentence ends, edges trimmed; maybe none."""
    parts: list[tuple[int, int]] = []
    piece_start = start
    for i in range(start, end + 1):
        if i == end or text[i] in SENTENCE_ENDS:
            trimmed = trim_edges(text, piece_start, i)
            if trimmed is not None:
                parts.append(trimmed)
            piece_start = i + 1
    return parts


def strip_whitespace(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """text[start:end] without whitespace at its edges (what ModelScope-compatible spans get); maybe nothing."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return [(start, end)] if start < end else []


def trim_edges(text: str, start: int, end: int) -> tuple[int, int] | None:
    """text[start:end] without noise at its edges, keeping an opening bracket or quote whose closer is inside
    the span (and the other way round); None when nothing is left."""
    while start < end and is_edge_noise(text[start]):
        closer = PAIRS.get(text[start])
        if closer is not None and closer in text[start + 1 : end]:
            break
        start += 1
    while end > start and is_edge_noise(text[end - 1]):
        opener = CLOSERS.get(text[end - 1])
        if opener is not None and opener in text[start : end - 1]:
            break
        end -= 1
    return (start, end) if start < end else None
