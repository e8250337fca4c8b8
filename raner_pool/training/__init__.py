"""Training: fine-tune and extend any servable model on users' annotated data, keeping the types it already knows.

Serving never imports this package; `raner_pool.train` and `raner-pool train` load it when called.
"""

from raner_pool.training.config import TrainConfig, TrainResult
from raner_pool.training.examples import DataError, Example, Span
from raner_pool.training.readers import FORMATS, read_examples
from raner_pool.training.trainer import train

__all__ = ["FORMATS", "DataError", "Example", "Span", "TrainConfig", "TrainResult", "read_examples", "train"]
