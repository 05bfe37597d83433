"""Masked-autoencoder feature distillation (DMAE).

Bai et al., "Masked Autoencoders Enable Efficient Knowledge Distillers", CVPR 2023
(arXiv:2208.12256); official code github.com/UCSC-VLAA/DMAE. GazeGen's DFT Gaze
(arXiv:2411.04335) distils its gaze estimator this way, weighting the feature term by gamma = 0.5.

Step, as the official code: one random patch mask (exactly round(mask_ratio * n_patches) of
the ``patch_size`` x ``patch_size`` patches per image, as MAE samples them; default 0.75) is
drawn, and BOTH models see only the visible patches: x~ = x * (1 - M) (a CNN's stand-in for
dropping the masked tokens); the student runs on x~ (``ctx.run_student``), the frozen teacher
too (``ctx.run_teacher``). With K tap pairs, projectors P_k, n(.) the L2 normalisation of each
position's feature vector (over channels of [B,C,H,W], over the last axis of [B,L,D] / [B,D]):

    L = feature_weight * sum_k mean |n(P_k(f_s^k(x~))) - n(f_t^k(x~))|          (L1; l2: squared)
      + pixel_weight * sum(M * (D(f_s^K(x~)) - y)^2) / sum(M * C)

y is the MAE target: the image with each patch normalised by its own mean and variance
(MAE's norm_pix_loss, on in the official pre-training script), or the raw image with
``norm_pix: false``. D is the pixel head (3x3 conv, GELU, 1x1 conv to the image channels,
bilinear resize to the input size) on the last student tap, built when pixel_weight > 0.
Defaults as the official script: L1, normalised features, the sum over tap pairs with weight 1,
the reconstruction term on with weight 1.

edgekd's choices: masking by zeroing pixels (convolutional models cannot drop tokens), the
feature term over every position of the tapped maps, the conv pixel head, patch_size 8.
Named variant, kept to compare with runs made before issue 22: ``teacher_input: full,
feature_distance: l2, normalize_features: false, tap_reduction: mean, norm_pix: false``
(teacher on the unmasked image, raw features by MSE averaged over taps, raw-pixel target).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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
    teacher: str | list[str] = Field(..., description="teacher module path(s), one per student path")
    mask_ratio: float = Field(0.75, ge=0, lt=1, description="fraction of patches hidden from both models")
    patch_size: int = Field(8, ge=1, description="side of the square patches masked, in pixels")
    input: int = Field(0, ge=0, description="index of the model input (a [B,C,H,W] image) to mask")
    teacher_input: Literal["masked", "full"] = Field(
        "masked", description="masked: the teacher sees the student's visible patches (DMAE); full: the unmasked "
        "image (edgekd's earlier variant)")
    feature_distance: Literal["l1", "l2"] = Field("l1", description="mean absolute (DMAE's script) or squared error")
    normalize_features: bool = Field(True, description="L2-normalise each position's feature vector first (DMAE)")
    tap_reduction: Literal["sum", "mean"] = Field("sum", description="sum (DMAE) or mean over the tap pairs")
    feature_weight: float = Field(1.0, ge=0, description="gamma: weight of the feature-matching term")
    pixel_weight: float = Field(1.0, ge=0, description="weight of masked-pixel reconstruction; 0 = no head")
    norm_pix: bool = Field(True, description="reconstruct per-patch normalised pixels (MAE's norm_pix_loss)")
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


def normalize_positions(x: torch.Tensor) -> torch.Tensor:
    """L2-normalise each position's feature vector: over channels of [B,C,H,W], the last axis otherwise."""
    return F.normalize(x, dim=1 if x.ndim == 4 else -1)


def patch_normalized(image: torch.Tensor, patch_size: int, eps: float = 1e-6) -> torch.Tensor:
    """MAE's norm_pix target: each patch (all its pixels and channels) minus its mean, divided by
    sqrt(unbiased variance + eps); edge patches cropped to the image."""
    b, c, h, w = image.shape
    gh, gw = math.ceil(h / patch_size), math.ceil(w / patch_size)
    pad = (0, gw * patch_size - w, 0, gh * patch_size - h)
    x = F.pad(image, pad)
    ones = F.pad(torch.ones(1, 1, h, w, dtype=image.dtype, device=image.device), pad)
    area = patch_size * patch_size
    n = F.avg_pool2d(ones, patch_size) * area * c  # values per patch [1, 1, gh, gw]
    total = (F.avg_pool2d(x, patch_size) * area).sum(1, keepdim=True)
    total_sq = (F.avg_pool2d(x * x, patch_size) * area).sum(1, keepdim=True)
    mean = total / n
    var = (total_sq - n * mean * mean) / (n - 1).clamp_min(1)

    def up(g: torch.Tensor) -> torch.Tensor:
        return g.repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3)[:, :, :h, :w]

    return (image - up(mean)) / up((var.clamp_min(0) + eps).sqrt())


