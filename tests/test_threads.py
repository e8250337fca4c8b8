"""The library sizes torch threads itself: every open pool's instances share the cores, sibling worker processes
count, and an explicit setting wins."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from raner_pool import RaNERModelPool, threads


@pytest.fixture
def eight_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    monkeypatch.setattr(threads, "_instances", 0)
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    monkeypatch.delenv(threads.WORKERS_ENV, raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("eight_cores")
def test_open_pools_share_the_cores_and_get_them_back_when_one_closes(tiny_model_dir: Path):
    first = RaNERModelPool(tiny_model_dir, pool_size=2)
    assert first.threads == 4 and torch.get_num_threads() == 4
    second = RaNERModelPool(tiny_model_dir, pool_size=2)
    assert second.threads == 2 and torch.get_num_threads() == 2, "4 instances may run at once on 8 cores"
    second.close()
    second.close()  # closing twice gives nothing back twice
    assert torch.get_num_threads() == 4
    first.close()


@pytest.mark.usefixtures("eight_cores")
def test_worker_processes_and_explicit_settings(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(threads.WORKERS_ENV, "2")
    assert threads.threads_per_instance(2) == 2, "8 cores, 2 processes, 2 instances each"
    assert threads.threads_per_instance(64) == 1, "never fewer than one"
    with RaNERModelPool(tiny_model_dir, pool_size=1, torch_threads=3) as pool:
        assert pool.threads == 3 and torch.get_num_threads() == 3
    monkeypatch.setenv(threads.THREADS_ENV, "5")
    assert threads.threads_per_instance(4) == 5
