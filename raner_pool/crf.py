"""CRF Viterbi decoding in numpy, batched over padded sequences.

Same recurrence as ModelScope's `CRF._viterbi_decode` (transitions[i, j]
scores tag i followed by tag j), so paths match the ModelScope pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CRFParams:
    """A linear-chain CRF's learned scores, as float32 arrays."""

    start: np.ndarray  # (tags,)
    end: np.ndarray  # (tags,)
    transitions: np.ndarray  # (tags, tags)


def viterbi_decode(emissions: np.ndarray, lengths: np.ndarray, crf: CRFParams) -> list[np.ndarray]:
    """Best tag path of each sequence: `emissions` (batch, steps, tags), `lengths` (batch,)."""
    batch, steps, _ = emissions.shape
    score = crf.start[None, :] + emissions[:, 0]
    backpointers = np.zeros((batch, max(steps - 1, 0), emissions.shape[2]), dtype=np.int64)
    for t in range(1, steps):
        candidates = score[:, :, None] + crf.transitions[None, :, :]
        best_previous = candidates.argmax(axis=1)
        next_score = np.take_along_axis(candidates, best_previous[:, None, :], axis=1)[:, 0] + emissions[:, t]
        active = (t < lengths)[:, None]
        score = np.where(active, next_score, score)
        backpointers[:, t - 1] = best_previous
    score = score + crf.end[None, :]
    paths = []
    for row in range(batch):
        length = int(lengths[row])
        if length == 0:
            paths.append(np.zeros(0, dtype=np.int64))
            continue
        path = np.empty(length, dtype=np.int64)
        path[-1] = int(score[row].argmax())
        for t in range(length - 1, 0, -1):
            path[t - 1] = backpointers[row, t - 1, path[t]]
        paths.append(path)
    return paths
