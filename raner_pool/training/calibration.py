"""A fitted `prob` temperature for a trained model: the one (of a grid) whose entity probabilities best predict
which entities on the dev split are right (lowest log loss). The decoded entities do not change, only `prob`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from raner_pool.engine import NEREngine
from raner_pool.loading import load_backend
from raner_pool.training.examples import Example

TEMPERATURES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0)
MIN_ENTITIES = 20
"""Fewer predicted entities than this on the dev split fit nothing: the base's temperature is kept."""


def scored_entities(engine: NEREngine, examples: Sequence[Example], types: set[str]) -> list[tuple[float, bool]]:
    """(prob, exactly right) of every predicted entity of `types`."""
    scored: list[tuple[float, bool]] = []
    for example, found in zip(examples, engine.predict_batch([e.text for e in examples]), strict=True):
        gold = {(s.type, s.start, s.end) for s in example.spans}
        scored.extend((e.prob, (e.type, e.start, e.end) in gold) for e in found if e.type in types)
    return scored


def log_loss(scored: Sequence[tuple[float, bool]]) -> float:
    eps = 1e-6
    return -sum(math.log(max(p, eps)) if right else math.log(max(1 - p, eps)) for p, right in scored) / len(scored)


def fit_temperature(model_dir: Path, dev: Sequence[Example], types: set[str], fallback: float) -> float:
    """The temperature for `model_dir`'s `prob`, fitted on `dev`; `fallback` when dev has too few entities."""
    engine = NEREngine(load_backend(model_dir, "modelscope"))
    if len(scored_entities(engine, dev, types)) < MIN_ENTITIES:
        return fallback
    fits = []
    for temperature in TEMPERATURES:
        engine.temperature = temperature
        fits.append((log_loss(scored_entities(engine, dev, types)), temperature))
    return min(fits)[1]
