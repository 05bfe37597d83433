"""Generalised Jensen-Shannon divergence, as in GKD.

Agarwal et al., "On-Policy Distillation of Language Models: Learning from Self-Generated
Mistakes" (GKD), ICLR 2024 (arXiv:2306.13649), eq. for D_JSD(beta):

    JSD(beta)(P || Q) = beta * KL(P || M) + (1 - beta) * KL(Q || M),  M = beta P + (1 - beta) Q

with P the teacher and Q the student distribution (temperature T, result scaled by T^2),
averaged over positions (tokens). As beta -> 0 it behaves like beta * forward KL
(KL(P || Q)), as beta -> 1 like (1 - beta) * reverse KL; beta = 0.5 is the symmetric JSD.
This is the per-token divergence on given sequences; on-policy sampling is the loop's job.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import (
    LogitsPairTerm,
    check_output_index,
    flatten_positions,
    kl_rows,
    masked_mean,
)
from edgekd.distill.terms import LossTerm, TapProbe


class JSDConfig(LossConfigBase):
    kind: Literal["jsd"] = "jsd"
    beta: float = Field(0.5, gt=0, lt=1, description="interpolation: M = beta P_teacher + (1-beta) Q_student")
    temperature: float = Field(1.0, gt=0, description="softmax temperature T (result scaled by T^2)")
    output: int = Field(0, ge=0, description="index into the student's and teacher's outputs")
    class_dim: int | None = Field(None, description="class axis; null = 1, or last for [B,L,V] sequences")
    mask_key: str | None = Field(None, description="batch key of a 0/1 mask over positions (e.g. padding)")


def generalized_jsd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, beta: float = 0.5,
                         temperature: float = 1.0, *, class_dim: int | None = None,
                         mask: torch.Tensor | None = None) -> torch.Tensor:
    """T^2 * mean over positions of JSD(beta)(P_t || Q_s) (see the module docstring)."""
    if not 0 < beta < 1:
        raise ValueError(f"beta must be in (0, 1), got {beta}")
    s, positions = flatten_positions(student_logits, class_dim)
    t, _ = flatten_positions(teacher_logits.detach().to(student_logits.dtype), class_dim)
    log_q, log_p = F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1)
    # log M computed in log space, stable when either distribution underflows
    log_m = torch.logsumexp(torch.stack([log_p + math.log(beta), log_q + math.log(1 - beta)]), dim=0)
    jsd = beta * kl_rows(log_p, log_m) + (1 - beta) * kl_rows(log_q, log_m)
    return masked_mean(jsd, mask, positions) * temperature**2



@LOSSES.register(JSDConfig)
def build_jsd(cfg: JSDConfig, probe: TapProbe) -> LossTerm:
    check_output_index(cfg.kind, cfg.output, probe)
    return LogitsPairTerm(cfg, lambda s, t, mask: generalized_jsd_loss(s, t, cfg.beta, cfg.temperature, class_dim=cfg.class_dim, mask=mask))
