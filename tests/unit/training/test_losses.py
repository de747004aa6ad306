import math

import pytest
import torch
import torch.nn.functional as F

from training.losses import focal_loss, loss_fn


def test_focal_loss_matches_hand_computed_value() -> None:
    # p(anomaly) = 3/4 for both rows; row 0 is an anomaly, row 1 is normal.
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])
    target = torch.tensor([1, 0])
    # anomaly: -0.75 * (1 - 0.75)^2 * ln 0.75 ; normal: -0.25 * (1 - 0.25)^2 * ln 0.25
    expected = (0.75 * 0.0625 * -math.log(0.75) + 0.25 * 0.5625 * -math.log(0.25)) / 2
    assert expected == pytest.approx(0.1042167, abs=1e-6)
    got = focal_loss(logits, target, alpha=0.75, gamma=2.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_focal_loss_without_focusing_is_half_cross_entropy() -> None:
    logits = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([0, 1, 0, 0, 1, 0, 0, 1])
    focal = focal_loss(logits, target, alpha=0.5, gamma=0.0)
    assert focal.item() == pytest.approx(0.5 * F.cross_entropy(logits, target).item(), rel=1e-6)


def test_loss_fn_returns_per_sample_losses() -> None:
    logits, target = torch.zeros(3, 2), torch.tensor([0, 1, 1])
    for name in ("focal", "ce"):
        assert loss_fn(name, 0.75, 2.0)(logits, target).shape == (3,)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        loss_fn("hinge", 0.5, 2.0)  # type: ignore[arg-type]
