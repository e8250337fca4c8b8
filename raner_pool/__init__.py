"""raner_pool: serve Chinese NER (PER, LOC, ORG, TIME, MONEY, PERCENT, TITLE) from ModelScope RaNER models to many
callers at once.

    from raner_pool import RaNERModelPool
    with RaNERModelPool("default", pool_size=4) as pool:
        pool.predict("阿里巴巴集团创始人马云在杭州出席了技术峰会。")
"""

from typing import TYPE_CHECKING, Any

from raner_pool.backends import Backend
from raner_pool.batching import BatchingConfig
from raner_pool.engine import EngineConfig, NEREngine, TokenClassification
from raner_pool.entities import Entity
from raner_pool.errors import ModelNotAvailable, PoolBusy, PoolClosed, PoolTimeout, RaNERError
from raner_pool.hub import DEFAULT_MODEL_DIR, resolve_model_dir
from raner_pool.loading import BACKENDS, LoadedModel, load_backend, load_model
from raner_pool.pool import PoolConfig, PoolStats, RaNERModelPool

if TYPE_CHECKING:
    from raner_pool.training import TrainConfig, TrainResult, train

_TRAINING_NAMES = ("TrainConfig", "TrainResult", "train")


def __getattr__(name: str) -> Any:
    """`train`, `TrainConfig` and `TrainResult` import the trainer when first used: serving never pays for it."""
    if name in _TRAINING_NAMES:
        from raner_pool import training

        return getattr(training, name)
    raise AttributeError(f"module 'raner_pool' has no attribute {name!r}")

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL_DIR",
    "Backend",
    "BatchingConfig",
    "EngineConfig",
    "Entity",
    "LoadedModel",
    "ModelNotAvailable",
    "NEREngine",
    "PoolBusy",
    "PoolClosed",
    "PoolConfig",
    "PoolStats",
    "PoolTimeout",
    "RaNERError",
    "RaNERModelPool",
    "TokenClassification",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "load_backend",
    "load_model",
    "resolve_model_dir",
    "train",
]
