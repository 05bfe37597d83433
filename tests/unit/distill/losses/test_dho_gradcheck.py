"""DHO's KD-head loss and its inference-time combination pass torch.autograd.gradcheck (float64)."""

from __future__ import annotations

import torch

from edgekd.distill.losses.dho import combine_heads, dho_kd_loss


def test_dho_kd_loss_gradcheck() -> None:
    g = torch.Generator().manual_seed(7)
    zkd = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    zt = torch.randn(4, 5, generator=g, dtype=torch.float64)  # the teacher is detached by design
    for temperature in (0.5, 1.0, 4.0):
        assert torch.autograd.gradcheck(lambda a, b, t=temperature: dho_kd_loss(a, b, t), (zkd, zt))


def test_combine_heads_gradcheck() -> None:
    g = torch.Generator().manual_seed(8)
    ce = torch.randn(3, 6, generator=g, dtype=torch.float64, requires_grad=True)
    kd = torch.randn(3, 6, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: combine_heads(a, b, alpha=0.3, kd_temperature=2.0), (ce, kd))
