"""Decoupled knowledge distillation (DKD).

Zhao et al., "Decoupled Knowledge Distillation", CVPR 2022 (arXiv:2203.08679).

With p = softmax(z / T), target class g (labels), b = [p_g, 1 - p_g] and p^ the softmax
over the non-target classes only (z_g removed):

    TCKD = KL(b_t || b_s),   NCKD = KL(p^_t || p^_s),   L = (alpha TCKD + beta NCKD) * T^2

averaged over positions ([B,C] or dense / sequence logits with one label per position;
labels equal to ``ignore_index`` are skipped).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import (
    batch_tensor,
    check_output_index,
    check_same_shape,
    flatten_positions,
    kl_rows,
    masked_mean,
    student_output,
    teacher_output,
)
from edgekd.distill.terms import LossTerm, StepContext, TapProbe
from edgekd.errors import TrainingError


class DKDConfig(LossConfigBase):
    kind: Literal["dkd"] = "dkd"
    alpha: float = Field(1.0, ge=0, description="weight of target-class KD (TCKD)")
    beta: float = Field(8.0, ge=0, description="weight of non-target-class KD (NCKD)")
    temperature: float = Field(4.0, gt=0, description="softmax temperature T")
    target_key: str = Field("label", description="batch key of the integer class labels")
    output: int = Field(0, ge=0, description="index into the student's and teacher's outputs")
    class_dim: int | None = Field(None, description="class axis; null = 1, or last for [B,L,V] sequences")
    ignore_index: int = Field(-100, description="label value skipped (padding / void)")


def _split(z: torch.Tensor, target: torch.Tensor, T: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(log b [N, 2], log p^ [N, C-1]) for logits [N, C] and targets [N]."""
    n, c = z.shape
    onehot = F.one_hot(target, c).bool()
    zt = z / T
    lse_all = zt.logsumexp(1)
    non = zt[~onehot].reshape(n, c - 1)
    lse_non = non.logsumexp(1)
    log_b = torch.stack([zt[onehot] - lse_all, lse_non - lse_all], 1)
    return log_b, non - lse_non.unsqueeze(1)


def dkd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor, *,
             alpha: float = 1.0, beta: float = 8.0, temperature: float = 4.0, class_dim: int | None = None,
             ignore_index: int = -100) -> torch.Tensor:
    """(alpha TCKD + beta NCKD) T^2 averaged over labelled positions (module docstring)."""
    s, positions = flatten_positions(student_logits, class_dim)
    t, _ = flatten_positions(teacher_logits.detach().to(student_logits.dtype), class_dim)
    y = target.reshape(-1).long()
    if y.numel() != s.shape[0]:
        raise TrainingError(f"dkd: {y.numel()} labels for {s.shape[0]} positions of logits {tuple(student_logits.shape)}",
                            hint="target_key must name one label per position")
    valid = y != ignore_index
    y = torch.where(valid, y, torch.zeros_like(y))
    bs, ns = _split(s, y, temperature)
    bt, nt = _split(t, y, temperature)
    per = alpha * kl_rows(bt, bs) + beta * kl_rows(nt, ns)
    return masked_mean(per, valid, None) * temperature**2


class DKDTerm(LossTerm):
    def __init__(self, cfg: DKDConfig) -> None:
        super().__init__(cfg.kind)
        self.cfg = cfg

    def forward(self, ctx: StepContext) -> torch.Tensor:
        c = self.cfg
        s, t = student_output(ctx, c.output, c.kind), teacher_output(ctx, c.output, c.kind)
        check_same_shape(s, t, c.kind)
        y = batch_tensor(ctx, c.target_key, c.kind, "target_key")
        return dkd_loss(s, t, y, alpha=c.alpha, beta=c.beta, temperature=c.temperature, class_dim=c.class_dim,
                        ignore_index=c.ignore_index)


@LOSSES.register(DKDConfig)
def build_dkd(cfg: DKDConfig, probe: TapProbe) -> LossTerm:
    check_output_index(cfg.kind, cfg.output, probe)
    return DKDTerm(cfg)
