"""Masked generative distillation (MGD).

Yang et al., "Masked Generative Distillation", ECCV 2022 (arXiv:2205.01529); official code
github.com/yzd-v/MGD.

The aligned student feature (1x1 conv when channels differ) is masked at random, and a
generation block G (3x3 conv, ReLU, 3x3 conv) must regenerate the teacher's full feature:

    L = alpha * (1/B) sum_b sum_{c,i,j} (T_{b,c,i,j} - G(f_align(S) * M)_{b,c,i,j})^2

The mask M depends on the setting, as in the official code:

- ``variant: dense`` (detection / dense prediction, the default): a spatial mask shared by all
  channels, M_{b,1,i,j} = 0 where R < lambda_mask, R ~ U(0, 1); alpha = 2e-5, lambda_mask = 0.65.
- ``variant: classification``: a channel mask shared by all positions, M_{b,c,1,1} = 0 where
  R < lambda_mask; alpha = 7e-5, lambda_mask = 0.15 (on the last-stage feature).

``alpha`` and ``lambda_mask`` left null take the variant's values.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import check_same_shape, feature, make_projector, probe_shape
from edgekd.distill.terms import LossTerm, StepContext, TapProbe
from edgekd.errors import ConfigError

Variant = Literal["dense", "classification"]
# (alpha, lambda_mask) of the official code's detection and classification settings
VARIANT_DEFAULTS: dict[str, tuple[float, float]] = {"dense": (2e-5, 0.65), "classification": (7e-5, 0.15)}


class MGDConfig(LossConfigBase):
    kind: Literal["mgd"] = "mgd"
    student: str = Field(..., description="student module path of a [B,C,H,W] feature")
    teacher: str = Field(..., description="teacher module path of a [B,C',H',W'] feature")
    variant: Variant = Field("dense", description="dense: spatial mask (detection setting); classification: "
                             "channel mask")
    alpha: float | None = Field(None, gt=0, description="scale of the summed squared error; null = the variant's "
                                "(dense 2e-5, classification 7e-5)")
    lambda_mask: float | None = Field(None, ge=0, lt=1, description="probability that a position (dense) or a "
                                      "channel (classification) is masked; null = the variant's (0.65, 0.15)")

    @property
    def resolved(self) -> tuple[float, float]:
        """(alpha, lambda_mask) with the variant's defaults filled in."""
        a, lam = VARIANT_DEFAULTS[self.variant]
        return (a if self.alpha is None else self.alpha, lam if self.lambda_mask is None else self.lambda_mask)


def random_spatial_mask(feat: torch.Tensor, lambda_mask: float, generator: torch.Generator | None = None
                        ) -> torch.Tensor:
    """[B, 1, H, W] mask: 0 where R < lambda_mask, 1 elsewhere (R ~ U(0, 1))."""
    r = torch.rand(feat.shape[0], 1, feat.shape[2], feat.shape[3], generator=generator,
                   dtype=feat.dtype, device=feat.device if generator is None else generator.device)
    return (r >= lambda_mask).to(feat.dtype).to(feat.device)


def random_channel_mask(feat: torch.Tensor, lambda_mask: float, generator: torch.Generator | None = None
                        ) -> torch.Tensor:
    """[B, C, 1, 1] mask: 0 where R < lambda_mask, 1 elsewhere (R ~ U(0, 1)); MGD's classification mask."""
    r = torch.rand(feat.shape[0], feat.shape[1], 1, 1, generator=generator,
                   dtype=feat.dtype, device=feat.device if generator is None else generator.device)
    return (r >= lambda_mask).to(feat.dtype).to(feat.device)


def generation_block(channels: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=False),
                         nn.Conv2d(channels, channels, 3, padding=1))


def mgd_loss(aligned_student: torch.Tensor, teacher_feat: torch.Tensor, mask: torch.Tensor,
             generator: nn.Module, alpha: float = 2e-5) -> torch.Tensor:
    """alpha * (1/B) * sum (T - G(S_aligned * M))^2 (module docstring)."""
    gen = generator(aligned_student * mask)
    return alpha * (gen - teacher_feat.detach().to(gen.dtype)).pow(2).sum() / aligned_student.shape[0]


class MGDTerm(LossTerm):
    def __init__(self, cfg: MGDConfig, align: nn.Module, channels: int) -> None:
        super().__init__(cfg.kind)
        self.cfg = cfg
        self.align = align
        self.generation = generation_block(channels)
        self.student_taps = (cfg.student,)
        self.teacher_taps = (cfg.teacher,)

    def forward(self, ctx: StepContext) -> torch.Tensor:
        s = self.align(feature(ctx.student_feats, "student", self.cfg.student, self.cfg.kind))
        t = feature(ctx.teacher_feats, "teacher", self.cfg.teacher, self.cfg.kind)
        check_same_shape(s, t, self.cfg.kind, "feature (after align)")
        alpha, lam = self.cfg.resolved
        draw = random_channel_mask if self.cfg.variant == "classification" else random_spatial_mask
        return mgd_loss(s, t, draw(s, lam), self.generation, alpha)


@LOSSES.register(MGDConfig)
def build_mgd(cfg: MGDConfig, probe: TapProbe) -> LossTerm:
    s, t = probe_shape(probe, "student", cfg.student), probe_shape(probe, "teacher", cfg.teacher)
    if len(s) != 4 or len(t) != 4:
        raise ConfigError(f"loss 'mgd' needs 4-D [B,C,H,W] features; student {cfg.student!r} is {tuple(s)}, "
                          f"teacher {cfg.teacher!r} is {tuple(t)}.", hint="tap convolutional feature maps")
    return MGDTerm(cfg, make_projector(s, t, kind=cfg.kind), t[1])
