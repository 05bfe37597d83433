"""Relational KD, distance-wise term (RKD-D).

Park et al., "Relational Knowledge Distillation", CVPR 2019 (arXiv:1904.05068); official
code github.com/lenscloth/RKD.

Features are flattened per sample to e_i. psi(e_i, e_j) = ||e_i - e_j||_2 / mu with
mu = mean_{i != j} ||e_i - e_j||_2 (per model, per batch), huber(x) = 0.5 x^2 if |x| <= 1
else |x| - 0.5 (smooth L1), and

    pairs: full (default, the official code):  L = (1/N^2) sum_{i,j} huber(psi_s(i, j) - psi_t(i, j))
    pairs: off_diagonal (edgekd's variant):    L = (1/(N(N-1))) sum_{i != j} huber(...)

The diagonal terms are 0 (psi(i, i) = 0 in both models), so the two differ only by the factor
N/(N-1): full = off_diagonal * (N-1)/N. The official code's mean is over the whole N x N matrix;
off_diagonal keeps the loss's scale independent of the batch size (kept for comparisons with
runs made before issue 22). mu: the official code averages the positive distances only, edgekd
every off-diagonal one; they differ only when two samples coincide exactly.

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
    pairs: Literal["full", "off_diagonal"] = Field("full", description="full: mean over the N x N matrix "
                                                   "(official); off_diagonal: over the N(N-1) pairs i != j")


def _normalized_distances(e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n = e.shape[0]
    diff = e.unsqueeze(0) - e.unsqueeze(1)
    off = ~torch.eye(n, dtype=torch.bool, device=e.device)
    # sqrt of a clamped square keeps the gradient finite for coincident points
    d = diff.pow(2).sum(-1).clamp_min(1e-12).sqrt()[off]
    return d / d.mean().clamp_min(1e-12), off


def rkd_distance_loss(student_feat: torch.Tensor, teacher_feat: torch.Tensor, pairs: str = "full") -> torch.Tensor:
    """The module docstring's L: huber(psi_s - psi_t) summed over pairs i != j, divided by N^2 (``full``)
    or N(N-1) (``off_diagonal``)."""
    if pairs not in ("full", "off_diagonal"):
        raise ValueError(f"pairs must be full or off_diagonal, got {pairs!r}")
    if student_feat.shape[0] < 2:
        raise TrainingError("rkd_distance needs a batch of at least 2 samples",
                            hint="raise train.batch_size (relations need pairs)")
    ps, _ = _normalized_distances(student_feat.flatten(1))
    with torch.no_grad():
        pt, _ = _normalized_distances(teacher_feat.detach().flatten(1).to(student_feat.dtype))
    x = ps - pt
    a = x.abs()
    n = student_feat.shape[0]
    per_pair = torch.where(a <= 1, 0.5 * x.pow(2), a - 0.5)
    return per_pair.sum() / (n * n if pairs == "full" else n * (n - 1))


class RKDDistanceTerm(LossTerm):
    def __init__(self, cfg: RKDDistanceConfig) -> None:
        super().__init__(cfg.kind)
        self.cfg = cfg
        self.student_taps = (cfg.student,)
        self.teacher_taps = (cfg.teacher,)

    def forward(self, ctx: StepContext) -> torch.Tensor:
        s = feature(ctx.student_feats, "student", self.cfg.student, self.cfg.kind)
        t = feature(ctx.teacher_feats, "teacher", self.cfg.teacher, self.cfg.kind)
        return rkd_distance_loss(s, t, self.cfg.pairs)


@LOSSES.register(RKDDistanceConfig)
def build_rkd_distance(cfg: RKDDistanceConfig, probe: TapProbe) -> LossTerm:
    probe_shape(probe, "student", cfg.student)
    probe_shape(probe, "teacher", cfg.teacher)
    return RKDDistanceTerm(cfg)
