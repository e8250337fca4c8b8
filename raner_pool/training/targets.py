"""From examples to what a training step reads: windows the model's positions hold, token ids as the engine
makes them, and per character the tags the loss allows, with the frozen base model's view where the data is
silent (raner_pool.training.loss explains the two ways it is used).

A data set is complete for the types it labels and silent on the rest: where it leaves a character `O` and the
base model finds an entity of a base type the data does not label, the target follows the base model.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from raner_pool.engine import NEREngine
from raner_pool.training.examples import Example, Span
from raner_pool.training.model import TrainableModel, span_tags

KEEP_OLD = ("pseudo", "distill", "forget")
"""How the old types are kept: the base model's predictions as targets, or distillation of its tag distribution
(with partial labels where it finds an entity), or not at all."""
SENTENCE_ENDS = "。！？；!?;\n"


@dataclass
class Item:
    """One training window: its text and gold spans (offsets within the window) and the step's inputs."""

    text: str
    gold: tuple[Span, ...]
    where: str
    token_ids: list[int]
    first_token: list[int]
    """Index in `token_ids` of each character's first sub-token (the one the model labels)."""
    base_spans: tuple[Span, ...] = ()
    """The base model's entities of the types the data does not label (its view where the data is silent)."""
    allowed: np.ndarray | None = None
    """(characters, labels) bool: the tags the loss accepts at each character."""
    teacher_probs: np.ndarray | None = None
    """(characters, base labels): the base model's tag distribution, for distillation."""


def windows(example: Example, max_chars: int) -> list[tuple[str, tuple[Span, ...], str]]:
    """`example` cut into pieces of at most `max_chars`, preferably after a sentence end, never inside a span."""
    text, spans = example.text, example.spans
    inside = {i for s in spans for i in range(s.start + 1, s.end)}
    pieces, start = [], 0
    while len(text) - start > max_chars:
        cuts = [i for i in range(start + max_chars, start, -1) if i not in inside]
        sentence_cuts = [i for i in cuts if text[i - 1] in SENTENCE_ENDS]
        cut = (sentence_cuts or cuts or [start + max_chars])[0]
        pieces.append((start, cut))
        start = cut
    pieces.append((start, len(text)))
    out = []
    for a, b in pieces:
        if text[a:b].strip():
            kept = tuple(Span(s.start - a, s.end - a, s.type) for s in spans if a <= s.start and s.end <= b)
            out.append((text[a:b], kept, example.where if (a, b) == (0, len(text)) else f"{example.where}[{a}:{b}]"))
    return out


def build_items(examples: Sequence[Example], model: TrainableModel) -> list[Item]:
    """Windows of every example, tokenised as the engine tokenises (each code point on its own)."""
    items = []
    for example in examples:
        for text, gold, where in windows(example, model.max_chars):
            token_ids: list[int] = []
            first: list[int] = []
            for ids in model.tokenizer.encode(text):
                first.append(len(token_ids))
                token_ids.extend(ids)
            items.append(Item(text, gold, where, token_ids, first))
    return items


def add_base_view(items: Sequence[Item], engine: NEREngine, base_labels: Sequence[str], kept_types: set[str],
                  with_probs: bool, batch: int = 64) -> None:
    """Run the frozen base model over the items: its entities of `kept_types` that no gold span overlaps, and
    (for distillation) its tag distribution per character."""
    for offset in range(0, len(items), batch):
        chunk = items[offset : offset + batch]
        results = engine.classify_tokens([item.text for item in chunk])
        for item, result in zip(chunk, results, strict=True):
            taken = {i for s in item.gold for i in range(s.start, s.end)}
            item.base_spans = tuple(
                Span(e.start, e.end, e.type) for e in result.entities
                if e.type in kept_types and not taken.intersection(range(e.start, e.end))
            )
            if with_probs:
                rows = [1 + i for i in item.first_token]  # row 0 is [CLS]
                item.teacher_probs = result.token_probs[rows][:, : len(base_labels)].astype(np.float32)


def set_targets(items: Sequence[Item], labels: Sequence[str], prefixes: str, keep_old: str) -> None:
    """Each item's allowed tags: the gold spans' tags and `O` elsewhere; with "pseudo" the base model's kept
    entities as if gold; with "distill" either `O` or the base model's tag there."""
    label_id = {label: i for i, label in enumerate(labels)}
    for item in items:
        n = len(item.text)
        pseudo = item.base_spans if keep_old == "pseudo" else ()
        tags = span_tags(n, sorted((*item.gold, *pseudo), key=lambda s: s.start), prefixes)
        allowed = np.zeros((n, len(labels)), dtype=bool)
        allowed[np.arange(n), [label_id[t] for t in tags]] = True
        if keep_old == "distill":  # where the base finds an entity (never on a gold span): O or its tag
            base_tags = span_tags(n, item.base_spans, prefixes)
            for span in item.base_spans:
                for position in range(span.start, span.end):
                    allowed[position, label_id[base_tags[position]]] = True
        item.allowed = allowed


def plan_batches(items: Sequence[Item], max_items: int, max_tokens: int, rng: random.Random) -> list[list[int]]:
    """Item indices grouped by similar length under a padded-token budget, the batches in random order."""
    order = sorted(range(len(items)), key=lambda i: (len(items[i].token_ids), rng.random()))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = len(items[i].token_ids) + 2
        if current and (len(current) >= max_items or longest * (len(current) + 1) > max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


@dataclass
class Batch:
    """Padded tensors of a batch of items."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    char_rows: torch.Tensor
    """(batch, characters): the token row of each character's emissions ([CLS] is row 0)."""
    char_mask: torch.Tensor
    allowed: torch.Tensor
    teacher_probs: torch.Tensor | None
    silent: torch.Tensor
    """(batch, characters) bool: characters outside every gold span (where distillation applies)."""

    def to(self, device: torch.device) -> Batch:
        move = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in vars(self).items()}
        return Batch(**move)


def collate(items: Sequence[Item], cls_id: int, sep_id: int, pad_id: int, n_labels: int) -> Batch:
    tokens = max(len(item.token_ids) for item in items) + 2
    chars = max(len(item.text) for item in items)
    size = len(items)
    input_ids = torch.full((size, tokens), pad_id, dtype=torch.long)
    attention = torch.zeros((size, tokens), dtype=torch.long)
    char_rows = torch.zeros((size, chars), dtype=torch.long)
    char_mask = torch.zeros((size, chars), dtype=torch.bool)
    allowed = torch.ones((size, chars, n_labels), dtype=torch.bool)
    silent = torch.zeros((size, chars), dtype=torch.bool)
    with_probs = items[0].teacher_probs is not None
    teacher = torch.zeros((size, chars, items[0].teacher_probs.shape[1])) if with_probs else None  # type: ignore
    for row, item in enumerate(items):
        n, m = len(item.text), len(item.token_ids)
        input_ids[row, : m + 2] = torch.tensor([cls_id, *item.token_ids, sep_id])
        attention[row, : m + 2] = 1
        char_rows[row, :n] = torch.tensor(item.first_token) + 1
        char_mask[row, :n] = True
        assert item.allowed is not None
        allowed[row, :n] = torch.from_numpy(item.allowed)
        taken = {i for s in item.gold for i in range(s.start, s.end)}
        silent[row, :n] = torch.tensor([i not in taken for i in range(n)])
        if teacher is not None and item.teacher_probs is not None:
            teacher[row, :n] = torch.from_numpy(item.teacher_probs)
    return Batch(input_ids, attention, char_rows, char_mask, allowed, teacher, silent)
