"""What a training run is asked to do (`TrainConfig`) and what it made (`TrainResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from raner_pool.training.augment import Augmentation


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a run; defaults are sized from the data and the model where None."""

    format: str | None = None
    """Force a data format (raner_pool.training.readers.FORMATS); None: found from each file's content."""
    dev: tuple[str, ...] = ()
    """Files to score epochs on; none: `dev_fraction` of the data, held out with `seed`."""
    dev_fraction: float = 0.1
    types: tuple[str, ...] = ()
    """Types the data labels completely, beyond those that occur in it (a type with no example yet)."""
    keep_old: str = "pseudo"
    """How the base's types the data does not label are kept: "pseudo", "distill", or "forget"."""
    epochs: int | None = None
    max_minutes: float | None = None
    """This sitting's time budget: the run checkpoints, writes its best model so far, and `resume` goes on."""
    learning_rate: float | None = None
    """The encoder's; None: 5e-5 for encoders of 512 hidden units or more, else 2e-4."""
    head_learning_rate: float = 1e-3
    crf_learning_rate: float = 5e-3
    batch_size: int = 16
    max_batch_tokens: int = 4096
    warmup: float = 0.1
    patience: int = 6
    """Stop after this many epochs without a better dev F1."""
    distill_weight: float = 1.0
    shape: str = "4x256"
    """With base "scratch": the encoder's LAYERSxHIDDEN (raner_pool.training.model.parse_shape)."""
    min_char_count: int = 2
    """With base "scratch": characters seen fewer times are [UNK]."""
    window: int | None = None
    """With base "scratch": the longest text trained on (longer ones are cut), kept in the model dir so the
    engine windows served texts to it; None: the encoder's positions."""
    init_from: str = ""
    """With base "scratch": a model dir of the same shape whose weights start the run."""
    augment: Augmentation = field(default_factory=lambda: Augmentation(replace_prob=0.5))
    """Name replacement, decoration and joined runs, drawn afresh each epoch (raner_pool.training.augment)."""
    device: str = "cpu"
    dtype: str = "float32"
    threads: int | None = None
    seed: int = 20261206
    resume: bool = False
    overwrite: bool = False
    progress: bool = True


@dataclass(frozen=True)
class TrainResult:
    """What a run made: the model dir and how it scored on the dev split at its best epoch."""

    output: Path
    labels: tuple[str, ...]
    added_types: tuple[str, ...]
    kept_types: tuple[str, ...]
    dev: dict[str, dict[str, float]]
    """Per labelled type and "ALL": precision, recall, f1, gold (entities in the dev split)."""
    kept: dict[str, float]
    """Per kept base type: F1 of the new model's entities against the base model's on the dev split."""
    epochs: int
    best_epoch: int
    seconds: float
    train_texts: int
    dev_texts: int
    prob_temperature: float
    stopped_by_budget: bool = False
    history: list[dict[str, object]] = field(default_factory=list)
