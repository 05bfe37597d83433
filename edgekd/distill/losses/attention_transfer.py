"""Attention transfer (AT): match normalised spatial attention maps.

Zagoruyko & Komodakis, "Paying More Attention to Attention: Improving the Performance of
Convolutional Neural Networks via Attention Transfer", ICLR 2017 (arXiv:1612.03928).

Attention map of a [B, C, H, W] activation A: Q = vec(sum_c |A_c|^p) (p = 2), and

    L = mean_b || Q_s,b / ||Q_s,b||_2 - Q_t,b / ||Q_t,b||_2 ||_2^2

(the paper's beta/2 factor is left to the term's weight). Channel counts may differ
(the map sums them out); if the grids differ the student's map is resized bilinearly to
the teacher's before normalising.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import feature, probe_shape
from edgekd.distill.terms import LossTerm, StepContext, TapProbe
from edgekd.errors import ConfigError


class AttentionTransferConfig(LossConfigBase):
    kind: Literal["attention_transfer"] = "attention_transfer"
    student: str = Field(..., description="student module path of a [B,C,H,W] feature")
    teacher: str = Field(..., description="teacher module path of a [B,C',H',W'] feature")
    p: float = Field(2.0, gt=0, description="exponent of the attention map sum_c |A_c|^p")


def attention_map(feat: torch.Tensor, p: float = 2.0, size: tuple[int, int] | None = None) -> torch.Tensor:
    """[B, C, H, W] -> L2-normalised [B, H*W] map of sum_c |A_c|^p (resized to ``size`` first)."""
    a = feat.abs().pow(p).sum(1, keepdim=True)
    if size is not None and tuple(a.shape[2:]) != tuple(size):
        a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
    a = a.flatten(1)
    return a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)


def attention_transfer_loss(student_feat: torch.Tensor, teacher_feat: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """mean_b || Q_s/||Q_s|| - Q_t/||Q_t|| ||_2^2 (module docstring)."""
    size = (teacher_feat.shape[2], teacher_feat.shape[3])
    qs = attention_map(student_feat, p, size)
    qt = attention_map(teacher_feat.detach().to(student_feat.dtype), p)
    return (qs - qt).pow(2).sum(1).mean()


class AttentionTransferTerm(LossTerm):
    def __init__(self, cfg: AttentionTransferConfig) -> None:
        super().__init__(cfg.kind)
        self.cfg = cfg
        self.student_taps = (cfg.student,)
        self.teacher_taps = (cfg.teacher,)

    def forward(self, ctx: StepContext) -> torch.Tensor:
        s = feature(ctx.student_feats, "student", self.cfg.student, self.cfg.kind)
        t = feature(ctx.teacher_feats, "teacher", self.cfg.teacher, self.cfg.kind)
        return attention_transfer_loss(s, t, self.cfg.p)


@LOSSES.register(AttentionTransferConfig)
def build_attention_transfer(cfg: AttentionTransferConfig, probe: TapProbe) -> LossTerm:
    s, t = probe_shape(probe, "student", cfg.student), probe_shape(probe, "teacher", cfg.teacher)
    if len(s) != 4 or len(t) != 4:
        raise ConfigError(f"loss 'attention_transfer' needs 4-D [B,C,H,W] features; student {cfg.student!r} is "
                          f"{tuple(s)}, teacher {cfg.teacher!r} is {tuple(t)}.",
                          hint="tap convolutional feature maps")
    return AttentionTransferTerm(cfg)
