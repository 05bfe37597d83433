"""Hinton knowledge distillation: KL between temperature-softened teacher and student.

Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015
(arXiv:1503.02531).
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


class HintonKDConfig(LossConfigBase):
    kind: Literal["hinton_kd"] = "hinton_kd"
    temperature: float = Field(4.0, gt=0, description="softmax temperature T (T^2 rescales the gradient)")
    output: int = Field(0, ge=0, description="index into the student's and teacher's outputs")
    class_dim: int | None = Field(
        None, description="class axis; null = 1 for [B,C] and [B,C,H,W], last for sequences [B,L,V]")
    mask_key: str | None = Field(None, description="batch key of a 0/1 mask over positions (e.g. padding)")


def hinton_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0, *,
                   class_dim: int | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
    """T^2 * mean over positions of KL(p_t^T || p_s^T).

    p^T = softmax(z / T) over the class axis; positions are every other axis (the batch,
    pixels of a [B,C,H,W] map, tokens of a [B,L,V] sequence), averaged, counting only
    positions where ``mask`` (shape = positions) is nonzero.
    KL(p_t || p_s) = sum_c p_t,c (log p_t,c - log p_s,c).
    """
    s, positions = flatten_positions(student_logits, class_dim)
    t, _ = flatten_positions(teacher_logits.detach().to(student_logits.dtype), class_dim)
    kl = kl_rows(F.log_softmax(t / temperature, -1), F.log_softmax(s / temperature, -1))
    return masked_mean(kl, mask, positions) * temperature**2



@LOSSES.register(HintonKDConfig)
def build_hinton_kd(cfg: HintonKDConfig, probe: TapProbe) -> LossTerm:
    check_output_index(cfg.kind, cfg.output, probe)
    return LogitsPairTerm(cfg, lambda s, t, mask: hinton_kd_loss(s, t, cfg.temperature, class_dim=cfg.class_dim, mask=mask))
