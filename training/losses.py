"""Losses for the two-class prompt model: focal loss (the paper's choice for imbalance) and
cross-entropy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

LossName = Literal["focal", "ce"]


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25,
               gamma: float = 2.0, reduction: Literal["mean", "none"] = "mean") -> torch.Tensor:
    """Mean (or per-sample values) of ``-alpha_t (1 - p_t)^gamma log p_t`` (Lin et al. 2017) over the batch.

    ``logits`` (batch, 2), ``target`` (batch,) in {0, 1}; ``p_t`` is the softmax probability
    of the true class; ``alpha_t`` is ``alpha`` for class 1 (anomaly) and ``1 - alpha`` for
    class 0. ``gamma = 0`` and ``alpha = 0.5`` give half the cross-entropy.
    """
    log_p = F.log_softmax(logits, dim=-1).gather(1, target.view(-1, 1)).squeeze(1)
    p = log_p.exp()
    alpha_t = torch.where(target == 1, torch.full_like(p, alpha), torch.full_like(p, 1 - alpha))
    loss = -alpha_t * (1 - p).pow(gamma) * log_p
    return loss.mean() if reduction == "mean" else loss


def loss_fn(name: LossName, alpha: float, gamma: float
            ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The selected loss as ``f(logits, target) -> per-sample losses``."""
    if name == "focal":
        return lambda logits, target: focal_loss(logits, target, alpha, gamma, "none")
    if name == "ce":
        return lambda logits, target: F.cross_entropy(logits, target, reduction="none")
    raise ValueError(f"unknown loss {name!r}; known: focal, ce")
