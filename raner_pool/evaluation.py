"""Entity-level exact-match precision, recall and F1 (the CoNLL/MSRA convention)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raner_pool.entities import Entity
from raner_pool.tagging import decode_spans

SpanKey = tuple[str, int, int]
MSRA_TYPES = ("PER", "LOC", "ORG")


@dataclass(frozen=True)
class Score:
    """Precision, recall and F1 for one entity type (or ``"ALL"``), with the counts behind them."""

    type: str
    true_positives: int
    predicted: int
    gold: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def score_spans(
    gold: Iterable[Iterable[SpanKey]], predicted: Iterable[Iterable[SpanKey]]
) -> dict[str, Score]:
    """Score per type and ``"ALL"``: a prediction counts only if type, start and end all match."""
    hits: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    for gold_spans, predicted_spans in zip(gold, predicted, strict=True):
        gold_set, pred_set = set(gold_spans), set(predicted_spans)
        for kind, counter in ((gold_set, n_gold), (pred_set, n_pred), (gold_set & pred_set, hits)):
            for span in kind:
                counter[span[0]] += 1
                counter["ALL"] += 1
    types = [*sorted((set(n_gold) | set(n_pred)) - {"ALL"}), "ALL"]
    return {t: Score(t, hits[t], n_pred[t], n_gold[t]) for t in types}


def format_scores(scores: dict[str, Score]) -> str:
    """A Markdown table of the scores, ready to paste into README."""
    rows = ["| type | precision | recall | F1 | gold | predicted |", "| --- | --- | --- | --- | --- | --- |"]
    for s in scores.values():
        rows.append(
            f"| {s.type} | {s.precision:.4f} | {s.recall:.4f} | {s.f1:.4f} | {s.gold} | {s.predicted} |"
        )
    return "\n".join(rows)


def evaluate_on_msra(
    predict_batch: Callable[[list[str]], list[list[Entity]]],
    limit: int | None = None,
    chunk_size: int = 256,
) -> dict[str, Score]:
    """Score a predictor on MSRA test (the first `limit` sentences, or all 5,000), on MSRA's types only (the
    extra types a pool adds, TIME and the others, are not annotated there)."""
    from raner_pool.corpus import load_msra

    sentences = load_msra("test", limit)
    gold = [[(s.type, s.start, s.end) for s in decode_spans(sentence.tags)] for sentence in sentences]
    predicted: list[list[SpanKey]] = []
    for start in range(0, len(sentences), chunk_size):
        texts = [s.text for s in sentences[start : start + chunk_size]]
        predicted.extend([(e.type, e.start, e.end) for e in entities if e.type in MSRA_TYPES]
                         for entities in predict_batch(texts))
    return score_spans(gold, predicted)


@dataclass(frozen=True)
class ValueScore:
    """Of the entities of one type whose span matched the gold one and whose gold value is scored, how many had
    the right normalised value."""

    type: str
    right: int
    scored: int

    @property
    def accuracy(self) -> float:
        return self.right / self.scored if self.scored else 0.0


def evaluate_extra_types(
    predict_batch: Callable[[list[str]], list[list[Entity]]], path: Path, types: Sequence[str]
) -> tuple[dict[str, Score], dict[str, ValueScore]]:
    """Exact-match scores of `types` on a JSONL gold file ({"text", "entities": [{type, start, end, value}]}), and
    how often a matched MONEY, PERCENT or absolute TIME (gold value not null) has the gold value."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    found = predict_batch([r["text"] for r in records])
    gold = [[(e["type"], e["start"], e["end"]) for e in r["entities"] if e["type"] in types] for r in records]
    predicted = [[(e.type, e.start, e.end) for e in entities if e.type in types] for entities in found]
    right: Counter[str] = Counter()
    scored: Counter[str] = Counter()
    for record, entities in zip(records, found, strict=True):
        ours = {(e.type, e.start, e.end): e.value for e in entities}
        for entity in record["entities"]:
            key = (entity["type"], entity["start"], entity["end"])
            if entity["type"] in types and entity.get("value") is not None and key in ours:
                scored[entity["type"]] += 1
                right[entity["type"]] += same_value(entity["type"], entity["value"], ours[key])
    values = {t: ValueScore(t, right[t], scored[t]) for t in types if scored[t]}
    return score_spans(gold, predicted), values


def same_value(kind: str, gold: dict[str, Any], ours: dict[str, Any] | None) -> bool:
    """Whether our normalised value says what the gold one does (TIME: the same first and last second, zone aside)."""
    if ours is None:
        return False
    if kind == "TIME":
        return all(str(ours.get(edge, ""))[:19] == gold[edge] for edge in ("start", "end"))
    if kind == "PERCENT":
        return abs(float(ours["fraction"]) - float(gold["fraction"])) < 1e-9 and ours.get("approx") == gold["approx"]
    return all(ours.get(field) == gold[field] for field in gold)
