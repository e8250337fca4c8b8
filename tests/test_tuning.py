"""Warm-up measurement: the batch budget timed for the loaded model, and backend="auto" choosing what to run.

Figures are never asserted (no timing in tests); what is asserted is how the choice follows from what was
measured, and that pools built on it answer like the reference.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from raner_pool import BatchingConfig, RaNERError, RaNERModelPool
from raner_pool.choices.batch_budget import BATCH_LADDER, TUNING_TEXT_TOKENS, fastest_in_turns, tune_batch_budget
from raner_pool.choices.runtime import PROBE_TEXTS, agreement
from raner_pool.engine import EngineConfig, NEREngine
from raner_pool.entities import Entity
from raner_pool.precision import BF16_CPU_FLAGS, cpu_flags

from .conftest import BREAKING_CHAR


def test_tuned_budget_is_the_fastest_size_within_the_latency_bound(tiny_pool: RaNERModelPool):
    with tiny_pool.checkout() as engine:
        budget = tune_batch_budget(engine, max_latency_factor=4.0)
    sizes = [t.size for t in budget.timings]
    assert sizes == list(BATCH_LADDER[: len(sizes)]) and sizes[0] == 1
    chosen = next(t for t in budget.timings if t.size == budget.max_batch_calls)
    single = budget.timings[0].seconds
    assert chosen.seconds <= 4.0 * single
    within_bound = [t for t in budget.timings if t.seconds <= 4.0 * single]
    assert chosen.texts_per_s >= 0.97 * max(t.texts_per_s for t in within_bound)
    assert budget.max_batch_tokens == budget.max_batch_calls * TUNING_TEXT_TOKENS
    assert f"{budget.max_batch_calls} texts per batch" in budget.reason


def test_runs_timed_in_turns_get_the_same_number_of_tries_each():
    """The least of more tries comes out lower: a run timed alone for a fixed time would be favoured the faster it
    is. In turns (auto's run-off), every run gets as many tries, and a stall of the machine falls on all alike."""
    import time

    order: list[int] = []

    def run(size: int):  # type: ignore[no-untyped-def]
        def timed() -> None:
            order.append(size)
            time.sleep(0.001 * size)
        return timed

    fastest = fastest_in_turns({size: run(size) for size in (1, 2, 4)}, turns=3, budget_s=0.05)
    rounds = len(order) // 3
    assert rounds >= 3 and order == [1, 2, 4] * rounds
    assert list(fastest) == [1, 2, 4] and all(fastest[size] >= 0.001 * size for size in fastest)
    assert fastest[1] < fastest[4]


def test_a_batching_pool_times_its_budget_at_warm_up_and_cuts_forward_passes_to_it(tiny_model_dir: Path):
    with RaNERModelPool(tiny_model_dir, pool_size=2, batching=BatchingConfig(), retune=True) as pool:
        budget = pool.batch_budget
        assert budget is not None and budget.timings and not budget.reused
        with pool.checkout() as engine:
            assert engine.config.max_batch_size == budget.max_batch_calls
            assert engine.config.max_batch_tokens == budget.max_batch_tokens
        texts = [PROBE_TEXTS[i % len(PROBE_TEXTS)] for i in range(50)]
        assert pool.predict_batch(texts) == NEREngine(pool.backend).predict_batch(texts)


def test_a_configured_budget_is_kept_and_an_unmeasurable_model_keeps_the_defaults(
    tiny_model_dir: Path, broken_model_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    config = BatchingConfig(max_batch_tokens=300, max_batch_calls=5)
    with RaNERModelPool(tiny_model_dir, pool_size=1, batching=config) as pool:
        assert pool.batch_budget is not None
        assert (pool.batch_budget.max_batch_calls, pool.batch_budget.max_batch_tokens) == (5, 300)
        assert pool.batch_budget.reason == "configured" and not pool.batch_budget.timings
    monkeypatch.setattr("raner_pool.choices.batch_budget.TUNING_TEXT", BREAKING_CHAR * 60)  # the model raises on it
    with RaNERModelPool(broken_model_dir, pool_size=1, batching=BatchingConfig(), retune=True) as pool:
        assert pool.batch_budget is not None and pool.batch_budget.reason.startswith("defaults: timing failed")
        defaults = EngineConfig()
        assert pool.batch_budget.max_batch_calls == defaults.max_batch_size
        assert pool.predict("马云在杭州") is not None  # the pool still serves what the model can take


def test_a_call_never_waits_for_company_while_another_worker_is_idle(tiny_model_dir: Path):
    config = BatchingConfig(max_wait_ms=60_000)  # a minute: a wait would show as a timeout below
    with RaNERModelPool(tiny_model_dir, pool_size=2, batching=config) as pool:
        for text in PROBE_TEXTS[:5]:
            pool.predict(text, timeout=20)


def entity(start: int, end: int, kind: str = "PER") -> Entity:
    return Entity(kind, start, end, "x" * (end - start), 0.9)


def test_agreement_is_entity_f1_against_the_reference():
    reference = [[entity(0, 2), entity(3, 5, "LOC")], []]
    assert agreement(reference, reference) == 1.0
    assert agreement([[], []], [[], []]) == 1.0
    assert agreement(reference, [[entity(0, 2)], []]) == pytest.approx(2 / 3)
    assert agreement(reference, [[entity(0, 2), entity(3, 5, "ORG")], [entity(0, 1)]]) == pytest.approx(2 / 5)


def test_auto_serves_the_fastest_candidate_that_agrees_and_says_why(tiny_model_dir: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RANER_POOL_CACHE", str(tmp_path))
    with RaNERModelPool(tiny_model_dir, pool_size=1, backend="auto") as pool:
        choice = pool.backend_choice
        assert choice is not None
        names = [(c.backend, c.dtype) for c in choice.candidates]
        assert names == [("modelscope", "float32"), ("modelscope", "bfloat16"), ("onnx", "float32"),
                         ("onnx-int8", "float32"), ("openvino", "float32"), ("openvino", "bfloat16")]
        reference = choice.candidates[0]
        assert reference.agreement == 1.0 and reference.refused is None
        if not cpu_flags() & set(BF16_CPU_FLAGS):
            for bf16 in (c for c in choice.candidates if c.dtype == "bfloat16"):
                assert bf16.refused is not None and "avx512_bf16" in bf16.refused and bf16.texts_per_s is None
        eligible = [c for c in choice.candidates if c.refused is None]
        assert all(c.agreement is not None and c.agreement >= 0.98 for c in eligible)
        for refused in (c for c in choice.candidates if c.texts_per_s is not None and c.refused):
            assert refused.agreement is not None and refused.agreement < 0.98
        fastest = max(eligible, key=lambda c: c.texts_per_s or 0)
        assert (choice.backend, choice.dtype) == (fastest.backend, fastest.dtype)
        assert pool.backend.kind == choice.backend and choice.reason.startswith(fastest.name)
        passed_over = choice.reason.partition("; faster but not served: ")[2]
        for refused in choice.candidates:  # a faster candidate left out for its answers is named, with why
            faster = refused.refused and (refused.texts_per_s or 0) > (fastest.texts_per_s or 0)
            assert (f"{refused.name} at " in passed_over) == bool(faster), choice.reason
        named = RaNERModelPool(tiny_model_dir, pool_size=1, backend=choice.backend, dtype=choice.dtype)
        assert pool.predict_batch(list(PROBE_TEXTS)) == named.predict_batch(list(PROBE_TEXTS))
        named.close()


def test_the_two_fastest_come_close_and_are_timed_again_in_turns(tiny_model_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch):
    """One timing each is a coin toss between two runtimes within 10% of each other: the run-off decides, and the
    speeds it measured are the ones the choice reports."""
    from raner_pool.choices import runtime

    monkeypatch.setenv("RANER_POOL_CACHE", str(tmp_path))
    monkeypatch.setattr(runtime, "RUNOFF_WITHIN", 0.0)  # whatever the first timings, the two fastest run off
    timed_again: list[list[int]] = []

    def runner_up_wins(runs, turns=3, budget_s=1.0):  # type: ignore[no-untyped-def]
        timed_again.append(list(runs))
        first, second = runs
        for run in runs.values():
            run()  # the real served run of each contender
        return {first: 2.0, second: 1.0}

    monkeypatch.setattr(runtime, "fastest_in_turns", runner_up_wins)
    with RaNERModelPool(tiny_model_dir, pool_size=1, backend="auto", retune=True) as pool:
        choice = pool.backend_choice
    assert choice is not None and len(timed_again) == 1
    first, second = (choice.candidates[i] for i in timed_again[0])
    assert (first.texts_per_s or 0) < (second.texts_per_s or 0)
    assert (choice.backend, choice.dtype) == (second.backend, second.dtype)
    assert pool.backend.kind == second.backend and second.refused is None and first.refused is None
    assert f"{first.name} (" in choice.reason and "timed again in turns" in choice.reason
    assert choice.reason.startswith(f"{second.name}: fastest of")


def test_auto_with_a_pinned_number_format_chooses_among_runtimes_of_it(tiny_model_dir: Path):
    if cpu_flags() & set(BF16_CPU_FLAGS):
        with RaNERModelPool(tiny_model_dir, pool_size=1, backend="auto", dtype="bfloat16") as pool:
            assert pool.backend_choice is not None and pool.backend_choice.dtype == "bfloat16"
    else:  # refused as bfloat16 is anywhere on this CPU, with the reason
        with pytest.raises(RaNERError, match="avx512_bf16"):
            RaNERModelPool(tiny_model_dir, pool_size=1, backend="auto", dtype="bfloat16")


def three_instances_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Timings run on 3 callers at once, as on 3 cores at 1 thread per pass."""
    from raner_pool.choices import batch_budget

    monkeypatch.setattr(batch_budget, "concurrent_passes", lambda: 3)


def test_candidates_are_timed_by_as_many_callers_at_once_as_instances_fit(tiny_model_dir: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    """A runtime that serializes callers (the GIL, one shared stream) must show it in its timing, as under load."""
    import threading

    from raner_pool.backends import load_runtime
    from raner_pool.choices import runtime

    three_instances_fit(monkeypatch)
    backend = load_runtime(tiny_model_dir, "modelscope")
    packed = backend.emissions_packed
    batch_sizes: list[int] = []
    callers: set[int] = set()

    def recorded(token_ids, lengths):  # type: ignore[no-untyped-def]
        batch_sizes.append(len(lengths))
        callers.add(threading.get_ident())
        return packed(token_ids, lengths)

    monkeypatch.setattr(backend, "emissions_packed", recorded)
    answers, seconds = runtime._measure(backend, list(PROBE_TEXTS))
    assert len(answers) == len(PROBE_TEXTS) and seconds > 0
    assert batch_sizes[0] == len(PROBE_TEXTS), "the answers compared with the reference come from one batch"
    assert set(batch_sizes[1:]) == {runtime.SERVED_BATCH}
    assert len(callers - {threading.get_ident()}) == 3


def test_the_batch_budget_is_timed_by_as_many_callers_at_once_as_instances_fit(tiny_model_dir: Path,
                                                                               monkeypatch: pytest.MonkeyPatch):
    """Two instances sharing the GIL pay a pass's Python more dearly than one alone: the budget is timed under that."""
    import threading

    from raner_pool.backends import load_runtime

    three_instances_fit(monkeypatch)
    backend = load_runtime(tiny_model_dir, "modelscope")
    packed = backend.emissions_packed
    callers_per_size: dict[int, set[int]] = {}

    def recorded(token_ids, lengths):  # type: ignore[no-untyped-def]
        callers_per_size.setdefault(len(lengths), set()).add(threading.get_ident())
        return packed(token_ids, lengths)

    monkeypatch.setattr(backend, "emissions_packed", recorded)
    budget = tune_batch_budget(NEREngine(backend), max_latency_factor=4.0)
    timed_sizes = [t.size for t in budget.timings]
    assert all(len(callers_per_size[size] - {threading.get_ident()}) == 3 for size in timed_sizes)
    assert "on 3 instances at once" in budget.reason
