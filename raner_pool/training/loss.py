"""What a step minimises: the CRF's negative log-likelihood of the target tags, where a target may allow more
than one tag at a character, plus (with `keep_old="distill"`) a KL term pulling the new model's tag distribution
towards the frozen base model's on the characters the data leaves `O`.

"Allowed tags" covers both ways of keeping old types: a position whose target is one tag (the gold labels, the
base model's own predictions as pseudo-labels) and one that may be either `O` or what the base model says
(distillation's partial labels, so the CRF term does not fight the KL term there).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from raner_pool.training.model import NEG


def log_partition(
    emissions: torch.Tensor, mask: torch.Tensor, start: torch.Tensor, end: torch.Tensor, transitions: torch.Tensor
) -> torch.Tensor:
    """log of the summed scores of every tag path, per sequence: emissions (batch, steps, tags), mask (batch,
    steps) with the first step always real."""
    alpha = start + emissions[:, 0]
    for t in range(1, emissions.shape[1]):
        advanced = torch.logsumexp(alpha[:, :, None] + transitions + emissions[:, t, None, :], dim=1)
        alpha = torch.where(mask[:, t, None], advanced, alpha)
    return torch.logsumexp(alpha + end, dim=1)


def crf_nll(emissions: torch.Tensor, allowed: torch.Tensor, mask: torch.Tensor, crf: Any) -> torch.Tensor:
    """Mean over sequences of -log p(a path through the allowed tags): allowed (batch, steps, tags) bool."""
    emissions = emissions.float()
    params = crf.start_transitions, crf.end_transitions, crf.transitions
    constrained = emissions.masked_fill(~allowed, NEG)
    return (log_partition(emissions, mask, *params) - log_partition(constrained, mask, *params)).mean()


def distillation_kl(
    emissions: torch.Tensor, teacher_probs: torch.Tensor, positions: torch.Tensor, old_ids: torch.Tensor
) -> torch.Tensor:
    """KL(base || new) of the per-character tag distributions over the base's labels, averaged over `positions`
    (batch, steps) bool; 0 where there are none."""
    if not positions.any():
        return emissions.new_zeros(())
    student = F.log_softmax(emissions.float()[..., old_ids], dim=-1)[positions]
    teacher = teacher_probs[positions].clamp_min(1e-8)
    return (teacher * (teacher.log() - student)).sum(-1).mean()
