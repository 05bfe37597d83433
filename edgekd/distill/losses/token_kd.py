"""Token-level (word-level) knowledge distillation for sequences, with a padding mask.

Kim & Rush, "Sequence-Level Knowledge Distillation", EMNLP 2016 (arXiv:1606.07947),
word-level KD: at every target position the student's next-token distribution is
trained towards the teacher's by cross-entropy with the teacher's soft distribution.
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
    masked_mean,
)
from edgekd.distill.terms import LossTerm, TapProbe


class TokenKDConfig(LossConfigBase):
    kind: Literal["token_kd"] = "token_kd"
    temperature: float = Field(1.0, gt=0, description="softmax temperature T (T^2 rescales the gradient)")
    output: int = Field(0, ge=0, description="index of the [B,L,V] logits in the model outputs")
    mask_key: str | None = Field(None, description="batch key of the [B,L] 0/1 padding mask (1 = real token)")


def token_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor | None = None,
                  temperature: float = 1.0) -> torch.Tensor:
    """T^2 * (1 / sum_{b,l} m_{b,l}) * sum_{b,l} m_{b,l} * ( - sum_v q_{b,l,v} log p_{b,l,v} ),

    q = softmax(z_t / T), p = softmax(z_s / T) over the vocabulary (last axis) of [B, L, V]
    logits; m the padding mask (1 = counted). This is the cross-entropy with the teacher's
    soft targets: it differs from Hinton's KL only by the teacher's entropy, a constant
    for the student, so its gradients are identical and its value never reaches 0.
    """
    s, positions = flatten_positions(student_logits, -1)
    t, _ = flatten_positions(teacher_logits.detach().to(student_logits.dtype), -1)
    ce = -(F.softmax(t / temperature, -1) * F.log_softmax(s / temperature, -1)).sum(-1)
    return masked_mean(ce, mask, positions) * temperature**2



@LOSSES.register(TokenKDConfig)
def build_token_kd(cfg: TokenKDConfig, probe: TapProbe) -> LossTerm:
    check_output_index(cfg.kind, cfg.output, probe)
    return LogitsPairTerm(cfg, lambda s, t, mask: token_kd_loss(s, t, mask, cfg.temperature))
