"""Visual-switch distillation: the student's visual features, projected, run through the
teacher's fusion pathway and heads; the teacher's answer on them is matched.

Sun et al., "Switch-KD: Visual-Switch Knowledge Distillation for Vision-Language Models",
2026 (arXiv:2604.14629): the student's visual outputs are switched into the teacher's
language pathway, giving cross-modal probabilistic references in the shared text-probability
space.

OUR READING (from the abstract and project page, not the method section; check before quoting):
with v_s the student's visual features (tap ``student``), P a trainable projector onto the
teacher's visual feature shape (tap ``teacher``), g_T the frozen teacher pathway after its
vision encoder (``teacher_method``, called as g_T(P(v_s), *inputs)), z_sw = g_T(P(v_s)) the
switch logits, z_t the teacher's logits and z_s the student's:

    L = T^2 * [ KL(softmax(z_t / T) || softmax(z_sw / T))                     (switch term)
               + lam * KL(softmax(sg(z_sw) / T) || softmax(z_s / T)) ]         (reference term)

averaged over positions (all axes but the class axis). The switch term trains v_s (and P) so
that the teacher reads the student's vision as its own; gradients flow THROUGH the frozen
teacher into the student's encoder. The reference term (``reference_weight`` = lam) makes the
switched answer a cross-modal target for the student's own head. ``divergence: dbild`` uses
the DBiLD loss (edgekd/distill/losses/dbild.py, its Switch-KD defaults: Kneedle k in 2..16,
both leads, reverse KL) instead of KL for both terms.

What follows Switch-KD: the student's visual outputs are routed through the teacher's frozen
language pathway and the resulting text probabilities are supervised by the teacher's (the
switch term), with DBiLD available as the divergence. What is edgekd's choice: the trainable
projector P, the reference term and its weight lam, KL as the default divergence, T^2 scaling
and ``max_samples``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import (
    check_output_index,
    check_same_shape,
    feature,
    flatten_positions,
    kl_rows,
    make_projector,
    probe_shape,
    student_output,
    teacher_output,
)
from edgekd.distill.losses.dbild import dbild_loss
from edgekd.distill.terms import LossTerm, StepContext, TapProbe
from edgekd.errors import ConfigError


class VisualSwitchConfig(LossConfigBase):
    kind: Literal["visual_switch"] = "visual_switch"
    student: str = Field(..., description="student module path of the visual features, e.g. vision")
    teacher: str = Field(..., description="teacher module path of the visual features it fuses, e.g. vision")
    teacher_method: str = Field("forward_from_visual", description="teacher method g(visual, *inputs) -> outputs "
                                "that runs the fusion pathway and heads on given visual features")
    output: int = Field(0, ge=0, description="index of the logits in the outputs")
    temperature: float = Field(1.0, gt=0)
    reference_weight: float = Field(0.5, ge=0, description="lam: weight of the switched-answer -> student term")
    divergence: Literal["kl", "dbild"] = Field("kl", description="KL, or DBiLD (Kneedle k in 2..16, both leads, reverse KL)")
    class_dim: int | None = Field(None, description="class axis; null = 1, or last for [B,L,V] sequences")
    max_samples: int | None = Field(None, ge=1, description="switch only the first n samples of each batch: the "
                                    "extra pass through the teacher pathway (forward and backward) is the "
                                    "expensive part; null = the whole batch")


def _kl(target_logits: torch.Tensor, logits: torch.Tensor, temperature: float, class_dim: int | None) -> torch.Tensor:
    t, _ = flatten_positions(target_logits, class_dim)
    s, _ = flatten_positions(logits, class_dim)
    return kl_rows(F.log_softmax(t / temperature, -1), F.log_softmax(s / temperature, -1)).mean() * temperature**2


def visual_switch_loss(student_logits: torch.Tensor, switch_logits: torch.Tensor, teacher_logits: torch.Tensor, *,
                       temperature: float = 1.0, reference_weight: float = 0.5, divergence: str = "kl",
                       class_dim: int | None = None) -> torch.Tensor:
    """The module docstring's L from the three logits tensors (same shape)."""
    t = teacher_logits.detach().to(switch_logits.dtype)
    if divergence == "kl":
        switch = _kl(t, switch_logits, temperature, class_dim)
        ref = _kl(switch_logits.detach(), student_logits, temperature, class_dim) if reference_weight else 0.0
    elif divergence == "dbild":
        switch = dbild_loss(switch_logits, t, temperature=temperature, class_dim=class_dim)
        ref = (dbild_loss(student_logits, switch_logits.detach(), temperature=temperature, class_dim=class_dim)
               if reference_weight else 0.0)
    else:
        raise ValueError(f"divergence must be kl or dbild, got {divergence!r}")
    return switch + reference_weight * ref


class VisualSwitchTerm(LossTerm):
    def __init__(self, cfg: VisualSwitchConfig, projector: nn.Module) -> None:
        super().__init__(cfg.kind)
        self.cfg = cfg
        self.projector = projector
        self.student_taps = (cfg.student,)
        self.teacher_taps = (cfg.teacher,)

    def _teacher_pathway(self, ctx: StepContext) -> Any:
        module = getattr(ctx.run_teacher, "module", None)
        fn = getattr(module, self.cfg.teacher_method, None) if module is not None else None
        if not callable(fn):
            raise ConfigError(
                f"loss 'visual_switch': teacher_method={self.cfg.teacher_method!r} is not a method of the teacher "
                f"({type(module).__name__ if module is not None else 'not a torch module'}).",
                hint="use a torch-module teacher that has a method g(visual_features, *inputs) -> outputs, and "
                "name it in teacher_method (GUI-agent models: forward_from_visual)")
        return fn

    def forward(self, ctx: StepContext) -> torch.Tensor:
        c = self.cfg
        v_s = feature(ctx.student_feats, "student", c.student, c.kind)
        v_t = feature(ctx.teacher_feats, "teacher", c.teacher, c.kind)
        n = v_s.shape[0] if c.max_samples is None else min(c.max_samples, v_s.shape[0])
        p = self.projector(v_s[:n])
        check_same_shape(p, v_t[:n], c.kind, "visual feature (after projector)")
        fn = self._teacher_pathway(ctx)
        module = ctx.run_teacher.module  # type: ignore[union-attr]
        module.eval()  # frozen BN statistics; gradients still flow through to p
        out = fn(p, *(x[:n] for x in ctx.inputs))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        z_sw = outs[c.output]
        z_s, z_t = student_output(ctx, c.output, c.kind), teacher_output(ctx, c.output, c.kind)
        check_same_shape(z_s, z_t, c.kind)
        z_s, z_t = z_s[:n], z_t[:n]
        return visual_switch_loss(z_s, z_sw, z_t, temperature=c.temperature, reference_weight=c.reference_weight,
                                  divergence=c.divergence, class_dim=c.class_dim)


@LOSSES.register(VisualSwitchConfig)
def build_visual_switch(cfg: VisualSwitchConfig, probe: TapProbe) -> LossTerm:
    check_output_index(cfg.kind, cfg.output, probe)
    s, t = probe_shape(probe, "student", cfg.student), probe_shape(probe, "teacher", cfg.teacher)
    return VisualSwitchTerm(cfg, make_projector(s, t, kind=cfg.kind, always=True))
