"""The pool under concurrency: identical results, bounded check-out, instances never lost."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from raner_pool import PoolClosed, PoolTimeout, RaNERModelPool

from .conftest import SAMPLE_TEXTS, assert_same_results


def test_32_threads_x_200_calls_match_sequential(tiny_pool: RaNERModelPool):
    texts = [f"{SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)]}{i}" for i in range(200)]
    expected = [tiny_pool.predict(t) for t in texts]
    served_before = tiny_pool.stats().served

    def caller(_: int) -> list:
        return [tiny_pool.predict(t, timeout=60) for t in texts]

    with ThreadPoolExecutor(max_workers=32) as executor:
        results = list(executor.map(caller, range(32)))
    for result in results:
        assert_same_results(result, expected)
    stats = tiny_pool.stats()
    assert (stats.size, stats.idle, stats.in_use, stats.waiting) == (4, 4, 0, 0)
    assert stats.served - served_before == 32 * 200


def test_instances_share_one_copy_of_the_weights(tiny_pool: RaNERModelPool):
    engines = []
    with tiny_pool.checkout() as a, tiny_pool.checkout() as b:
        engines = [a, b]
    assert engines[0] is not engines[1]
    assert engines[0].backend is engines[1].backend is tiny_pool.backend


def test_checkout_times_out_with_a_clear_error(tiny_model_dir: Path):
    pool = RaNERModelPool(tiny_model_dir, pool_size=1)
    with pool.checkout():
        seen_waiting = []
        failures = []

        def waiter() -> None:
            try:
                pool.predict("北京", timeout=0.3)
            except PoolTimeout as error:
                failures.append(error)

        thread = threading.Thread(target=waiter)
        thread.start()
        for _ in range(50):
            seen_waiting.append(pool.stats().waiting)
            if seen_waiting[-1]:
                break
            threading.Event().wait(0.01)
        thread.join()
        assert max(seen_waiting) == 1
        assert failures and "no pool instance became free within 0.3 s" in str(failures[0])
    assert pool.stats().idle == 1 and pool.stats().waiting == 0
    assert pool.predict("北京") is not None


def test_an_instance_that_raises_is_returned(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    pool = RaNERModelPool(tiny_model_dir, pool_size=2)

    def broken_forward(*args: object) -> None:
        raise RuntimeError("model exploded")

    monkeypatch.setattr(pool.backend, "emissions_packed", broken_forward)  # the forward of a backend that packs
    for _ in range(5):
        with pytest.raises(RuntimeError, match="model exploded"):
            pool.predict("马云在杭州")
    assert pool.stats().idle == 2 and pool.stats().failed == 5
    monkeypatch.undo()
    assert isinstance(pool.predict("马云在杭州"), list)


def test_keyboard_interrupt_inside_checkout_returns_the_instance(tiny_model_dir: Path):
    pool = RaNERModelPool(tiny_model_dir, pool_size=1)
    with pytest.raises(KeyboardInterrupt), pool.checkout():
        raise KeyboardInterrupt
    assert pool.stats().idle == 1
    with pool.checkout(timeout=0.1) as engine:
        assert engine.predict("") == []


def test_closed_pool_refuses_calls(tiny_model_dir: Path):
    with RaNERModelPool(tiny_model_dir, pool_size=1) as pool:
        assert pool.predict("北京") is not None
    with pytest.raises(PoolClosed):
        pool.predict("北京")


def test_pool_size_must_be_positive(tiny_model_dir: Path):
    with pytest.raises(ValueError, match="pool_size must be at least 1"):
        RaNERModelPool(tiny_model_dir, pool_size=0)
