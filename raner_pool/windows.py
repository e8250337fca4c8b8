"""Split texts longer than the model's positions into overlapping windows.

Each window is scored on its own; every character then takes its tag from
the one window that *owns* it: overlaps are cut in the middle, so each owned
character has at least half the overlap of context on both sides. Spans are
decoded once over the stitched tags, so an entity on a window boundary is
neither cut nor reported twice.

`plan_sentence_windows` first cuts a text into sentences and scores each on its own, so a neighbouring sentence
never changes what a sentence yields: a text of several sentences reads exactly as its sentences one by one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from raner_pool.edges import SENTENCE_ENDS


@dataclass(frozen=True)
class Window:
    """Characters ``[start, end)`` are scored together; ``[own_start, own_end)`` take their tags from here."""

    start: int
    end: int
    own_start: int
    own_end: int


def plan_windows(token_counts: Sequence[int], max_tokens: int, overlap: int) -> list[Window]:
    """Cover every character with windows of at most `max_tokens` sub-tokens, overlapping by `overlap` chars.

    `token_counts[i]` is the number of sub-tokens of character i; each must be
    at most `max_tokens`.
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    n = len(token_counts)
    if sum(token_counts) <= max_tokens:
        return [Window(0, n, 0, n)]
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end, used = start, 0
        while end < n and used + token_counts[end] <= max_tokens:
            used += token_counts[end]
            end += 1
        spans.append((start, end))
        if end >= n:
            break
        start = max(start + 1, end - overlap)
    windows = []
    for i, (start, end) in enumerate(spans):
        own_start = 0 if i == 0 else (start + spans[i - 1][1]) // 2
        own_end = n if i == len(spans) - 1 else (spans[i + 1][0] + end) // 2
        windows.append(Window(start, end, own_start, own_end))
    return windows


def sentence_bounds(text: str) -> list[int]:
    """Where each sentence after the first starts: after 。！？ or a line break, and after the closing quotes,
    brackets and whitespace that follow it (`“好。”他说` cuts before 他)."""
    cuts = []
    i = 0
    while i < len(text):
        if text[i] in SENTENCE_ENDS:
            i += 1
            while i < len(text) and (
                text[i] in SENTENCE_ENDS or text[i].isspace() or unicodedata.category(text[i]) in ("Pe", "Pf")
            ):
                i += 1
            if i < len(text):
                cuts.append(i)
        else:
            i += 1
    return cuts


def plan_sentence_windows(text: str, token_counts: Sequence[int], max_tokens: int, overlap: int) -> list[Window]:
    """`plan_windows` within each sentence of `text`: no window spans a sentence end. A stretch without tokens
    (leading whitespace) joins the sentence after it."""
    windows: list[Window] = []
    start = 0
    for end in [*sentence_bounds(text), len(text)]:
        if end < len(text) and not any(token_counts[start:end]):
            continue
        for w in plan_windows(token_counts[start:end], max_tokens, overlap):
            windows.append(Window(w.start + start, w.end + start, w.own_start + start, w.own_end + start))
        start = end
    return windows
