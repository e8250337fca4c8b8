"""Micro-batching: shared batches give the same answers, callers who give up are skipped, faults stay isolated."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from raner_pool import BatchingConfig, Entity, PoolBusy, PoolClosed, PoolTimeout, RaNERError, RaNERModelPool

from .conftest import BREAKING_CHAR, SAMPLE_TEXTS, assert_same_results


def test_concurrent_calls_share_batches_and_match_unbatched_answers(tiny_model_dir: Path, tiny_pool: RaNERModelPool):
    texts = [f"{SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)]}{'北京' * (i % 7)}" for i in range(60)]
    expected = [tiny_pool.predict(t) for t in texts]
    pool = RaNERModelPool(tiny_model_dir, pool_size=2, batching=BatchingConfig(max_wait_ms=2))
    batch_sizes: list[int] = []
    pool.add_batch_listener(lambda calls, waits: batch_sizes.append(calls))

    def caller(_: int) -> list:
        return [pool.predict(t, timeout=60) for t in texts]

    with ThreadPoolExecutor(16) as executor:
        results = list(executor.map(caller, range(16)))
    for result in results:
        assert_same_results(result, expected)
    assert sum(batch_sizes) == 16 * 60, "every call ran in exactly one batch"
    assert max(batch_sizes) > 1, "concurrent calls were batched together"
    stats = pool.stats()
    assert (stats.served, stats.failed, stats.idle, stats.waiting) == (16 * 60, 0, 2, 0)
    pool.close()


def test_a_caller_that_gives_up_gets_pool_timeout_and_is_skipped(tiny_model_dir: Path):
    pool = RaNERModelPool(tiny_model_dir, pool_size=1, batching=BatchingConfig(max_wait_ms=0))
    ran: list[int] = []
    pool.add_batch_listener(lambda calls, waits: ran.append(calls))
    # the only instance is busy, so the call waits in the queue until its caller gives up
    with pool.checkout(), pytest.raises(PoolTimeout, match=r"no result within 0\.2 s"):
        pool.predict("北京", timeout=0.2)
    assert pool.predict("上海", timeout=10) is not None
    assert ran == [1], "the abandoned call never reached the model"
    assert pool.stats().failed == 1


def test_the_queue_limit_refuses_at_once(tiny_model_dir: Path):
    pool = RaNERModelPool(tiny_model_dir, pool_size=1, max_waiting=1, batching=BatchingConfig(max_wait_ms=0))
    with pool.checkout():
        waiter = threading.Thread(target=lambda: pool.predict("北京", timeout=10))
        waiter.start()
        while pool.stats().waiting < 1:
            threading.Event().wait(0.01)
        with pytest.raises(PoolBusy, match="max_waiting=1"):
            pool.predict("上海", timeout=10)
    waiter.join()
    assert pool.stats().idle == 1


def test_a_failing_call_does_not_fail_its_batch_mates(broken_model_dir: Path):
    pool = RaNERModelPool(broken_model_dir, pool_size=1, batching=BatchingConfig(max_wait_ms=5))
    texts = [f"马云{BREAKING_CHAR}" if i % 5 == 0 else f"马云在杭州{i}" for i in range(40)]

    def call(text: str) -> str:
        try:
            pool.predict(text, timeout=60)
        except IndexError:
            return "failed"
        return "ok"

    with ThreadPoolExecutor(20) as executor:
        outcomes = list(executor.map(call, texts))
    assert outcomes == ["failed" if BREAKING_CHAR in t else "ok" for t in texts]
    assert pool.stats().idle == 1 and pool.stats().failed == 8


def test_one_input_larger_than_the_budget_still_runs(tiny_model_dir: Path, tiny_pool: RaNERModelPool):
    pool = RaNERModelPool(tiny_model_dir, pool_size=1, batching=BatchingConfig(max_batch_tokens=64))
    text = "据说，刘德华平时生活在香港。" * 400
    assert_same_results([pool.predict(text, timeout=120)], [tiny_pool.predict(text)])


def test_closing_the_pool_answers_queued_calls(tiny_model_dir: Path):
    pool = RaNERModelPool(tiny_model_dir, pool_size=1, batching=BatchingConfig(max_wait_ms=0))
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            pool.predict("北京", timeout=30)
        except BaseException as error:
            outcome.append(error)

    with pool.checkout():
        waiter = threading.Thread(target=call)
        waiter.start()
        while pool.stats().waiting < 1:
            threading.Event().wait(0.01)
        pool.close()
    waiter.join(timeout=30)
    assert not waiter.is_alive(), "a queued caller was left waiting"
    assert len(outcome) == 1 and isinstance(outcome[0], PoolClosed)


def test_a_failing_listener_does_not_touch_answers_or_workers(tiny_model_dir: Path, tiny_pool: RaNERModelPool):
    pool = RaNERModelPool(tiny_model_dir, pool_size=1, batching=BatchingConfig(max_wait_ms=0))

    def broken_listener(calls: int, waits: list[float]) -> None:
        raise RuntimeError("metrics backend down")

    pool.add_batch_listener(broken_listener)
    for _ in range(3):
        assert_same_results(pool.predict_batch(SAMPLE_TEXTS, timeout=10), tiny_pool.predict_batch(SAMPLE_TEXTS))
    pool.close()


def test_a_worker_that_dies_is_replaced_and_no_caller_waits_forever(
    tiny_model_dir: Path, tiny_pool: RaNERModelPool, monkeypatch: pytest.MonkeyPatch
):
    from raner_pool.batching import MicroBatcher

    pool = RaNERModelPool(tiny_model_dir, pool_size=1, batching=BatchingConfig(max_wait_ms=0))
    answer = MicroBatcher._answer
    faults = iter([True])  # the first batch blows up the worker itself, outside the engine

    def faulty_answer(self: MicroBatcher, *args: object) -> None:
        if next(faults, False):
            raise MemoryError("simulated worker fault")
        answer(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(MicroBatcher, "_answer", faulty_answer)
    with pytest.raises(Exception, match="the batch worker failed"):
        queued_behind_a_busy_instance(pool, "马云在杭州").result(timeout=20)
    assert_same_results(pool.predict_batch(SAMPLE_TEXTS, timeout=10), tiny_pool.predict_batch(SAMPLE_TEXTS))
    assert pool.stats().idle == 1, "the instance went back to the pool"
    pool.close()


def queued_behind_a_busy_instance(pool: RaNERModelPool, text: str) -> Future[list[Entity]]:
    """Call `pool.predict(text)` while every instance is held, so the call queues for a batch worker (a call that
    finds an instance free and nothing queued runs on the caller's thread instead)."""
    executor = ThreadPoolExecutor(1)
    with ExitStack() as held:
        for _ in range(pool.config.pool_size):
            held.enter_context(pool.checkout())
        future = executor.submit(pool.predict, text, 10)
        deadline = time.monotonic() + 10
        while pool.stats().waiting == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    executor.shutdown(wait=False)
    return future


def test_a_lone_call_runs_on_its_callers_thread_and_a_queued_one_on_a_worker(tiny_model_dir: Path):
    with RaNERModelPool(tiny_model_dir, pool_size=1, batching=BatchingConfig()) as pool:
        threads: list[str] = []
        emissions = pool.backend.emissions_packed  # the forward pass of a backend that packs, as this one does
        assert pool.backend.packs

        def recording(*args: Any) -> np.ndarray:
            threads.append(threading.current_thread().name)
            return emissions(*args)

        pool.backend.emissions_packed = recording  # type: ignore[method-assign]
        batches: list[int] = []
        pool.add_batch_listener(lambda calls, waits: batches.append(calls))
        lone = pool.predict("马云在杭州")
        assert threads == [threading.current_thread().name]
        queued = queued_behind_a_busy_instance(pool, "马云在杭州").result(timeout=20)
        assert threads[1].startswith("raner-batcher") and queued == lone
        assert batches == [1, 1], "both count as batches in the metrics"


def test_submit_answers_without_blocking_and_a_cancelled_call_never_runs(tiny_model_dir: Path):
    with RaNERModelPool(tiny_model_dir, pool_size=1, batching=BatchingConfig(max_wait_ms=0)) as pool:
        assert pool.submits
        expected = pool.predict_batch(SAMPLE_TEXTS)
        assert pool.submit(SAMPLE_TEXTS).result(timeout=20) == expected
        ran: list[int] = []
        pool.add_batch_listener(lambda calls, waits: ran.append(calls))
        with pool.checkout():  # the only instance is busy: the call stays queued, and is withdrawn
            withdrawn = pool.submit(["北京"])
            assert withdrawn.cancel()
        assert pool.submit(["上海"]).result(timeout=20) == pool.predict_batch(["上海"])
        assert ran == [1, 1], "the withdrawn call never reached the model"
    with RaNERModelPool(tiny_model_dir, pool_size=1) as unbatched, pytest.raises(RaNERError, match="predict_batch"):
        unbatched.submit(["北京"])
