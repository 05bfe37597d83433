"""Relational KD, distance-wise term (RKD-D).

Park et al., "Relational Knowledge Distillation", CVPR 2019 (arXiv:1904.05068).

Features are flattened per sample to e_i. psi(e_i, e_j) = ||e_i - e_j||_2 / mu with
mu = mean_{i != j} ||e_i - e_j||_2 (per model, per batch), and

    L = mean_{i != j} huber(psi_s(i, j) - psi_t(i, j)),  huber(x) = 0.5 x^2 if |x| <= 1 else |x| - 0.5

Only distances are compared, so student and teacher features may have any sizes.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import feature, probe_shape
from edgekd.distill.terms import LossTerm, StepContext, TapProbe
from edgekd.errors import TrainingError


class RKDDistanceConfig(LossConfigBase):
    kind: Literal["rkd_distance"] = "rkd_distance"
    student: str = Field(..., description="student module path (flattened per sample)")
    teacher: str = Field(..., description="teacher module path (flattened per sample)")


def _normalized_distances(e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n = e.shape[0]
    diff = e.unsqueeze(0) - e.unsqueeze(1)
    off = ~torch.eye(n, dtype=torch.bool, device=e.device)
    # sqrt of a clamped square keeps the gradient finite for coincident points
    d = diff.pow(2).sum(-1).clamp_min(1e-12).sqrt()[off]
    return d / d.mean().clamp_min(1e-12), off


def rkd_distance_loss(student_feat: torch.Tensor, teacher_feat: torch.Tensor) -> torch.Tensor:
    """mean over ordered pairs i != j of huber(psi_s - psi_t) (module docstring)."""
    if student_feat.shape[0] < 2:
        raise TrainingError("rkd_distance needs a batch of at least 2 samples",
                            hint="raise train.batch_size (relations need pairs)")
    ps, _ = _normalized_distances(student_feat.flatten(1))
    with torch.no_grad():
        pt, _ = _normalized_distances(teacher_feat.detach().flatten(1).to(student_feat.dtype))
    x = ps - pt
    a = x.abs()
    return torch.where(a <= 1, 0.5 * x.pow(2), a - 0.5).mean()


class RKDDistanceTerm(LossTerm):
    def __init__(self, cfg: RKDDistanceConfig) -> None:
        super().__init__(cfg.kind)
        self.cfg = cfg
        self.student_taps = (cfg.student,)
        self.teacher_taps = (cfg.teacher,)

    def forward(self, ctx: StepContext) -> torch.Tensor:
        s = feature(ctx.student_feats, "student", self.cfg.student, self.cfg.kind)
        t = feature(ctx.teacher_feats, "teacher", self.cfg.teacher, self.cfg.kind)
        return rkd_distance_loss(s, t)


@LOSSES.register(RKDDistanceConfig)
def build_rkd_distance(cfg: RKDDistanceConfig, probe: TapProbe) -> LossTerm:
    probe_shape(probe, "student", cfg.student)
    probe_shape(probe, "teacher", cfg.teacher)
    return RKDDistanceTerm(cfg)
