"""Compare the engine's entities with the ModelScope pipeline's on the same model dir."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from raner_pool.engine import PIPELINE_READING
from raner_pool.pool import RaNERModelPool

EntityKey = tuple[str, int, int, str]


@dataclass
class ParityReport:
    """How many texts got identical entities from both, and which did not."""

    compared: int = 0
    identical: int = 0
    pipeline_failed: int = 0
    mismatches: list[tuple[str, list[EntityKey], list[EntityKey]]] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        return self.identical / self.compared if self.compared else 1.0


def compare_with_pipeline(model_dir: Path, texts: Sequence[str], pool: RaNERModelPool | None = None) -> ParityReport:
    """Run both on every text; texts on which the pipeline itself raises are counted, not compared. Compare a
    pool that reads texts as the pipeline does (`engine.PIPELINE_READING`, the default here): cleaned edges and
    sentence windows are deliberate differences (raner_pool.edges, raner_pool.windows)."""
    try:
        from modelscope.pipelines import pipeline
    except ModuleNotFoundError as error:  # modelscope.pipelines imports `datasets`, which serving never needs
        raise ModuleNotFoundError(
            f"comparing with the ModelScope pipeline needs {error.name!r}: pip install 'raner-pool[pipeline]'"
        ) from error

    reference = pipeline("named-entity-recognition", model=str(model_dir), device="cpu")
    pool = pool or RaNERModelPool(model_dir, pool_size=1, engine_config=PIPELINE_READING, extra_types=())
    report = ParityReport()
    for text, ours in zip(texts, pool.predict_batch(list(texts)), strict=True):
        try:
            theirs = reference(text)["output"]
        except Exception:
            report.pipeline_failed += 1
            continue
        report.compared += 1
        theirs_keys = [(d["type"], int(d["start"]), int(d["end"]), d["span"]) for d in theirs]
        ours_keys = [(e.type, e.start, e.end, e.span) for e in ours]
        if theirs_keys == ours_keys:  # `prob` differs by design: see Entity
            report.identical += 1
        else:
            report.mismatches.append((text, theirs_keys, ours_keys))
    return report
