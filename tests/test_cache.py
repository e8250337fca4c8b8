"""Result caches: the in-process LRU, and Redis against a real redis-server started here."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from raner_pool import RaNERModelPool
from raner_pool.cache import LRUCache, RedisCache, cache_key, model_version
from raner_pool.errors import RaNERError
from raner_pool.server.launch import free_port

from .conftest import SAMPLE_TEXTS, assert_same_results, start_redis, stop


def test_lru_counts_hits_and_evicts_the_least_recently_used(tiny_model_dir: Path, tiny_pool: RaNERModelPool):
    cache = LRUCache(max_entries=3)
    pool = RaNERModelPool(tiny_model_dir, pool_size=1, cache=cache)
    texts = SAMPLE_TEXTS[:3]
    first = pool.predict_batch(texts)
    assert (cache.hits, cache.misses, len(cache)) == (0, 3, 3)
    assert_same_results(pool.predict_batch(texts), first)
    assert_same_results(first, tiny_pool.predict_batch(texts))
    assert (cache.hits, cache.misses) == (3, 3)
    pool.predict(texts[0])  # most recently used: survives the next insertion
    pool.predict("新的文本")
    assert cache.get_many([cache_key(pool.config.model, pool.version, t) for t in texts]).count(None) == 1
    assert pool.stats().served == 4


def test_the_version_changes_with_the_weights(tiny_model_dir: Path, tmp_path: Path):
    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy)
    assert model_version(copy) == model_version(tiny_model_dir)
    with open(copy / "pytorch_model.bin", "ab") as weights:
        weights.write(b"\0")
    assert model_version(copy) != model_version(tiny_model_dir)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    process = start_redis(port, tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}/0"
    stop(process)


def test_redis_cache_is_shared_between_pools(tiny_model_dir: Path, redis_url: str, tiny_pool: RaNERModelPool):
    writer = RaNERModelPool(tiny_model_dir, pool_size=1, cache=RedisCache(redis_url))
    expected = writer.predict_batch(SAMPLE_TEXTS)
    assert_same_results(expected, tiny_pool.predict_batch(SAMPLE_TEXTS))
    reader_cache = RedisCache(redis_url)
    reader = RaNERModelPool(tiny_model_dir, pool_size=1, cache=reader_cache)
    assert reader.predict_batch(SAMPLE_TEXTS) == expected, "entities round-trip through Redis exactly"
    assert (reader_cache.hits, reader_cache.misses) == (len(SAMPLE_TEXTS), 0)


def test_redis_down_at_start_passes_through_then_recovers_by_itself(
    tiny_model_dir: Path, tiny_pool: RaNERModelPool, tmp_path: Path
):
    port = free_port()
    cache = RedisCache(f"redis://127.0.0.1:{port}/0", backoff_s=0.2)
    pool = RaNERModelPool(tiny_model_dir, pool_size=1, cache=cache)
    expected = tiny_pool.predict_batch(SAMPLE_TEXTS)
    assert_same_results(pool.predict_batch(SAMPLE_TEXTS), expected)
    assert cache.errors >= 1 and cache.hits == 0
    process = start_redis(port, tmp_path)
    try:
        time.sleep(0.3)  # past the backoff
        assert_same_results(pool.predict_batch(SAMPLE_TEXTS), expected)  # computed, and now stored
        assert_same_results(pool.predict_batch(SAMPLE_TEXTS), expected)
        assert cache.hits == len(SAMPLE_TEXTS), "hits resume once Redis is back"
    finally:
        stop(process)


def test_malformed_redis_url_is_a_clear_error():
    with pytest.raises(RaNERError, match=r"cannot use the Redis cache at redis://:x"):
        RedisCache("redis://:x")
