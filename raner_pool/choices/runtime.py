"""backend="auto": load every runtime and number format this CPU can run, time each on the same texts, and keep
the fastest whose entities agree with float32 PyTorch (the reference: parity with the ModelScope pipeline).

What is fastest depends on the model and the CPU (INT8 wins on a 12 x 768 encoder, by less on a small one;
bfloat16 only where the CPU multiplies it natively), so it is measured, not assumed. Where the two fastest come
within RUNOFF_WITHIN of each other, one timing each is a coin toss, so they are timed again in turns.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raner_pool.backends import Backend, load_runtime
from raner_pool.choices.batch_budget import ServedCallers, best_time, fastest_in_turns, timed_label
from raner_pool.engine import NEREngine
from raner_pool.entities import Entity
from raner_pool.errors import RaNERError

log = logging.getLogger(__name__)

MIN_AGREEMENT = 0.98
"""Entity F1 against the float32 reference on the probe texts below which a faster candidate is refused."""
RUNOFF_WITHIN = 0.9
"""A runner-up this close to the fastest (a fraction of its speed) is timed again against it, the two in turns:
on Zen 4, PyTorch and OpenVINO bfloat16 serve the base shape within 5% of each other, and one timing of each
chose either."""
RUNOFF_S = 1.0
PROBE_TEXTS = (
    "阿里巴巴集团创始人马云在杭州出席了技术峰会。",
    "国务院总理李克强在北京人民大会堂会见了德国总理默克尔。",
    "中国科学院院士王选在北京大学作了关于汉字激光照排的报告。",
    "上海市政府和复旦大学联合举办了长江三角洲经济论坛。",
    "记者从广东省教育厅获悉，深圳将新建三所高等院校。",
    "联合国秘书长古特雷斯抵达日内瓦参加人权理事会会议。",
    "张艺谋执导的新片在威尼斯电影节获得好评。",
    "新华社记者刘畅报道，长江水位连日上涨，武汉进入防汛状态。",
    "清华大学与微软亚洲研究院签署了人工智能合作协议。",
    "据说，刘德华平时生活在香港，周末常去澳门看望朋友。",
    "中国人民银行宣布下调存款准备金率，沪深股市应声上涨。",
    "来自四川成都的运动员王楠在全运会上夺得女子单打冠军。",
    "世界卫生组织专家组抵达云南，调查当地的疫情。",
    "铁道部部长傅志寰视察了京九铁路沿线的江西段。",
    "美国总统克林顿在白宫会见了以色列总理内塔尼亚胡。",
    "南京市鼓楼区人民法院公开审理了这起经济纠纷案。",
)


@dataclass(frozen=True)
class Candidate:
    """One runtime and number format tried by backend="auto", and what warm-up measured of it."""

    backend: str
    dtype: str
    texts_per_s: float | None = None
    agreement: float | None = None
    """Entity F1 against the float32 reference on the probe texts."""
    refused: str | None = None
    """Why it could not serve: not supported here, failed to load, or answers that differ too much."""

    @property
    def name(self) -> str:
        return self.backend if self.dtype == "float32" else f"{self.backend} {self.dtype}"


@dataclass(frozen=True)
class BackendChoice:
    """What backend="auto" chose, why, and every candidate's measurements."""

    backend: str
    dtype: str
    reason: str
    candidates: tuple[Candidate, ...]
    timed_at: float = 0.0
    """When the candidates were timed (Unix time)."""
    reused: bool = False
    """Whether this choice was timed at an earlier start on this machine and read back (raner_pool.choices.store)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "backend": self.backend,
            "dtype": self.dtype,
            "reason": self.reason,
            **timed_label(self.timed_at, self.reused),
            "candidates": [
                {"backend": c.backend, "dtype": c.dtype,
                 "texts_per_s": None if c.texts_per_s is None else round(c.texts_per_s, 1),
                 "agreement": None if c.agreement is None else round(c.agreement, 4), "refused": c.refused}
                for c in self.candidates
            ],
        }

    def stored(self) -> dict[str, Any]:
        """The choice as the store keeps it (full precision; read back by `from_stored`)."""
        return {**dataclasses.asdict(self), "reused": False}

    @classmethod
    def from_stored(cls, value: dict[str, Any]) -> BackendChoice:
        """A choice read back from the store, marked as reused."""
        candidates = tuple(Candidate(**c) for c in value["candidates"])
        return cls(value["backend"], value["dtype"], value["reason"], candidates, float(value["timed_at"]),
                   reused=True)


def agreement(reference: list[list[Entity]], candidate: list[list[Entity]]) -> float:
    """Entity-level F1 of `candidate` against `reference` (exact type and extent); 1.0 when both find nothing."""
    expected = {(i, e.type, e.start, e.end) for i, found in enumerate(reference) for e in found}
    got = {(i, e.type, e.start, e.end) for i, found in enumerate(candidate) for e in found}
    if not expected and not got:
        return 1.0
    return 2 * len(expected & got) / (len(expected) + len(got))


def candidate_formats(model_dir: Path) -> list[tuple[str, str]]:
    """(backend, dtype) pairs worth trying for this dir, the float32 reference first."""
    if not (model_dir / "configuration.json").is_file():  # a Hugging Face dir: transformers only
        return [("transformers", "float32"), ("transformers", "bfloat16")]
    return [("modelscope", "float32"), ("modelscope", "bfloat16"), ("onnx", "float32"), ("onnx-int8", "float32"),
            ("openvino", "float32"), ("openvino", "bfloat16")]


def choose_runtime(
    model_dir: Path, device: str = "cpu", dtype: str = "float32", min_agreement: float = MIN_AGREEMENT
) -> tuple[Backend, BackendChoice]:
    """Load, time and check every candidate; return the fastest that agrees with the reference, and the choice
    saying why. Only the chosen one stays loaded. dtype="float32" leaves the number format free; another pins it
    (the candidates are then the runtimes that compute in it)."""
    timed_at = time.time()
    probe = list(PROBE_TEXTS)
    formats = candidate_formats(model_dir)
    if dtype != "float32":
        formats = [f for f in formats if f[1] == dtype]
    if device != "cpu":  # ONNX Runtime's GPU provider is not what we measure or ship; OpenVINO's is not loaded
        formats = [f for f in formats if not f[0].startswith(("onnx", "openvino"))]
    results: list[Candidate] = []
    contenders: list[tuple[int, Backend]] = []
    """The two fastest candidates that agree (index in `results`, loaded runtime), fastest first."""
    reference: list[list[Entity]] | None = None
    for backend_name, dtype in formats:
        try:
            backend = load_runtime(model_dir, backend_name, device, dtype)
        except Exception as error:  # e.g. bfloat16 on a CPU without it; the reference itself must load
            if reference is None:
                raise
            reason = str(error) if isinstance(error, RaNERError) else f"failed to load: {error!r}"
            results.append(Candidate(backend_name, dtype, refused=reason))
            continue
        answers, seconds = _measure(backend, probe)
        if reference is None:
            reference = answers
        score = agreement(reference, answers)
        refused = None if score >= min_agreement else f"agreement {score:.3f} with float32 is below {min_agreement}"
        results.append(Candidate(backend_name, dtype, len(probe) / seconds, score, refused))
        if refused is None:
            contenders.append((len(results) - 1, backend))
            contenders.sort(key=lambda c: -(results[c[0]].texts_per_s or 0.0))
            del contenders[2:]  # a candidate not kept frees its weights before the next loads
        del backend
        gc.collect()
    assert contenders  # the reference always qualifies
    runoff = _runoff(contenders, results, probe)
    index, chosen = max(contenders, key=lambda c: results[c[0]].texts_per_s or 0.0)
    winner = results[index]
    del contenders
    assert winner.texts_per_s is not None and results[0].texts_per_s is not None
    reason = (f"{winner.name}: fastest of {', '.join(c.name for c in results)} at "
              f"{winner.texts_per_s:.0f} texts/s ({winner.texts_per_s / results[0].texts_per_s:.2f}x float32 "
              f"{results[0].backend}), entities {winner.agreement:.1%} in agreement with it")
    # a refused candidate with a speed was refused for its answers: name it, or the list reads as if it were slower
    faster = [f"{c.name} at {c.texts_per_s:.0f} texts/s, {c.refused}" for c in results
              if c.refused and c.texts_per_s is not None and c.texts_per_s > winner.texts_per_s]
    if faster:
        reason += "; faster but not served: " + "; ".join(faster)
    if runoff:
        reason += f"; {runoff}"
    choice = BackendChoice(winner.backend, winner.dtype, reason, tuple(results), timed_at)
    log.info("backend for %s: %s", model_dir, reason)
    return chosen, choice


SERVED_BATCH = 4
"""Texts per batch when timing a candidate: about what warm-up's batch budget keeps for sentences under load."""


