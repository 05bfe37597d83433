"""FitNets hint loss: a learned projector maps the student's hint layer onto the teacher's.

Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015 (arXiv:1412.6550).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import (
    ProjectedFeatureTerm,
    make_projector,
    probe_shape,
)
from edgekd.distill.terms import LossTerm, StepContext, TapProbe


class FitNetConfig(LossConfigBase):
    kind: Literal["fitnet"] = "fitnet"
    student: str = Field(..., description="student module path (the guided layer), e.g. stages.2")
    teacher: str = Field(..., description="teacher module path (the hint layer)")


def fitnet_loss(projected_student: torch.Tensor, teacher_feat: torch.Tensor) -> torch.Tensor:
    """mean over all elements of (r(F_s) - F_t)^2, where ``projected_student`` = r(F_s) is the
    student's guided-layer output after the trainable regressor r (the term's projector).

    The paper's L_HT = 1/2 ||u_h - r(v_g)||^2; we use the mean instead of half the sum so
    the value does not grow with the feature size.
    """
    return (projected_student - teacher_feat.detach().to(projected_student.dtype)).pow(2).mean()


class FitNetTerm(ProjectedFeatureTerm):
    def forward(self, ctx: StepContext) -> torch.Tensor:
        p, t = self.pair(ctx)
        return fitnet_loss(p, t)


@LOSSES.register(FitNetConfig)
def build_fitnet(cfg: FitNetConfig, probe: TapProbe) -> LossTerm:
    s, t = probe_shape(probe, "student", cfg.student), probe_shape(probe, "teacher", cfg.teacher)
    return FitNetTerm(cfg, make_projector(s, t, kind=cfg.kind))
