"""Channel-wise distillation (CWD): each channel's activation map becomes a spatial
distribution; the student matches the teacher's per channel with KL.

Shu et al., "Channel-wise Knowledge Distillation for Dense Prediction", ICCV 2021
(arXiv:2011.13256).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import (
    ProjectedFeatureTerm,
    kl_rows,
    make_projector,
    probe_shape,
)
from edgekd.distill.terms import LossTerm, StepContext, TapProbe
from edgekd.errors import ConfigError


class CWDConfig(LossConfigBase):
    kind: Literal["cwd"] = "cwd"
    student: str = Field(..., description="student module path of a [B,C,H,W] feature (or logits map)")
    teacher: str = Field(..., description="teacher module path of a [B,C,H,W] feature")
    temperature: float = Field(4.0, gt=0, description="spatial softmax temperature tau")


def cwd_loss(student_feat: torch.Tensor, teacher_feat: torch.Tensor, temperature: float = 4.0) -> torch.Tensor:
    """tau^2 / (B C) * sum_{b,c} KL(phi(y^T_{b,c}) || phi(y^S_{b,c})),

    phi(y_c)_i = exp(y_{c,i} / tau) / sum_j exp(y_{c,j} / tau) over the H*W positions i of
    channel c. Inputs are [B, C, H, W] of equal shape (project the student first).
    """
    if student_feat.ndim != 4:
        raise ValueError(f"cwd needs [B,C,H,W] features, got {tuple(student_feat.shape)}")
    b, c = student_feat.shape[:2]
    s = student_feat.reshape(b * c, -1) / temperature
    t = teacher_feat.detach().to(student_feat.dtype).reshape(b * c, -1) / temperature
    return kl_rows(F.log_softmax(t, -1), F.log_softmax(s, -1)).mean() * temperature**2


class CWDTerm(ProjectedFeatureTerm):
    def forward(self, ctx: StepContext) -> torch.Tensor:
        s, t = self.pair(ctx)
        return cwd_loss(s, t, self.cfg.temperature)


@LOSSES.register(CWDConfig)
def build_cwd(cfg: CWDConfig, probe: TapProbe) -> LossTerm:
    s, t = probe_shape(probe, "student", cfg.student), probe_shape(probe, "teacher", cfg.teacher)
    if len(s) != 4 or len(t) != 4:
        raise ConfigError(f"loss 'cwd' needs 4-D [B,C,H,W] features; student {cfg.student!r} is {tuple(s)}, "
                          f"teacher {cfg.teacher!r} is {tuple(t)}.",
                          hint="tap convolutional feature maps, or use fitnet for other layouts")
    return CWDTerm(cfg, make_projector(s, t, kind=cfg.kind))
