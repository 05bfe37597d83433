"""Label-assisted pixel distillation (LAD): the student matches a teacher that reads the label.

Teacher logits come from a forward of the label-assisted teacher on (image, hint), where the
hint is a noisy label channel from the batch (see ``edgekd/tasks/segmentation/lad.py``); the
student, which has no label input, matches them per pixel:
    L = T^2 * mean_{valid pixels} KL( softmax(z_T(x, h) / T) || softmax(z_S(x) / T) ).
Qiu et al., "Make a Strong Teacher with Label Assistance: A Novel Knowledge Distillation
Approach for Semantic Segmentation" (Label Assisted Distillation, ECCV 2024, arXiv:2407.13254):
the teacher reads a noised label as privileged input, the student is distilled in the standard
way; the KL term is Hinton et al. 2015 ("Distilling the Knowledge in a Neural Network").
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import batch_tensor, check_output_index, check_same_shape, student_output
from edgekd.distill.losses.hinton_kd import hinton_kd_loss
from edgekd.distill.terms import LossTerm, StepContext, TapProbe
from edgekd.errors import ConfigError


class LADLossConfig(LossConfigBase):
    kind: Literal["lad"] = "lad"
    hint_key: str = Field("hint", description="batch key of the label-hint channel the teacher reads")
    temperature: float = Field(1.0, gt=0, description="softmax temperature T (T^2 rescales the gradient)")
    output: int = Field(0, ge=0, description="index into the student's and teacher's outputs")
    mask_key: str | None = Field("valid", description="batch key of a 0/1 mask over pixels; null = all pixels")


class LADTerm(LossTerm):
    # The engine's own teacher call would pass the image only; this term runs the teacher itself
    # with the hint, so the engine need not run it (saves a forward per step).
    needs_teacher = False

    def __init__(self, cfg: LADLossConfig) -> None:
        super().__init__(cfg.kind)
        self.cfg = cfg

    def forward(self, ctx: StepContext) -> torch.Tensor:
        c = self.cfg
        if ctx.run_teacher is None:
            raise ConfigError("loss 'lad' needs a teacher, but this run has none",
                              hint="configure a label-assisted teacher (task.lad.enabled: true)")
        hint = batch_tensor(ctx, c.hint_key, c.kind, "hint_key")
        t_out, _ = ctx.run_teacher((*ctx.inputs, hint))
        s = student_output(ctx, c.output, c.kind)
        t = t_out[c.output].detach()
        check_same_shape(s, t, c.kind)
        mask = batch_tensor(ctx, c.mask_key, c.kind, "mask_key") if c.mask_key else None
        return hinton_kd_loss(s, t, c.temperature, mask=mask)


@LOSSES.register(LADLossConfig)
def build_lad(cfg: LADLossConfig, probe: TapProbe) -> LossTerm:
    if not probe.teacher_out_shapes:
        raise ConfigError("loss 'lad' needs a teacher, but none was given",
                          hint="pass a label-assisted teacher, or drop the loss for a baseline run")
    check_output_index(cfg.kind, cfg.output, probe)
    return LADTerm(cfg)
