"""Losses for the two-class prompt model: focal loss (the paper's choice for imbalance) and
cross-entropy."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

LossName = Literal["focal", "ce"]


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.75,
               gamma: float = 2.0) -> torch.Tensor:
    """Mean of ``-alpha_t (1 - p_t)^gamma log p_t`` (Lin et al. 2017) over the batch.

    ``logits`` (batch, 2), ``target`` (batch,) in {0, 1}; ``p_t`` is the softmax probability
    of the true class; ``alpha_t`` is ``alpha`` for class 1 (anomaly) and ``1 - alpha`` for
    class 0. ``gamma = 0`` and ``alpha = 0.5`` give half the cross-entropy.
    """
    log_p = F.log_softmax(logits, dim=-1).gather(1, target.view(-1, 1)).squeeze(1)
    p = log_p.exp()
    alpha_t = torch.where(target == 1, torch.full_like(p, alpha), torch.full_like(p, 1 - alpha))
    return (-alpha_t * (1 - p).pow(gamma) * log_p).mean()


def loss_fn(name: LossName, alpha: float, gamma: float):  # type: ignore[no-untyped-def]
    """The selected loss as ``f(logits, target) -> scalar``."""
    if name == "focal":
        return lambda logits, target: focal_loss(logits, target, alpha, gamma)
    if name == "ce":
        return lambda logits, target: F.cross_entropy(logits, target)
    raise ValueError(f"unknown loss {name!r}; known: focal, ce")
