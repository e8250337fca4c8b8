"""Timed choices kept between starts: backend="auto" and the batch budget are timed once per model version and
machine, reused by the next pool or server, and timed anew on `retune` or when what they depend on changes."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from raner_pool import BatchingConfig, RaNERModelPool
from raner_pool.choices.runtime import PROBE_TEXTS
from raner_pool.choices.store import ChoiceStore, choice_key

from .server_process import STOP_AT_ONCE, running_server


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache dir no choice was ever timed into (the session's shared one may hold the tiny model's)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("RANER_POOL_CACHE", str(root))
    return root


def auto_pool(model: Path, **kwargs: Any) -> RaNERModelPool:
    return RaNERModelPool(model, pool_size=1, backend="auto", batching=BatchingConfig(), **kwargs)


def test_a_second_pool_reuses_both_choices_and_retune_times_them_again(tiny_model_dir: Path, fresh_cache: Path):
    with auto_pool(tiny_model_dir) as first:
        assert first.backend_choice is not None and first.batch_budget is not None
        assert not first.backend_choice.reused and not first.batch_budget.reused
        answers = first.predict_batch(list(PROBE_TEXTS))
    assert sorted(p.name.split("-")[0] for p in (fresh_cache / "choices").iterdir()) == ["batch", "runtime"]
    with auto_pool(tiny_model_dir) as second:
        assert second.backend_choice is not None and second.batch_budget is not None
        assert second.backend_choice.reused and second.batch_budget.reused
        assert (second.backend_choice.backend, second.backend_choice.dtype) == (
            first.backend_choice.backend, first.backend_choice.dtype)
        assert second.backend.kind == first.backend.kind
        assert second.backend_choice.timed_at == first.backend_choice.timed_at
        assert second.backend_choice.candidates == first.backend_choice.candidates
        assert (second.batch_budget.max_batch_calls, second.batch_budget.timings) == (
            first.batch_budget.max_batch_calls, first.batch_budget.timings)
        assert second.predict_batch(list(PROBE_TEXTS)) == answers
        health = second.backend_choice.to_dict()
        assert health["timed"] == "reused" and str(health["timed_at"]).endswith("+00:00")
    with auto_pool(tiny_model_dir, retune=True) as third:
        assert third.backend_choice is not None and third.batch_budget is not None
        assert not third.backend_choice.reused and not third.batch_budget.reused
        assert third.backend_choice.timed_at > first.backend_choice.timed_at


def test_another_model_or_other_threads_are_timed_anew(tiny_model_dir: Path, other_model_dir: Path,
                                                       fresh_cache: Path):
    with auto_pool(tiny_model_dir, torch_threads=1) as pool:
        assert pool.backend_choice is not None and not pool.backend_choice.reused
    with auto_pool(other_model_dir, torch_threads=1) as other_weights:
        assert other_weights.backend_choice is not None and not other_weights.backend_choice.reused
    with auto_pool(tiny_model_dir, torch_threads=2) as other_threads:  # timings depend on threads per forward pass
        assert other_threads.batch_budget is not None and not other_threads.batch_budget.reused
    with auto_pool(tiny_model_dir, torch_threads=1) as again:
        assert again.backend_choice is not None and again.backend_choice.reused


def test_an_unreadable_or_malformed_stored_choice_is_timed_again(tiny_model_dir: Path, fresh_cache: Path,
                                                                caplog: pytest.LogCaptureFixture):
    store = fresh_cache / "choices"
    with RaNERModelPool(tiny_model_dir, pool_size=1, backend="auto"):
        pass
    [runtime_file] = store.iterdir()
    runtime_file.write_text("{ not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING), RaNERModelPool(tiny_model_dir, pool_size=1, backend="auto") as pool:
        assert pool.backend_choice is not None and not pool.backend_choice.reused
    assert "unreadable stored choice" in caplog.text
    json.loads(runtime_file.read_text(encoding="utf-8"))  # written anew, whole

    with RaNERModelPool(tiny_model_dir, pool_size=1, batching=BatchingConfig()):  # a named runtime: one key
        pass
    [budget_file] = [path for path in store.iterdir() if path.name.startswith("batch-budget")]
    stored = json.loads(budget_file.read_text(encoding="utf-8"))
    del stored["value"]["timings"]
    budget_file.write_text(json.dumps(stored), encoding="utf-8")
    with caplog.at_level(logging.WARNING), RaNERModelPool(tiny_model_dir, pool_size=1,
                                                          batching=BatchingConfig()) as pool:
        assert pool.batch_budget is not None and not pool.batch_budget.reused and pool.batch_budget.timings
    assert "malformed stored batch-budget" in caplog.text


def test_a_store_that_cannot_be_written_only_costs_a_slower_start(tiny_model_dir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("RANER_POOL_CACHE", str(blocker))
    for _ in range(2):
        with caplog.at_level(logging.WARNING), RaNERModelPool(tiny_model_dir, pool_size=1,
                                                              batching=BatchingConfig()) as pool:
            assert pool.batch_budget is not None and pool.batch_budget.timings and not pool.batch_budget.reused
            assert pool.predict("马云在杭州") is not None
    assert "the next start will time it again" in caplog.text


def test_a_key_holds_the_model_version_machine_and_question(tmp_path: Path):
    store = ChoiceStore(tmp_path)
    key = choice_key("abc", device="cpu", dtype="float32")
    assert {"model_version", "machine", "device", "dtype"} <= set(key)
    assert {"cpu", "cpu_flags", "cores", "torch_threads", "libraries"} <= set(key["machine"])
    store.put("runtime", key, {"backend": "onnx"})
    assert store.get("runtime", key) == {"backend": "onnx"}
    assert store.get("runtime", {**key, "dtype": "bfloat16"}) is None
    assert store.get("batch-budget", key) is None


def test_a_restarted_server_reuses_its_timings_and_says_so_in_health(tiny_model_dir: Path, tmp_path: Path):
    config = tmp_path / "models.toml"
    config.write_text(f'{STOP_AT_ONCE}[models.tiny]\nmodel = "{tiny_model_dir}"\npool_size = 1\n', encoding="utf-8")
    env = {"RANER_POOL_CACHE": str(tmp_path / "cache")}

    def timed(args: list[str]) -> tuple[dict[str, object], dict[str, object]]:
        with running_server(config, tmp_path / "server.log", env=env, args=args) as server:
            [model] = httpx.get(f"{server.url}/health", timeout=10).json()["models"]
            assert model["serving_backend"] == model["backend_choice"]["backend"]
            return model["backend_choice"], model["batch_budget"]

    first_choice, first_budget = timed([])
    assert first_choice["timed"] == first_budget["timed"] == "now"
    second_choice, second_budget = timed([])
    assert second_choice["timed"] == second_budget["timed"] == "reused"
    assert second_choice["timed_at"] == first_choice["timed_at"]
    assert second_budget["timed_at"] == first_budget["timed_at"]
    assert (second_choice["backend"], second_budget["max_batch_calls"]) == (first_choice["backend"],
                                                                            first_budget["max_batch_calls"])
    retuned_choice, retuned_budget = timed(["--retune"])
    assert retuned_choice["timed"] == retuned_budget["timed"] == "now"
