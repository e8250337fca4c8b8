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


def _logsumexp(values: np.ndarray, axis: int) -> np.ndarray:
    peak = values.max(axis=axis, keepdims=True)
    result: np.ndarray = np.squeeze(peak, axis=axis) + np.log(np.exp(values - peak).sum(axis=axis))
    return result


def tag_marginals(emissions: np.ndarray, lengths: np.ndarray, crf: CRFParams) -> np.ndarray:
    """P(tag at step t = k | whole sequence) under the CRF, by forward-backward: shape (batch, steps, tags).

    These are the probabilities the decoder actually works with; a softmax over the emissions alone ignores
    the transitions a CRF model relies on, and can be near zero for a tag the best path confidently takes.
    Steps past a sequence's length are meaningless.
    """
    emissions = emissions.astype(np.float64)
    batch, steps, tags = emissions.shape
    transitions = crf.transitions.astype(np.float64)
    alpha = np.empty_like(emissions)
    alpha[:, 0] = crf.start[None, :] + emissions[:, 0]
    for t in range(1, steps):
        alpha[:, t] = _logsumexp(alpha[:, t - 1, :, None] + transitions[None], axis=1) + emissions[:, t]
    beta = np.zeros_like(emissions)
    last = (lengths - 1).clip(min=0)
    for t in range(steps - 1, -1, -1):
        if t + 1 < steps:
            following = _logsumexp(transitions[None] + (emissions[:, t + 1] + beta[:, t + 1])[:, None, :], axis=2)
        else:
            following = np.zeros((batch, tags))
        at_end: np.ndarray = np.equal(last, t)
        beta[:, t] = np.where(at_end[:, None], crf.end[None, :], following)
    log_z = _logsumexp(alpha[np.arange(batch), last] + crf.end[None, :], axis=1)
    log_marginals = alpha + beta - log_z[:, None, None]
    beyond: np.ndarray = np.arange(steps)[None, :] >= lengths[:, None]
    log_marginals[beyond] = -np.inf  # padding: probability 0, and no overflow
    result: np.ndarray = np.exp(np.minimum(log_marginals, 0.0)).astype(np.float32)
    return result
