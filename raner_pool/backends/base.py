"""What the engine needs from a model, whichever runtime executes it."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from raner_pool.crf import CRFParams
from raner_pool.tokenization import CharTokenizer


class Backend(Protocol):
    """A loaded token-classification model: tokenizer, labels, optional CRF, and a batched forward.

    `emissions` must be safe to call from several threads at once: pool
    instances share one backend, and so one copy of the weights.
    """

    kind: str
    model_dir: Path
    labels: list[str]
    tokenizer: CharTokenizer
    max_positions: int
    crf: CRFParams | None

    def emissions(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Per-token label scores, float32 of shape (batch, tokens, labels)."""
        ...
