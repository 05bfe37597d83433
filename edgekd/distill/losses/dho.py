"""DHO: dual-head optimisation.

Kang et al., "Simple yet Effective Semi-supervised Knowledge Distillation from
Vision-Language Models via Dual-Head Optimization", 2025 (arXiv:2505.07675); official code
github.com/erjui/DHO.

The student keeps its own classifier (the CE head, trained on labels by the task loss)
and gets a second, trainable KD head on the same feature h, trained only on the teacher:

    L_KD = T^2 KL(softmax(z_t / T) || softmax(W_kd h / T)),   T = 2 (the official code's value)

averaged over positions, so the two objectives no longer fight over one set of weights.
The official training loss is 0.5 CE + 0.5 (L_KD on labelled + L_KD on unlabelled images):
in a recipe, ``distill.task_loss_weight`` and this term's ``weight`` set that balance.

At inference the two heads are combined in probability space (:func:`combine_heads`), with
alpha weighting the KD head as in the official code:

    p = (1 - alpha) softmax(z_ce) + alpha softmax(z_kd / beta)

The official code picks alpha in {0, 0.05, ..., 1} and beta in {0.5, 0.75, 1, 1.25, 1.5,
2, 4} by accuracy on validation data (no retraining needed); the defaults here (alpha 0.5,
beta 1) are only a neutral starting point. The softmax runs over the class axis: axis 1 for
[B, K] and dense [B, K, H, W] heads, the last axis for per-token heads [B, L, K].

Feature handling: a [B,C,H,W] feature is globally average-pooled for [B,K] teacher logits
(the head is a 1x1 conv if the teacher's logits are dense [B,K,H,W]); a [B,L,D] feature is
mean-pooled over tokens for [B,K] logits, per token for [B,L,K]; [B,D] is used as is.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import (
    check_output_index,
    feature,
    probe_shape,
    resolve_class_dim,
    teacher_output,
)
from edgekd.distill.losses.hinton_kd import hinton_kd_loss
from edgekd.distill.terms import LossTerm, StepContext, TapProbe
from edgekd.errors import ConfigError


class DHOConfig(LossConfigBase):
    kind: Literal["dho"] = "dho"
    student: str = Field(..., description="student module path of the feature feeding its classifier")
    temperature: float = Field(2.0, gt=0, description="KD temperature T of the KD head (official code: 2)")
    output: int = Field(0, ge=0, description="index of the teacher's logits among its outputs")


class KDHead(nn.Module):
    """The extra head: pooling as described in the module docstring, then linear / 1x1 conv."""

    def __init__(self, feat_shape: tuple[int, ...], logit_shape: tuple[int, ...]) -> None:
        super().__init__()
        f, z = len(feat_shape), len(logit_shape)
        classes = logit_shape[1] if z in (2, 4) else logit_shape[-1]
        self.pool: tuple[int, ...] = ()
        if f == 4 and z == 4:
            self.proj: nn.Module = nn.Conv2d(feat_shape[1], classes, 1)
        elif f == 4 and z == 2:
            self.pool = (2, 3)
            self.proj = nn.Linear(feat_shape[1], classes)
        elif f == 3 and z in (2, 3):
            self.pool = (1,) if z == 2 else ()
            self.proj = nn.Linear(feat_shape[-1], classes)
        elif f == 2 and z == 2:
            self.proj = nn.Linear(feat_shape[-1], classes)
        else:
            raise ConfigError(f"loss 'dho': no KD head maps a feature of shape {feat_shape} to teacher logits "
                              f"of shape {logit_shape}.",
                              hint="tap the feature that feeds the student's classifier ([B,D], [B,L,D] or [B,C,H,W])")

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.proj(h.mean(self.pool) if self.pool else h)


def dho_kd_loss(kd_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """T^2 KL(softmax(z_t/T) || softmax(z_kd/T)), mean over positions (Hinton KD on the KD head)."""
    return hinton_kd_loss(kd_logits, teacher_logits, temperature)


def combine_heads(ce_logits: torch.Tensor, kd_logits: torch.Tensor, alpha: float = 0.5, kd_temperature: float = 1.0,
                  class_dim: int | None = None) -> torch.Tensor:
    """DHO inference: (1 - alpha) softmax(z_ce) + alpha softmax(z_kd / beta), probabilities over the class
    axis (``class_dim``; null = 1 for [B,K] and [B,K,H,W], last for per-token [B,L,K])."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if ce_logits.shape != kd_logits.shape:
        raise ValueError(f"the CE head's logits {tuple(ce_logits.shape)} and the KD head's "
                         f"{tuple(kd_logits.shape)} differ in shape")
    d = resolve_class_dim(ce_logits.ndim, class_dim)
    return (1 - alpha) * F.softmax(ce_logits, d) + alpha * F.softmax(kd_logits / kd_temperature, d)


class DHOTerm(LossTerm):
    def __init__(self, cfg: DHOConfig, head: KDHead) -> None:
        super().__init__(cfg.kind)
        self.cfg = cfg
        self.head = head
        self.student_taps = (cfg.student,)

    def kd_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h)

    def predict(self, h: torch.Tensor, ce_logits: torch.Tensor, alpha: float = 0.5,
                kd_temperature: float = 1.0, class_dim: int | None = None) -> torch.Tensor:
        """Combined class probabilities from the tapped feature and the model's own logits."""
        return combine_heads(ce_logits, self.head(h), alpha, kd_temperature, class_dim)

    def forward(self, ctx: StepContext) -> torch.Tensor:
        h = feature(ctx.student_feats, "student", self.cfg.student, self.cfg.kind)
        t = teacher_output(ctx, self.cfg.output, self.cfg.kind)
        return dho_kd_loss(self.head(h), t, self.cfg.temperature)


@LOSSES.register(DHOConfig)
def build_dho(cfg: DHOConfig, probe: TapProbe) -> LossTerm:
    check_output_index(cfg.kind, cfg.output, probe, student=False)
    feat = tuple(probe_shape(probe, "student", cfg.student))
    return DHOTerm(cfg, KDHead(feat, tuple(probe.teacher_out_shapes[cfg.output])))