def mae_feature_loss(projected: Sequence[torch.Tensor], teacher_feats: Sequence[torch.Tensor], *,
                     feature_weight: float = 1.0, feature_distance: str = "l1", normalize_features: bool = True,
                     tap_reduction: str = "sum", pixel_weight: float = 0.0,
                     reconstruction: torch.Tensor | None = None, target: torch.Tensor | None = None,
                     pixel_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The module-level formula on already projected student features ``projected[k] = P_k(f_s^k(x~))``,
    the teacher features ``f_t^k`` and, for the pixel term, the reconstruction, its target y (the
    normalised or raw image) and the pixel mask M (1 = hidden)."""
    per_tap = []
    for p, t in zip(projected, teacher_feats, strict=True):
        t = t.detach().to(p.dtype)
        if normalize_features:
            p, t = normalize_positions(p), normalize_positions(t)
        d = p - t
        per_tap.append(d.abs().mean() if feature_distance == "l1" else d.pow(2).mean())
    if feature_distance not in ("l1", "l2") or tap_reduction not in ("sum", "mean"):
        raise ValueError(f"feature_distance must be l1 or l2 and tap_reduction sum or mean, got "
                         f"{feature_distance!r}, {tap_reduction!r}")
    feat = torch.stack(per_tap)
    loss = feature_weight * (feat.sum() if tap_reduction == "sum" else feat.mean())
    if pixel_weight > 0:
        if reconstruction is None or target is None or pixel_mask is None:
            raise ValueError("pixel_weight > 0 needs reconstruction, target and pixel_mask")
        m = pixel_mask.to(reconstruction.dtype)
        err = (m * (reconstruction - target.to(reconstruction.dtype)).pow(2)).sum()
        loss = loss + pixel_weight * err / (m.sum() * target.shape[1]).clamp_min(1e-12)
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
        # teacher_input masked: this term runs the teacher itself on the masked image, so the loop's own
        # teacher forward on the full image is not needed for it (other terms may still ask for one)
        self.needs_teacher = cfg.teacher_input == "full"

    def forward(self, ctx: StepContext) -> torch.Tensor:
        c = self.cfg
        x = self._image(ctx)
        mask = random_patch_mask(x.shape[0], x.shape[2], x.shape[3], c.patch_size, c.mask_ratio, device=x.device)
        inputs = list(ctx.inputs)
        inputs[c.input] = x * (1 - mask.to(x.dtype))
        _, feats = ctx.run_student(inputs)
        t_feats = self._teacher_features(ctx, inputs)
        projected, targets = [], []
        for proj, sp, tp in zip(self.projectors, c.students, c.teachers, strict=True):
            p = proj(feature(feats, "student", sp, c.kind))
            t = feature(t_feats, "teacher", tp, c.kind)
            check_same_shape(p, t, c.kind, "feature (after projector)")
            projected.append(p)
            targets.append(t)
        recon, target = None, None
        if self.pixel_head is not None:
            if x.shape[1] != c.image_channels:
                raise TrainingError(f"loss 'mae_feature': image_channels={c.image_channels} but input {c.input} "
                                    f"has {x.shape[1]} channels", hint=f"set image_channels: {x.shape[1]}")
            last = feature(feats, "student", c.students[-1], c.kind)
            recon = self.pixel_head(last, (x.shape[2], x.shape[3]))
            target = patch_normalized(x.to(recon.dtype), c.patch_size) if c.norm_pix else x
        return mae_feature_loss(projected, targets, feature_weight=c.feature_weight,
                                feature_distance=c.feature_distance, normalize_features=c.normalize_features,
                                tap_reduction=c.tap_reduction, pixel_weight=c.pixel_weight, reconstruction=recon,
                                target=target, pixel_mask=mask)

    def _image(self, ctx: StepContext) -> torch.Tensor:
        c = self.cfg
        if c.input >= len(ctx.inputs):
            raise TrainingError(f"loss 'mae_feature': input={c.input} but the model takes {len(ctx.inputs)} input(s)",
                                hint="set input to the index of the image input")
        x = ctx.inputs[c.input]
        if x.ndim != 4:
            raise TrainingError(f"loss 'mae_feature': input {c.input} has shape {tuple(x.shape)}; masking "
                                f"patches needs a [B,C,H,W] image", hint="set input to the image input's index")
        return x

    def _teacher_features(self, ctx: StepContext, masked_inputs: Sequence[torch.Tensor]) -> Mapping[str, torch.Tensor]:
        if self.cfg.teacher_input == "full":
            return ctx.teacher_feats
        if ctx.run_teacher is None:
            raise ConfigError("loss 'mae_feature' needs a teacher, but this run has none",
                              hint="configure a teacher, or drop the loss for a baseline run")
        _, t_feats = ctx.run_teacher(masked_inputs)
        return t_feats


@LOSSES.register(MAEFeatureConfig)
def build_mae_feature(cfg: MAEFeatureConfig, probe: TapProbe) -> LossTerm:
    if not probe.teacher_out_shapes:
        raise ConfigError("loss 'mae_feature' needs a teacher, but none was given",
                          hint="configure a teacher, or drop the loss for a baseline run")
    projectors: list[nn.Module] = []
    for sp, tp in zip(cfg.students, cfg.teachers, strict=True):
        s, t = probe_shape(probe, "student", sp), probe_shape(probe, "teacher", tp)
        # Always a trainable projector, as DMAE's projection heads: the student's features live in
        # their own space even where the shapes agree.
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
