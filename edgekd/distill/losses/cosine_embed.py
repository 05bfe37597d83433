"""Cosine embedding distillation: the student's embedding, through a trainable linear projector,
points where the teacher's does.

As in DistilBERT (Sanh et al., arXiv:1910.01108, the cosine embedding loss between student and
teacher hidden states) and the embedding-alignment of sentence-encoder distillation (Reimers &
Gurevych, arXiv:2004.09813, which uses MSE on the same vectors):

    L = mean_n ( 1 - cos(P(e_s,n), e_t,n) ),   cos(a, b) = a.b / (max(|a|, eps) * max(|b|, eps))

over the positions n of [B, D] or [B, L, D] features (the last axis is the embedding); P is
identity when the widths match and ``project: false``, else a linear map learnt with the student.
Only the direction is matched: the teacher's embedding scale (e.g. a frozen MiniLM) need not be
the student's.
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
    make_projector,
    probe_shape,
)
from edgekd.distill.terms import LossTerm, StepContext, TapProbe
from edgekd.errors import ConfigError


class CosineEmbedConfig(LossConfigBase):
    kind: Literal["cosine_embed"] = "cosine_embed"
    student: str = Field(..., description="student module path of the embedding ([B,D] or [B,L,D])")
    teacher: str = Field(..., description="teacher module path of the embedding")
    project: bool = Field(True, description="learn a linear projector even when the widths match")
    eps: float = Field(1e-8, gt=0)


def cosine_embed_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """mean(1 - cos) over every position (all axes but the last)."""
    t = teacher_emb.detach().to(student_emb.dtype)
    return (1.0 - F.cosine_similarity(student_emb, t, dim=-1, eps=eps)).mean()


class CosineEmbedTerm(ProjectedFeatureTerm):
    def forward(self, ctx: StepContext) -> torch.Tensor:
        s, t = self.pair(ctx, "embedding (after projector)")
        return cosine_embed_loss(s, t, self.cfg.eps)


@LOSSES.register(CosineEmbedConfig)
def build_cosine_embed(cfg: CosineEmbedConfig, probe: TapProbe) -> LossTerm:
    s, t = probe_shape(probe, "student", cfg.student), probe_shape(probe, "teacher", cfg.teacher)
    if len(s) not in (2, 3):
        raise ConfigError(f"loss 'cosine_embed': student tap {cfg.student!r} has shape {tuple(s)}; an embedding "
                          "is [B, D] or [B, L, D]", hint="tap the output of an encoder/pooling module")
    return CosineEmbedTerm(cfg, make_projector(s, t, kind=cfg.kind, always=cfg.project))
