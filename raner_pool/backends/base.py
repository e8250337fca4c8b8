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
    packs: bool
    """Whether `emissions` takes several texts per row: a (batch, tokens, tokens) attention mask that keeps each
    text to itself and `position_ids` restarting at each text, so a batch of mixed lengths needs no padding."""

    def emissions(self, input_ids: np.ndarray, attention_mask: np.ndarray,
                  position_ids: np.ndarray | None = None) -> np.ndarray:
        """Per-token label scores, float32 of shape (batch, tokens, labels). `attention_mask` is (batch, tokens),
        or (batch, tokens, tokens) with `position_ids` where the backend packs."""
        ...
