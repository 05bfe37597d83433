"""TRG: knowledge distillation via a token-level relationship graph, plus a contextual loss.

Zhang, Liu & He, "Knowledge Distillation via Token-level Relationship Graph", 2023
(arXiv:2306.12442). The idea: tokens (ViT tokens, or the H*W positions of a CNN feature
map) are the nodes of a graph whose edges are token similarities across the whole batch
(so cross-instance relations between tokens are transferred), and a token-wise
contextual loss transfers the inner-instance context.

OUR READING (we had the abstract and summaries, not the method section, while writing
this; check before quoting numbers as TRG's):

1. Graph loss. Student tokens are projected to the teacher's width, every token is
   L2-normalised, and M nodes are taken (all B*N tokens, or a random subset of
   ``max_nodes`` shared by both models). Row i of the graph is the distribution
   A_i,j = softmax_{j != i}(x_i . x_j / tau). L_graph = mean_i KL(A^t_i || A^s_i).
2. Contextual loss (Mechrez et al., "The Contextual Loss for Image Transformation with
   Non-Aligned Data", ECCV 2018), per instance between its student tokens x_i and teacher
   tokens y_j (at most ``context_tokens`` random positions, the same in both models;
   both centred by the teacher tokens' mean): d_ij = 1 - cos(x_i, y_j),
   d~_ij = d_ij / (min_k d_ik + eps), w_ij = exp((1 - d~_ij) / h),
   CX_ij = w_ij / sum_k w_ik, CX = (1/N) sum_j max_i CX_ij, L_cx = mean_b -log CX_b.

L = L_graph + context_weight * L_cx.

What follows the paper (its abstract): tokens as graph nodes with edges across the whole
batch (cross-instance relations), the teacher's graph transferred to the student, plus a
token-wise contextual loss for the inner-instance context. What is edgekd's choice: every
formula detail above (L2-normalised tokens, softmax edges with tau = 0.1, row-wise KL, node and
token subsampling, Mechrez et al.'s CX with teacher-mean centring and h = 0.5, weight 1).
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

_MASKED = -1e30


class TRGConfig(LossConfigBase):
    kind: Literal["trg"] = "trg"
    student: str = Field(..., description="student module path ([B,C,H,W], [B,L,D] or [B,D])")
    teacher: str = Field(..., description="teacher module path")
    temperature: float = Field(0.1, gt=0, description="tau of the graph's edge softmax")
    context_weight: float = Field(1.0, ge=0, description="weight of the contextual loss")
    bandwidth: float = Field(0.5, gt=0, description="h of the contextual loss")
    max_nodes: int | None = Field(512, ge=2, description="random token subset for the batch graph; null = all")
    context_tokens: int | None = Field(
        256, ge=1, description="random token positions per instance for the contextual loss (its cost is "
        "B*N^2); null = all")


def to_tokens(feat: torch.Tensor) -> torch.Tensor:
    """[B,C,H,W] -> [B, H*W, C]; [B,L,D] as is; [B,D] -> [B, 1, D]."""
    if feat.ndim == 4:
        return feat.flatten(2).transpose(1, 2)
    if feat.ndim == 3:
        return feat
    if feat.ndim == 2:
        return feat.unsqueeze(1)
    raise ValueError(f"trg: cannot make tokens from a feature of shape {tuple(feat.shape)}")


def graph_loss(student_tokens: torch.Tensor, teacher_tokens: torch.Tensor, temperature: float = 0.1,
               nodes: torch.Tensor | None = None) -> torch.Tensor:
    """mean_i KL(A^t_i || A^s_i) over the token graph (module docstring, part 1).
    ``nodes`` selects rows of the flattened [B*N, D] token set (default: all)."""
    xs = F.normalize(student_tokens.reshape(-1, student_tokens.shape[-1]), dim=1)
    xt = F.normalize(teacher_tokens.detach().reshape(-1, teacher_tokens.shape[-1]).to(xs.dtype), dim=1)
    if nodes is not None:
        xs, xt = xs[nodes], xt[nodes]
    eye = torch.eye(xs.shape[0], dtype=torch.bool, device=xs.device)
    ls = (xs @ xs.T / temperature).masked_fill(eye, _MASKED)
    lt = (xt @ xt.T / temperature).masked_fill(eye, _MASKED)
    return kl_rows(F.log_softmax(lt, 1), F.log_softmax(ls, 1)).mean()


def contextual_loss(student_tokens: torch.Tensor, teacher_tokens: torch.Tensor, bandwidth: float = 0.5,
                    eps: float = 1e-5) -> torch.Tensor:
    """mean_b -log CX(student_b, teacher_b) (module docstring, part 2); tokens [B, N, D]."""
    y = teacher_tokens.detach().to(student_tokens.dtype)
    mu = y.mean(1, keepdim=True)
    x = F.normalize(student_tokens - mu, dim=2)
    y = F.normalize(y - mu, dim=2)
    d = 1 - x @ y.transpose(1, 2)  # [B, N_x, N_y], d_ij
    d_rel = d / (d.min(dim=2, keepdim=True).values + eps)
    w = torch.exp((1 - d_rel) / bandwidth)
    cx = w / w.sum(dim=2, keepdim=True)
    score = cx.max(dim=1).values.mean(dim=1)  # (1/N) sum_j max_i CX_ij
    return -torch.log(score.clamp_min(1e-12)).mean()


class TRGTerm(ProjectedFeatureTerm):
    def forward(self, ctx: StepContext) -> torch.Tensor:
        c = self.cfg
        s, t = self.pair(ctx)
        ts, tt = to_tokens(s), to_tokens(t)
        total = ts.shape[0] * ts.shape[1]
        nodes = None
        if c.max_nodes is not None and total > c.max_nodes:
            nodes = torch.randperm(total, device=ts.device)[: c.max_nodes]
        loss = graph_loss(ts, tt, c.temperature, nodes)
        if c.context_weight > 0:
            if c.context_tokens is not None and ts.shape[1] > c.context_tokens:
                pos = torch.randperm(ts.shape[1], device=ts.device)[: c.context_tokens]
                ts, tt = ts[:, pos], tt[:, pos]
            loss = loss + c.context_weight * contextual_loss(ts, tt, c.bandwidth)
        return loss


@LOSSES.register(TRGConfig)
def build_trg(cfg: TRGConfig, probe: TapProbe) -> LossTerm:
    s, t = probe_shape(probe, "student", cfg.student), probe_shape(probe, "teacher", cfg.teacher)
    return TRGTerm(cfg, make_projector(s, t, kind=cfg.kind))
