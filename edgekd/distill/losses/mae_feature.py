"""Masked-autoencoder feature distillation (DMAE-style).

Bai et al., "Masked Autoencoders Enable Efficient Knowledge Distillers", CVPR 2023
(arXiv:2208.12256): the student sees a masked image and its intermediate features are
aligned, through a small projector, with the features of the teacher; optionally the
student also reconstructs the masked pixels (the MAE objective). GazeGen's DFT Gaze
(arXiv:2411.04335) distils its gaze estimator this way, weighting the feature term by
gamma = 0.5.

Step: x~ = x with a random ``mask_ratio`` of its ``patch_size`` x ``patch_size`` patches
zeroed (exactly round(mask_ratio * n_patches) per image, as MAE samples them); the student
runs on x~ (``ctx.run_student``); the teacher features come from its normal forward on the
UNMASKED x. With K tap pairs, projectors P_k and pixel mask M (1 = masked):

    L = feature_weight * (1/K) sum_k mean (P_k(f_s^k(x~)) - f_t^k(x))^2
      + pixel_weight * sum(M * (D(f_s^K(x~)) - x)^2) / sum(M * C)

D is the pixel head (3x3 conv, GELU, 1x1 conv to the image channels, bilinear resize to
the input size) on the last student tap; built only when pixel_weight > 0. Unlike MAE we
reconstruct raw pixels (no per-patch normalisation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import check_same_shape, feature, make_projector, probe_shape
from edgekd.distill.terms import LossTerm, StepContext, TapProbe
from edgekd.errors import ConfigError, TrainingError


class MAEFeatureConfig(LossConfigBase):
    kind: Literal["mae_feature"] = "mae_feature"
    student: str | list[str] = Field(..., description="student module path(s) run on the masked input")
    teacher: str | list[str] = Field(..., description="teacher module path(s) on the unmasked input")
    mask_ratio: float = Field(0.5, ge=0, lt=1, description="fraction of patches zeroed in the student's input")
    patch_size: int = Field(8, ge=1, description="side of the square patches masked, in pixels")
    input: int = Field(0, ge=0, description="index of the model input (a [B,C,H,W] image) to mask")
    feature_weight: float = Field(0.5, ge=0, description="gamma: weight of the feature-matching term")
    pixel_weight: float = Field(0.0, ge=0, description="weight of masked-pixel reconstruction; 0 = no head")
    image_channels: int = Field(3, ge=1, description="channels of the masked input (pixel head output)")
    decoder_hidden: int = Field(32, ge=1, description="hidden channels of the pixel head")

    @model_validator(mode="after")
    def _pairs(self) -> MAEFeatureConfig:
        if len(self.students) != len(self.teachers):
            raise ValueError(f"student lists {len(self.students)} path(s) but teacher lists "
                             f"{len(self.teachers)}; give one teacher path per student path")
        if not self.students:
            raise ValueError("student and teacher need at least one module path")
        return self

    @property
    def students(self) -> list[str]:
        return [self.student] if isinstance(self.student, str) else list(self.student)

    @property
    def teachers(self) -> list[str]:
        return [self.teacher] if isinstance(self.teacher, str) else list(self.teacher)


def random_patch_mask(batch: int, height: int, width: int, patch_size: int, mask_ratio: float, *,
                      device: torch.device | None = None, generator: torch.Generator | None = None
                      ) -> torch.Tensor:
    """[B, 1, H, W] float mask, 1 on masked pixels: per image exactly round(mask_ratio * n)
    of the n = ceil(H/p) * ceil(W/p) patches (edge patches cropped)."""
    gh, gw = math.ceil(height / patch_size), math.ceil(width / patch_size)
    n = gh * gw
    m = int(round(mask_ratio * n))
    noise = torch.rand(batch, n, generator=generator, device=device if generator is None else generator.device)
    rank = noise.argsort(dim=1).argsort(dim=1)  # rank of each patch's noise
    grid = (rank < m).float().reshape(batch, 1, gh, gw)
    if device is not None:
        grid = grid.to(device)
    full = grid.repeat_interleave(patch_size, dim=2).repeat_interleave(patch_size, dim=3)
    return full[:, :, :height, :width]


def mae_feature_loss(projected: Sequence[torch.Tensor], teacher_feats: Sequence[torch.Tensor], *,
                     feature_weight: float = 0.5, pixel_weight: float = 0.0,
                     reconstruction: torch.Tensor | None = None, image: torch.Tensor | None = None,
                     pixel_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The module-level formula (see the module docstring) on already projected student
    features ``projected[k] = P_k(f_s^k(x~))`` and teacher features ``f_t^k(x)``."""
    feat = torch.stack([(p - t.detach().to(p.dtype)).pow(2).mean() for p, t in zip(projected, teacher_feats, strict=True)])
    loss = feature_weight * feat.mean()
    if pixel_weight > 0:
        if reconstruction is None or image is None or pixel_mask is None:
            raise ValueError("pixel_weight > 0 needs reconstruction, image and pixel_mask")
        m = pixel_mask.to(reconstruction.dtype)
        err = (m * (reconstruction - image.to(reconstruction.dtype)).pow(2)).sum()
        loss = loss + pixel_weight * err / (m.sum() * image.shape[1]).clamp_min(1e-12)
    return loss


