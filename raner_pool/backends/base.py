"""What the engine needs from a model, whichever runtime executes it."""

from __future__ import annotations

from collections.abc import Sequence
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
    """Whether the backend scores texts run together (`emissions_packed`), so that a batch of mixed lengths costs
    its tokens rather than its longest text times its size."""

    def emissions(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Per-token label scores, float32 of shape (batch, tokens, labels), of texts padded to one width."""
        ...

    def emissions_packed(self, token_ids: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
        """Per-token label scores, float32 of shape (tokens, labels), of texts run together in `token_ids`
        (tokens,), `lengths` tokens each, each scored as if alone. Called only where `packs`."""
        ...
