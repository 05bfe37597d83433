"""Reverse KL distillation: KL(student || teacher), mode-seeking.

Used for generative students in MiniLLM (Gu et al., "MiniLLM: Knowledge Distillation of
Large Language Models", ICLR 2024, arXiv:2306.08543) and as the beta -> 1 end of GKD's
generalised JSD (Agarwal et al., ICLR 2024, arXiv:2306.13649). Here it is the per-token
(per-position) divergence on fixed data, not MiniLLM's policy-gradient estimator.
"""

from __future__ import annotations

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


class ReverseKLConfig(LossConfigBase):
    kind: Literal["reverse_kl"] = "reverse_kl"
    temperature: float = Field(1.0, gt=0, description="softmax temperature T (result scaled by T^2)")
    output: int = Field(0, ge=0, description="index into the student's and teacher's outputs")
    class_dim: int | None = Field(None, description="class axis; null = 1, or last for [B,L,V] sequences")
    mask_key: str | None = Field(None, description="batch key of a 0/1 mask over positions (e.g. padding)")


def reverse_kl_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0, *,
                    class_dim: int | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
    """T^2 * mean over positions of KL(p_s^T || p_t^T) = sum_c p_s,c (log p_s,c - log p_t,c)."""
    s, positions = flatten_positions(student_logits, class_dim)
    t, _ = flatten_positions(teacher_logits.detach().to(student_logits.dtype), class_dim)
    kl = kl_rows(F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1))
    return masked_mean(kl, mask, positions) * temperature**2



@LOSSES.register(ReverseKLConfig)
def build_reverse_kl(cfg: ReverseKLConfig, probe: TapProbe) -> LossTerm:
    check_output_index(cfg.kind, cfg.output, probe)
    return LogitsPairTerm(cfg, lambda s, t, mask: reverse_kl_loss(s, t, cfg.temperature, class_dim=cfg.class_dim, mask=mask))