class PixelHead(nn.Module):
    """Small decoder from a [B, C, h, w] student feature to an image of the input's size."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_channels, hidden, 3, padding=1), nn.GELU(),
                                 nn.Conv2d(hidden, out_channels, 1))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = self.net(x)
        return y if tuple(y.shape[2:]) == size else F.interpolate(y, size=size, mode="bilinear",
                                                                  align_corners=False)


class MAEFeatureTerm(LossTerm):
    def __init__(self, cfg: MAEFeatureConfig, projectors: list[nn.Module], head: PixelHead | None) -> None:
        super().__init__(cfg.kind)
        self.cfg = cfg
        self.projectors = nn.ModuleList(projectors)
        self.pixel_head = head
        self.student_taps = tuple(cfg.students)
        self.teacher_taps = tuple(cfg.teachers)

    def forward(self, ctx: StepContext) -> torch.Tensor:
        c = self.cfg
        if c.input >= len(ctx.inputs):
            raise TrainingError(f"loss 'mae_feature': input={c.input} but the model takes {len(ctx.inputs)} input(s)",
                                hint="set input to the index of the image input")
        x = ctx.inputs[c.input]
        if x.ndim != 4:
            raise TrainingError(f"loss 'mae_feature': input {c.input} has shape {tuple(x.shape)}; masking "
                                f"patches needs a [B,C,H,W] image", hint="set input to the image input's index")
        mask = random_patch_mask(x.shape[0], x.shape[2], x.shape[3], c.patch_size, c.mask_ratio, device=x.device)
        inputs = list(ctx.inputs)
        inputs[c.input] = x * (1 - mask.to(x.dtype))
        _, feats = ctx.run_student(inputs)
        projected, targets = [], []
        for proj, sp, tp in zip(self.projectors, c.students, c.teachers, strict=True):
            p = proj(feature(feats, "student", sp, c.kind))
            t = feature(ctx.teacher_feats, "teacher", tp, c.kind)
            check_same_shape(p, t, c.kind, "feature (after projector)")
            projected.append(p)
            targets.append(t)
        recon = None
        if self.pixel_head is not None:
            if x.shape[1] != c.image_channels:
                raise TrainingError(f"loss 'mae_feature': image_channels={c.image_channels} but input {c.input} "
                                    f"has {x.shape[1]} channels", hint=f"set image_channels: {x.shape[1]}")
            last = feature(feats, "student", c.students[-1], c.kind)
            recon = self.pixel_head(last, (x.shape[2], x.shape[3]))
        return mae_feature_loss(projected, targets, feature_weight=c.feature_weight, pixel_weight=c.pixel_weight,
                                reconstruction=recon, image=x, pixel_mask=mask)


@LOSSES.register(MAEFeatureConfig)
def build_mae_feature(cfg: MAEFeatureConfig, probe: TapProbe) -> LossTerm:
    projectors: list[nn.Module] = []
    for sp, tp in zip(cfg.students, cfg.teachers, strict=True):
        s, t = probe_shape(probe, "student", sp), probe_shape(probe, "teacher", tp)
        # Always a trainable projector: features of a masked input are not expected to equal
        # the teacher's unmasked ones directly (DMAE aligns through a projection layer).
        projectors.append(make_projector(s, t, kind=cfg.kind, always=True))
    head = None
    if cfg.pixel_weight > 0:
        last = probe_shape(probe, "student", cfg.students[-1])
        if len(last) != 4:
            raise ConfigError(f"loss 'mae_feature': pixel_weight > 0 needs a [B,C,H,W] last student tap, but "
                              f"{cfg.students[-1]!r} is {tuple(last)}.",
                              hint="tap a convolutional stage last, or set pixel_weight: 0")
        head = PixelHead(last[1], cfg.decoder_hidden, cfg.image_channels)
    return MAEFeatureTerm(cfg, projectors, head)
