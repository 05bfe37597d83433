"""Visual-switch distillation: formula on seeded logits, gradients through a frozen teacher pathway,
and the errors for a teacher without the switch entry point."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.visual_switch import VisualSwitchConfig, visual_switch_loss
from edgekd.errors import ConfigError


def _kl_ref(p_logits: np.ndarray, q_logits: np.ndarray, temp: float) -> float:
    """mean over rows of KL(softmax(p/T) || softmax(q/T)) * T^2, rows = every axis but the last."""
    p2, q2 = p_logits.reshape(-1, p_logits.shape[-1]) / temp, q_logits.reshape(-1, q_logits.shape[-1]) / temp
    total = 0.0
    for a, b in zip(p2, q2, strict=True):
        lp = a - a.max() - math.log(np.exp(a - a.max()).sum())
        lq = b - b.max() - math.log(np.exp(b - b.max()).sum())
        total += float((np.exp(lp) * (lp - lq)).sum())
    return total / len(p2) * temp**2


def test_kl_formula_on_sequences(gen: torch.Generator) -> None:
    zs, zsw, zt = (torch.randn(2, 3, 7, generator=gen, dtype=torch.float64) for _ in range(3))
    got = visual_switch_loss(zs, zsw, zt, temperature=2.0, reference_weight=0.3).item()
    ref = _kl_ref(zt.numpy(), zsw.numpy(), 2.0) + 0.3 * _kl_ref(zsw.numpy(), zs.numpy(), 2.0)
    assert got == pytest.approx(ref, rel=1e-10)


def test_zero_when_all_agree_and_dbild_runs(gen: torch.Generator) -> None:
    z = torch.randn(4, 3, 9, generator=gen, dtype=torch.float64)
    assert visual_switch_loss(z, z.clone(), z.clone()).item() == pytest.approx(0.0, abs=1e-12)
    other = torch.randn(4, 3, 9, generator=gen, dtype=torch.float64)
    assert visual_switch_loss(z, other, z.clone(), divergence="dbild").item() > 0


class _Teacher(nn.Module):
    """vision: conv 2->4; pathway: mean-pool -> linear to 3 positions x 5 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.vision = nn.Conv2d(2, 4, 1)
        self.head = nn.Linear(4, 15)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from_visual(self.vision(x), x)

    def forward_from_visual(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.head(v.mean((2, 3))).view(-1, 3, 5)


def test_term_sends_gradient_through_frozen_teacher_to_projector(make_ctx, make_probe, gen: torch.Generator) -> None:
    teacher = _Teacher().double()
    for p in teacher.parameters():
        p.requires_grad_(False)
    x = torch.randn(2, 2, 3, 3, generator=gen, dtype=torch.float64)
    v_s = torch.randn(2, 3, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    v_t = teacher.vision(x)
    z_t = teacher(x)
    z_s = torch.randn(2, 3, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    cfg = VisualSwitchConfig(student="vision", teacher="vision", reference_weight=0.5)
    term = LOSSES.get(cfg)(cfg, make_probe(student_out=[z_s], teacher_out=[z_t], student_feats={"vision": v_s},
                                           teacher_feats={"vision": v_t})).double()
    ctx = make_ctx(student_out=[z_s], teacher_out=[z_t], student_feats={"vision": v_s},
                   teacher_feats={"vision": v_t}, inputs=[x])
    ctx.run_teacher = SimpleNamespace(module=teacher)
    loss = term(ctx)
    z_sw = teacher.forward_from_visual(term.projector(v_s), x)
    ref = _kl_ref(z_t.numpy(), z_sw.detach().numpy(), 1.0) + 0.5 * _kl_ref(z_sw.detach().numpy(),
                                                                          z_s.detach().numpy(), 1.0)
    assert loss.item() == pytest.approx(ref, rel=1e-9)
    loss.backward()
    assert term.projector.proj.weight.grad is not None and term.projector.proj.weight.grad.abs().sum() > 0
    assert v_s.grad is not None and v_s.grad.abs().sum() > 0  # through the frozen teacher
    assert z_s.grad is not None and z_s.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


def test_teacher_without_method_is_a_config_error(make_ctx, make_probe) -> None:
    v = torch.zeros(2, 4, 3, 3)
    z = torch.zeros(2, 3, 5)
    cfg = VisualSwitchConfig(student="vision", teacher="vision", teacher_method="nope")
    term = LOSSES.get(cfg)(cfg, make_probe(student_out=[z], teacher_out=[z], student_feats={"vision": v},
                                           teacher_feats={"vision": v}))
    ctx = make_ctx(student_out=[z], teacher_out=[z], student_feats={"vision": v}, teacher_feats={"vision": v})
    ctx.run_teacher = SimpleNamespace(module=_Teacher())
    with pytest.raises(ConfigError, match="teacher_method='nope'"):
        term(ctx)


def test_max_samples_switches_only_the_first_rows(make_ctx, make_probe, gen: torch.Generator) -> None:
    teacher = _Teacher().double()
    x = torch.randn(4, 2, 3, 3, generator=gen, dtype=torch.float64)
    v_s = torch.randn(4, 4, 3, 3, generator=gen, dtype=torch.float64)
    v_t, z_t = teacher.vision(x).detach(), teacher(x).detach()
    z_s = torch.randn(4, 3, 5, generator=gen, dtype=torch.float64)
    feats = {"student_feats": {"vision": v_s}, "teacher_feats": {"vision": v_t}}
    losses = []
    for n in (2, None):
        cfg = VisualSwitchConfig(student="vision", teacher="vision", max_samples=n)
        term = LOSSES.get(cfg)(cfg, make_probe(student_out=[z_s], teacher_out=[z_t], **feats)).double()
        torch.manual_seed(0)
        torch.nn.init.eye_(term.projector.proj.weight[:, :, 0, 0])
        torch.nn.init.zeros_(term.projector.proj.bias)
        ctx = make_ctx(student_out=[z_s], teacher_out=[z_t], inputs=[x], **feats)
        ctx.run_teacher = SimpleNamespace(module=teacher)
        losses.append(term(ctx).item())
    z_sw = teacher.forward_from_visual(v_s, x).detach()
    ref2 = _kl_ref(z_t[:2].numpy(), z_sw[:2].numpy(), 1.0) + 0.5 * _kl_ref(z_sw[:2].numpy(), z_s[:2].numpy(), 1.0)
    ref4 = _kl_ref(z_t.numpy(), z_sw.numpy(), 1.0) + 0.5 * _kl_ref(z_sw.numpy(), z_s.numpy(), 1.0)
    assert losses[0] == pytest.approx(ref2, rel=1e-9) and losses[1] == pytest.approx(ref4, rel=1e-9)
