"""DBiLD: Dynamic Bi-directional Logits Difference loss (BiLD with an adaptive k).

Sun et al., "Switch-KD: Visual-Switch Knowledge Distillation for Vision-Language Models",
2026 (arXiv:2604.14629), which extends BiLD (Li et al., arXiv:2406.13555) so that the
aligned "informative probability region" adapts per token instead of using a fixed k.

OUR READING of the adaptive rule (we had the abstract, not the method section, while
writing this; check before quoting): for each position and each direction, k is the size
of the leader's nucleus, the smallest k whose top-k probability mass under the leader's
softmax (T = 1, no gradient) reaches ``top_p``, clamped to [k_min, k_max]:

    k_lead = clamp(min{k : sum_{r<=k} p_lead,(r) >= top_p}, k_min, k_max)

Teacher-led uses the teacher's distribution, student-led the student's. With that k the
loss is BiLD's: KL(softmax(d^t/T) || softmax(d^s/T)) over the pairwise differences of the
k leader-ranked logits, L = L_t + L_s averaged over positions. A confident position
aligns few logits; an uncertain one aligns more.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import (
    LogitsPairTerm,
    check_output_index,
    flatten_positions,
    masked_mean,
)
from edgekd.distill.losses.bild import Led, check_classes, led_difference_kl
from edgekd.distill.terms import LossTerm, TapProbe


class DBiLDConfig(LossConfigBase):
    kind: Literal["dbild"] = "dbild"
    top_p: float = Field(0.9, gt=0, le=1, description="probability mass the adaptive top-k must cover")
    k_min: int = Field(2, ge=2, description="smallest k (at least one pair)")
    k_max: int = Field(16, ge=2, description="largest k")
    led: Led = Field("both", description="teacher-led, student-led, or both")
    temperature: float = Field(1.0, gt=0, description="softmax temperature on the logit differences")
    output: int = Field(0, ge=0, description="index into the student's and teacher's outputs")
    class_dim: int | None = Field(None, description="class axis; null = 1, or last for [B,L,V] sequences")
    mask_key: str | None = Field(None, description="batch key of a 0/1 mask over positions (e.g. padding)")

    @model_validator(mode="after")
    def _order(self) -> DBiLDConfig:
        if self.k_min > self.k_max:
            raise ValueError(f"k_min={self.k_min} is larger than k_max={self.k_max}; set k_min <= k_max")
        return self


def adaptive_k(leader_logits: torch.Tensor, top_p: float, k_min: int, k_max: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices [N, K] of the leader's top-K logits, K = min(k_max, C), and k per row [N])."""
    K = min(k_max, leader_logits.shape[1])
    with torch.no_grad():
        top = leader_logits.topk(K, dim=1)
        mass = (top.values - leader_logits.logsumexp(1, keepdim=True)).exp()
        cum = mass.cumsum(1)
        k = (cum < top_p).sum(1) + 1  # smallest k with cumulative mass >= top_p
        k = k.clamp(min(k_min, K), K)
    return top.indices, k


def dbild_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, top_p: float = 0.9, k_min: int = 2,
               k_max: int = 16, led: str = "both", temperature: float = 1.0, class_dim: int | None = None,
               mask: torch.Tensor | None = None) -> torch.Tensor:
    """DBiLD (module docstring), mean over positions."""
    s, positions = flatten_positions(student_logits, class_dim)
    t, _ = flatten_positions(teacher_logits.detach().to(student_logits.dtype), class_dim)
    total = torch.zeros(s.shape[0], dtype=s.dtype, device=s.device)
    if led in ("both", "teacher"):
        idx, k = adaptive_k(t, top_p, k_min, k_max)
        total = total + led_difference_kl(s, t, idx, temperature, k)
    if led in ("both", "student"):
        idx, k = adaptive_k(s.detach(), top_p, k_min, k_max)
        total = total + led_difference_kl(s, t, idx, temperature, k)
    if led not in ("both", "teacher", "student"):
        raise ValueError(f"led must be both, teacher or student, got {led!r}")
    return masked_mean(total, mask, positions)



@LOSSES.register(DBiLDConfig)
def build_dbild(cfg: DBiLDConfig, probe: TapProbe) -> LossTerm:
    check_output_index(cfg.kind, cfg.output, probe)
    check_classes(cfg.kind, cfg.k_min, "k_min", probe.student_out_shapes[cfg.output], cfg.class_dim)
    return LogitsPairTerm(cfg, lambda s, t, mask: dbild_loss(s, t, top_p=cfg.top_p, k_min=cfg.k_min, k_max=cfg.k_max, led=cfg.led,
                          temperature=cfg.temperature, class_dim=cfg.class_dim, mask=mask))