def _runoff(contenders: list[tuple[int, Backend]], results: list[Candidate], probe: list[str]) -> str:
    """Time the two fastest again, in turns, where the runner-up came within RUNOFF_WITHIN of the fastest, and
    put the speeds so measured in `results`; what was done, for the reason ("" where nothing was)."""
    if len(contenders) < 2:
        return ""
    (first, first_backend), (second, second_backend) = contenders
    speeds = results[first].texts_per_s or 0.0, results[second].texts_per_s or 0.0
    if speeds[1] < RUNOFF_WITHIN * speeds[0]:
        return ""
    with ServedCallers() as callers:
        runs = {first: _served(first_backend, probe, callers), second: _served(second_backend, probe, callers)}
        fastest = fastest_in_turns(runs, budget_s=RUNOFF_S)
    for index in runs:
        results[index] = dataclasses.replace(results[index], texts_per_s=len(probe) * callers.count / fastest[index])
    return (f"{results[first].name} ({speeds[0]:.0f} texts/s) and {results[second].name} ({speeds[1]:.0f}) "
            f"timed again in turns")


def _served(backend: Backend, texts: list[str], callers: ServedCallers) -> Callable[[], None]:
    """One timed run: every caller at once serving all of `texts` in batches of SERVED_BATCH."""
    engine = NEREngine(backend)
    batches = [texts[i:i + SERVED_BATCH] for i in range(0, len(texts), SERVED_BATCH)]

    def serve_all() -> None:
        for batch in batches:
            engine.predict_batch(batch)

    return lambda: callers.run(serve_all)


def _measure(backend: Backend, texts: list[str]) -> tuple[list[list[Entity]], float]:
    """The entities `backend` finds in `texts`, and its fastest time for them served as a pool serves them: as
    many callers at once as instances fit on the cores (each on this process's threads per pass), each running
    all of `texts` in batches of SERVED_BATCH. A runtime that holds the GIL or shares its threads badly shows it
    here, as it would under load. The time is per `texts`: the callers' wall time divided by their number."""
    answers = NEREngine(backend).predict_batch(texts)
    with ServedCallers() as callers:
        return answers, best_time(_served(backend, texts, callers)) / callers.count
