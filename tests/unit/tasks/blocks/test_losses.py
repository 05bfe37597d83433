"""The ready task losses against their formulas on seeded tensors."""

from __future__ import annotations

import math

import pytest
import torch

from edgekd.errors import UnknownNameError
from edgekd.tasks.blocks import losses as L


def test_cross_entropy_ignores_255_and_matches_the_formula() -> None:
    torch.manual_seed(0)
    z = torch.randn(4, 3)
    y = torch.tensor([0, 2, 255, 1])
    keep = y != 255
    ref = -(torch.log_softmax(z[keep], 1).gather(1, y[keep, None])).mean()
    assert float(L.cross_entropy(z, y)) == pytest.approx(float(ref), rel=1e-6)


def test_regression_losses() -> None:
    p = torch.tensor([[0.0, 2.0]])
    t = torch.tensor([[1.0, 0.0]])
    assert float(L.l1(p, t)) == pytest.approx(1.5)
    assert float(L.mse(p, t)) == pytest.approx(2.5)
    # Huber, beta 1: 0.5 * 1^2 / 1 for |d| = 1, |d| - 0.5 for |d| = 2
    assert float(L.smooth_l1(p, t)) == pytest.approx((0.5 + 1.5) / 2)
    assert float(L.l1(torch.zeros(3, 1), torch.ones(3))) == pytest.approx(1.0)  # scalar targets reshaped


def test_bce_and_dice() -> None:
    z = torch.tensor([[0.0, 2.0]])
    t = torch.tensor([[1.0, 0.0]])
    ref = (math.log(2.0) + math.log(1 + math.exp(2.0))) / 2
    assert float(L.bce(z, t)) == pytest.approx(ref, rel=1e-6)
    p = torch.sigmoid(z)
    dice = 1 - (2 * float((p * t).sum()) + 1) / (float(p.sum()) + 1 + 1)
    assert float(L.dice(z, t)) == pytest.approx(dice, rel=1e-6)
    assert float(L.bce_dice(z, t)) == pytest.approx(ref + dice, rel=1e-6)
    perfect = torch.tensor([[50.0, -50.0]])
    assert float(L.dice(perfect, t)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", sorted(L.LOSSES))
def test_every_loss_has_a_gradient(name: str) -> None:
    torch.manual_seed(0)
    z = torch.randn(2, 1, 4, 4, requires_grad=True)
    t = (torch.rand(2, 1, 4, 4) > 0.5).float()
    if name == "cross_entropy":
        z = torch.randn(2, 3, 4, 4, requires_grad=True)
        t = torch.randint(0, 3, (2, 4, 4))
    loss = L.ready_loss(name)(z, t)
    loss.backward()
    assert loss.ndim == 0 and z.grad is not None and bool(z.grad.abs().sum() > 0)


def test_unknown_loss() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'mse'"):
        L.ready_loss("mes")
