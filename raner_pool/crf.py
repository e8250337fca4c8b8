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

    def tempered(self, temperature: float) -> CRFParams:
        """Every score divided by `temperature`: the same best paths, softer (> 1) or sharper (< 1) marginals."""
        return CRFParams(self.start / temperature, self.end / temperature, self.transitions / temperature)


def viterbi_decode(emissions: np.ndarray, lengths: np.ndarray, crf: CRFParams) -> list[np.ndarray]:
    """Best tag path of each sequence: `emissions` (batch, steps, tags), `lengths` (batch,)."""
    batch, steps, tags = emissions.shape
    score = crf.start[None, :] + emissions[:, 0]
    backpointers = np.zeros((batch, max(steps - 1, 0), tags), dtype=np.int64)
    for t in range(1, steps):
        candidates = score[:, :, None] + crf.transitions[None, :, :]
        backpointers[:, t - 1] = candidates.argmax(axis=1)
        score = np.where((t < lengths)[:, None], candidates.max(axis=1) + emissions[:, t], score)
    score = score + crf.end[None, :]
    paths = []
    for row in range(batch):
        path = np.empty(int(lengths[row]), dtype=np.int64)
        if len(path):
            path[-1] = int(score[row].argmax())
            for t in range(len(path) - 1, 0, -1):
                path[t - 1] = backpointers[row, t - 1, path[t]]
        paths.append(path)
    return paths


def tag_marginals(emissions: np.ndarray, lengths: np.ndarray, crf: CRFParams) -> np.ndarray:
    """P(tag at step t = k | whole sequence) under the CRF, by forward-backward: shape (batch, steps, tags).

    These are the probabilities the decoder actually works with; a softmax over the emissions alone ignores
    the transitions a CRF model relies on, and can be near zero for a tag the best path confidently takes.
    Steps past a sequence's length get 0.

    Computed on weights (exponentiated scores) rescaled to sum to 1 at every step, not in log space: a marginal is
    alpha x beta normalised over the tags, which the per-step scales cancel out of, and a step is then one small
    matrix product rather than a log-sum-exp of five array operations (a third less time at MSRA lengths).
    """
    steps = emissions.shape[1]
    scores = emissions.astype(np.float64)
    weights = np.exp(scores - scores.max(axis=2, keepdims=True))
    transitions = np.exp(crf.transitions.astype(np.float64) - crf.transitions.max())
    end = np.exp(crf.end.astype(np.float64) - crf.end.max())
    alpha = np.empty_like(weights)
    alpha[:, 0] = _rescaled(np.exp(crf.start.astype(np.float64) - crf.start.max())[None, :] * weights[:, 0])
    for t in range(1, steps):
        alpha[:, t] = _rescaled((alpha[:, t - 1] @ transitions) * weights[:, t])
    beta = np.empty_like(weights)
    beta[:, steps - 1] = end
    last = lengths - 1
    for t in range(steps - 2, -1, -1):
        following = _rescaled((weights[:, t + 1] * beta[:, t + 1]) @ transitions.T)
        beta[:, t] = np.where((last == t)[:, None], end, following)
    marginals = _rescaled(alpha * beta)
    marginals[np.arange(steps)[None, :] >= lengths[:, None]] = 0.0
    result: np.ndarray = marginals.astype(np.float32)
    return result


_TINY = float(np.finfo(np.float64).tiny)


def _rescaled(weights: np.ndarray) -> np.ndarray:
    """`weights` divided by their sum over the last axis (tags); all-zero rows stay zero."""
    result: np.ndarray = weights / (weights.sum(axis=-1, keepdims=True) + _TINY)
    return result
