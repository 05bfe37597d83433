"""DIST: distillation from a stronger teacher by correlation, not exact matching.

Huang et al., "Knowledge Distillation from A Stronger Teacher", NeurIPS 2022
(arXiv:2205.10536).

With Y = softmax(Z / T) for a batch [B, C] and Pearson correlation rho_p:

    L_inter = 1 - (1/B) sum_i rho_p(Y_s[i, :], Y_t[i, :])      (per sample, across classes)
    L_intra = 1 - (1/C) sum_j rho_p(Y_s[:, j], Y_t[:, j])      (per class, across the batch)
    L = T^2 (beta L_inter + gamma L_intra)

Dense / sequence logits are flattened to positions x classes first (each position is a
"sample").
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import (
    check_output_index,
    check_same_shape,
    flatten_positions,
    student_output,
    teacher_output,
)
from edgekd.distill.terms import LossTerm, StepContext, TapProbe

_EPS = 1e-12  # guards constant rows only; 1e-8 biased small-variance softmax rows by ~1e-6


class DISTConfig(LossConfigBase):
    kind: Literal["dist"] = "dist"
    beta: float = Field(1.0, ge=0, description="weight of the inter-class relation (per sample)")
    gamma: float = Field(1.0, ge=0, description="weight of the intra-class relation (per class)")
    temperature: float = Field(1.0, gt=0, description="softmax temperature T")
    output: int = Field(0, ge=0, description="index into the student's and teacher's outputs")
    class_dim: int | None = Field(None, description="class axis; null = 1, or last for [B,L,V] sequences")


def pearson_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each row pair of [N, D] tensors -> [N] (eps-guarded)."""
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + _EPS)


def dist_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, beta: float = 1.0, gamma: float = 1.0,
              temperature: float = 1.0, class_dim: int | None = None) -> torch.Tensor:
    """T^2 (beta L_inter + gamma L_intra) (module docstring)."""
    s, _ = flatten_positions(student_logits, class_dim)
    t, _ = flatten_positions(teacher_logits.detach().to(student_logits.dtype), class_dim)
    ys, yt = (s / temperature).softmax(1), (t / temperature).softmax(1)
    inter = 1 - pearson_rows(ys, yt).mean()
    intra = 1 - pearson_rows(ys.T, yt.T).mean()
    return temperature**2 * (beta * inter + gamma * intra)


class DISTTerm(LossTerm):
    def __init__(self, cfg: DISTConfig) -> None:
        super().__init__(cfg.kind)
        self.cfg = cfg

    def forward(self, ctx: StepContext) -> torch.Tensor:
        c = self.cfg
        s, t = student_output(ctx, c.output, c.kind), teacher_output(ctx, c.output, c.kind)
        check_same_shape(s, t, c.kind)
        return dist_loss(s, t, beta=c.beta, gamma=c.gamma, temperature=c.temperature, class_dim=c.class_dim)


@LOSSES.register(DISTConfig)
def build_dist(cfg: DISTConfig, probe: TapProbe) -> LossTerm:
    check_output_index(cfg.kind, cfg.output, probe)
    return DISTTerm(cfg)
