"""Label-assisted distillation (LAD): the student matches a teacher that reads the label.

Qiu et al., "Make a Strong Teacher with Label Assistance: A Novel Knowledge Distillation
Approach for Semantic Segmentation", ECCV 2024 (arXiv:2407.13254); official code
github.com/skyshoumeng/Label_Assisted_Distillation (built on CIRKD).

Teacher logits come from a forward of the label-assisted teacher on (image, hint), where the
hint is a noisy label channel from the batch (see ``edgekd/tasks/segmentation/lad.py``); the
student, which has no label input, matches them. As in the official code, the student term is
channel-wise distillation (CWD, Shu et al., ICCV 2021, edgekd/distill/losses/cwd.py) with
tau = 4 and weight 3:

    L = tau^2 / (B C) * sum_{b,c} KL( phi(z^T_{b,c}(x, h) / tau) || phi(z^S_{b,c}(x) / tau) ),

phi the softmax over the H*W pixels of one channel. edgekd applies it to the models' output
logit maps (every pixel; CWD has no ignore mask).

Named variant ``distance: pixel_kl``: pixel-wise Hinton KL over the classes at each valid pixel
(T^2 * mean_{valid pixels} KL(softmax(z_T / T) || softmax(z_S / T)), mask ``mask_key``), edgekd's
earlier reading, kept to compare against runs made before issue 22 (set temperature 1 for those).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import batch_tensor, check_output_index, check_same_shape, student_output
from edgekd.distill.losses.cwd import cwd_loss
from edgekd.distill.losses.hinton_kd import hinton_kd_loss
from edgekd.distill.terms import LossTerm, StepContext, TapProbe
from edgekd.errors import ConfigError


class LADLossConfig(LossConfigBase):
    kind: Literal["lad"] = "lad"
    weight: float = Field(3.0, ge=0, description="multiplier of this term in the total loss (official LAD: 3)")
    hint_key: str = Field("hint", description="batch key of the label-hint channel the teacher reads")
    distance: Literal["cwd", "pixel_kl"] = Field("cwd", description="cwd (official LAD) or pixel_kl (edgekd's "
                                                 "earlier pixel-wise KL)")
    temperature: float = Field(4.0, gt=0, description="tau of CWD (official: 4), or T of pixel_kl")
    output: int = Field(0, ge=0, description="index into the student's and teacher's outputs")
    mask_key: str | None = Field(None, description="pixel_kl only: batch key of a 0/1 mask over pixels")

    @model_validator(mode="after")
    def _mask_only_for_pixel_kl(self) -> LADLossConfig:
        if self.distance == "cwd" and self.mask_key is not None:
            raise ValueError(f"mask_key={self.mask_key!r} is only read by distance: pixel_kl (CWD, as the "
                             "official LAD code, uses every pixel); remove mask_key or set distance: pixel_kl")
        return self


def lad_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, distance: str = "cwd",
             temperature: float = 4.0, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The module docstring's L on [B, C, H, W] logits of the student and the label-assisted teacher."""
    if distance == "cwd":
        return cwd_loss(student_logits, teacher_logits, temperature)
    if distance == "pixel_kl":
        return hinton_kd_loss(student_logits, teacher_logits, temperature, mask=mask)
    raise ValueError(f"distance must be cwd or pixel_kl, got {distance!r}")


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
        return lad_loss(s, t, distance=c.distance, temperature=c.temperature, mask=mask)


@LOSSES.register(LADLossConfig)
def build_lad(cfg: LADLossConfig, probe: TapProbe) -> LossTerm:
    if not probe.teacher_out_shapes:
        raise ConfigError("loss 'lad' needs a teacher, but none was given",
                          hint="pass a label-assisted teacher, or drop the loss for a baseline run")
    check_output_index(cfg.kind, cfg.output, probe)
    shape = probe.teacher_out_shapes[cfg.output]
    if cfg.distance == "cwd" and len(shape) != 4:
        raise ConfigError(f"loss 'lad' with distance cwd needs [B,C,H,W] logits; output {cfg.output} is "
                          f"{tuple(shape)}", hint="use a dense-prediction model, or distance: pixel_kl")
    return LADTerm(cfg)
