"""Shared fixtures: a tiny ModelScope RaNER dir built on the fly, and the shipped default model."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

os.environ.setdefault("RANER_POOL_OFFLINE", "1")  # tests never contact a model hub

from raner_pool import Entity, RaNERModelPool
from raner_pool.modeldir import SPECIAL_TOKENS, EncoderShape, build_random_model
from raner_pool.server.launch import stop_process

TINY_VOCAB = [
    *SPECIAL_TOKENS,
    *"阿里巴集团创始人马云在杭州出席了技术峰会。北京上海刘德华平时生活香港但是他喜欢去钓鱼据说，",
    *"abc123",
]
TINY_SHAPE = EncoderShape(layers=1, hidden=32, heads=2, intermediate=64)

SAMPLE_TEXTS = [
    "阿里巴巴集团创始人马云在杭州出席了技术峰会。",
    "据说，刘德华平时生活在香港，但是他喜欢去北京钓鱼",
    "",
    "abc 北京 123",
    "😀马云🇨🇳在上海",
]


@pytest.fixture(scope="session", autouse=True)
def choice_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One raner-pool cache dir for the session (ONNX exports, timed choices), shared with the servers it starts:
    the first pool or server of a model times backend=auto and its batch budget, later ones reuse them, as a
    restart does. A test of the timing itself gives itself a fresh dir or asks for `retune`."""
    root = tmp_path_factory.mktemp("raner-pool-cache")
    os.environ["RANER_POOL_CACHE"] = str(root)
    return root


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer, 32-hidden transformer-crf dir with random weights: fast, and loads like a real RaNER."""
    return build_random_model(tmp_path_factory.mktemp("tiny") / "model", TINY_VOCAB, TINY_SHAPE, seed=7)


@pytest.fixture(scope="session")
def other_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same shape and vocab as the tiny model, other random weights: other answers (for model updates)."""
    return build_random_model(tmp_path_factory.mktemp("other") / "model", TINY_VOCAB, TINY_SHAPE, seed=11)


BREAKING_CHAR = "龘"
"""In the broken model's vocab.txt but beyond its embedding table: a real model fault, on demand."""


@pytest.fixture(scope="session")
def broken_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with one more vocab line than embedding rows: texts with BREAKING_CHAR make it raise."""
    broken = tmp_path_factory.mktemp("broken") / "model"
    shutil.copytree(tiny_model_dir, broken)
    with open(broken / "vocab.txt", "a", encoding="utf-8") as vocab:
        vocab.write(f"{BREAKING_CHAR}\n")
    return broken


@pytest.fixture(scope="session")
def tiny_pool(tiny_model_dir: Path) -> RaNERModelPool:
    return RaNERModelPool(tiny_model_dir, pool_size=4)


@pytest.fixture(scope="session")
def default_pool() -> RaNERModelPool:
    return RaNERModelPool("default", pool_size=2)


def assert_same_results(actual: list[list[Entity]], expected: list[list[Entity]]) -> None:
    """Same entities, text for text; probabilities equal up to float noise from different batch padding."""
    assert [[(e.type, e.start, e.end, e.span) for e in r] for r in actual] == [
        [(e.type, e.start, e.end, e.span) for e in r] for r in expected
    ]
    for got, want in zip(actual, expected, strict=True):
        assert [e.prob for e in got] == pytest.approx([e.prob for e in want], abs=1e-5)


REDIS = shutil.which("redis-server")


def start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """A real redis-server on 127.0.0.1:`port`, answering pings when this returns."""
    if REDIS is None:
        pytest.skip("redis-server is not installed (make test installs it)")
    process = subprocess.Popen(
        [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    stop_process(process, 10)
