"""Masked-autoencoder pre-training of the gaze teacher on unlabelled synthetic eyes (FCMAE-style).

ConvNeXt V2 (Woo et al., CVPR 2023, arXiv:2301.00808) pre-trains its backbone with the fully
convolutional masked autoencoder (FCMAE): a random ``mask_ratio`` of square patches is hidden,
the encoder sees only the visible pixels, a light decoder predicts the image, and the loss is
the mean squared error on the MASKED pixels only:

    L = sum_p M_p * (D(E(x * (1 - M)))_p - x_p)^2 / sum_p M_p

GazeGen's DFT Gaze (arXiv:2411.04335) starts its teacher from such a checkpoint; offline we
pre-train the same objective on images of wearers no labelled split contains
(``synth.WEARER_BASE["unlabelled"]``). ConvNeXt V2 uses sparse convolutions so that masked
regions carry nothing through the network; the dense equivalent used here (as the paper's own
dense implementation does) fills the masked input with the image mid-grey (0 after the
network's input normalisation) and multiplies the stem output by ``1 - M`` at its resolution.
Adapters stay frozen (identity) during pre-training: they belong to the generalised phase.

Decoder (kept light, as FCMAE's single ConvNeXt block): 1x1 conv to ``decoder_dim``, a 3x3
depthwise conv + GELU + 1x1 conv residual, then a 1x1 conv to ``s*s*C`` values per final
position (s = the backbone's total stride) rearranged into pixels (pixel shuffle), resized to
the input if the image is not a multiple of s.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekd.errors import ConfigError, TrainingError
from edgekd.tasks.gaze import synth
from edgekd.tasks.gaze.config import GazeMAEConfig, GazeTaskConfig
from edgekd.tasks.gaze.models import GazeNet


@dataclass
class MAEResult:
    history: list[float] = field(default_factory=list)  # mean masked-pixel MSE per epoch
    seconds: float = 0.0
    images: int = 0
    decoder: nn.Module | None = None  # the trained decoder (diagnostics; not part of the teacher)


class FCMAEDecoder(nn.Module):
    """Light decoder: last-stage features [B, C, h, w] -> image [B, channels, h*s, w*s]."""

    def __init__(self, in_dim: int, stride: int, channels: int = 1, decoder_dim: int = 64) -> None:
        super().__init__()
        self.stride = stride
        self.proj = nn.Conv2d(in_dim, decoder_dim, 1)
        self.dw = nn.Conv2d(decoder_dim, decoder_dim, 3, padding=1, groups=decoder_dim)
        self.pw = nn.Conv2d(decoder_dim, decoder_dim, 1)
        self.pred = nn.Conv2d(decoder_dim, stride * stride * channels, 1)

    def forward(self, feats: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = self.proj(feats)
        y = y + self.pw(F.gelu(self.dw(y)))
        y = F.pixel_shuffle(self.pred(y), self.stride)
        if tuple(y.shape[2:]) != size:  # images that are not a multiple of the total stride
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        return y


def patch_mask(batch: int, height: int, width: int, patch: int, ratio: float,
               generator: torch.Generator) -> torch.Tensor:
    """[B, 1, H, W] float, 1 on masked pixels: exactly round(ratio * n) of the n patches per image."""
    gh, gw = math.ceil(height / patch), math.ceil(width / patch)
    n = gh * gw
    m = int(round(ratio * n))
    rank = torch.rand(batch, n, generator=generator).argsort(dim=1).argsort(dim=1)
    grid = (rank < m).float().reshape(batch, 1, gh, gw)
    full = grid.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)
    return full[:, :, :height, :width]


def masked_features(net: GazeNet, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The backbone's last-stage features of ``image`` with ``mask`` (1 = hidden) applied densely."""
    x = (image * (1 - mask) + 0.5 * mask - 0.5) * 4.0  # hidden pixels -> 0 after normalisation
    x = net.downsample[0](x)
    # Zero the hidden positions after the stem too, so no stem bias leaks "where the holes are" as
    # content (the dense stand-in for FCMAE's sparse convolution).
    keep = 1 - F.interpolate(mask, size=x.shape[2:], mode="area")
    x = net.stages[0](x * keep)
    for ds, stage in zip(list(net.downsample)[1:], list(net.stages)[1:], strict=True):
        x = stage(ds(x))
    return x


def masked_pixel_mse(pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum(M * (pred - x)^2) / (sum(M) * C): MSE on masked pixels only."""
    m = mask.to(pred.dtype)
    return (m * (pred - image) ** 2).sum() / (m.sum() * image.shape[1]).clamp_min(1e-12)


def total_stride(net: GazeNet) -> int:
    stem = net.downsample[0][0]  # type: ignore[index]
    if not isinstance(stem, nn.Conv2d):
        raise ConfigError("MAE pre-training: the gaze network's stem is not a Conv2d")
    return int(stem.stride[0]) * 2 ** (len(net.stages) - 1)


def unlabelled_images(task_cfg: GazeTaskConfig, cfg: GazeMAEConfig, seed: int) -> np.ndarray:
    """[N, 1, H, W] uint8 images of the unlabelled wearers (disjoint from every labelled split)."""
    ids = synth.WEARER_BASE["unlabelled"] + np.arange(cfg.images) % cfg.wearers
    return synth.generate(task_cfg, ids, seed, synth.STREAM["unlabelled"]).images


def pretrain_mae(net: GazeNet, images: np.ndarray, cfg: GazeMAEConfig, *, seed: int = 0,
                 progress: bool = False, say: object = print) -> MAEResult:
    """Pre-train ``net``'s backbone (stem, downsamples, blocks; not adapters or head) in place."""
    if images.ndim != 4 or images.shape[0] < 2:
        raise ConfigError(f"MAE pre-training needs images [N>=2, C, H, W]; got shape {tuple(images.shape)}",
                          hint="raise task.mae.images")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    decoder = FCMAEDecoder(net.dims[-1], total_stride(net), images.shape[1], cfg.decoder_dim)
    backbone = [p for n, p in net.named_parameters()
                if not n.startswith("head.") and ".adapter." not in n]
    frozen = [p for n, p in net.named_parameters() if n.startswith("head.") or ".adapter." in n]
    was = [p.requires_grad for p in frozen]
    for p in frozen:
        p.requires_grad_(False)
    opt = torch.optim.AdamW([*backbone, *decoder.parameters()], lr=cfg.lr, weight_decay=0.05,
                            betas=(0.9, 0.95))
    data = torch.from_numpy(np.ascontiguousarray(images))
    n = data.shape[0]
    bs = min(cfg.batch_size, n)
    steps_per_epoch = max(1, n // bs)
    total = cfg.epochs * steps_per_epoch
    res = MAEResult(images=n)
    t0 = time.perf_counter()
    net.train()
    decoder.train()
    step = 0
    try:
        for epoch in range(cfg.epochs):
            order = torch.randperm(n, generator=gen)
            losses = []
            for b in range(steps_per_epoch):
                x = data[order[b * bs:(b + 1) * bs]].float() / 255.0
                mask = patch_mask(x.shape[0], x.shape[2], x.shape[3], cfg.patch_size, cfg.mask_ratio, gen)
                pred = decoder(masked_features(net, x, mask), (x.shape[2], x.shape[3]))
                loss = masked_pixel_mse(pred, x, mask)
                if not torch.isfinite(loss):
                    raise TrainingError(f"MAE pre-training: loss is {float(loss.detach())} at epoch {epoch}, step {b}",
                                        hint="lower task.mae.lr")
                # cosine schedule with a short linear warm-up (5% of the steps), as MAE/FCMAE do
                warm = max(1, total // 20)
                f = (step + 1) / warm if step < warm else 0.5 * (1 + math.cos(math.pi * (step - warm) /
                                                                           max(1, total - warm)))
                for g in opt.param_groups:
                    g["lr"] = cfg.lr * f
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([*backbone, *decoder.parameters()], 5.0)
                opt.step()
                losses.append(float(loss.detach()))
                step += 1
            res.history.append(float(np.mean(losses)))
            if progress and callable(say):
                say(f"  MAE epoch {epoch + 1}/{cfg.epochs}: masked-pixel MSE {res.history[-1]:.5f}")
    finally:
        for p, r in zip(frozen, was, strict=True):
            p.requires_grad_(r)
    net.eval()
    res.decoder = decoder.eval()
    res.seconds = time.perf_counter() - t0
    return res


@torch.no_grad()
def reconstruction_error(net: GazeNet, decoder: nn.Module, images: np.ndarray, cfg: GazeMAEConfig,
                         seed: int = 0) -> float:
    """Masked-pixel MSE of ``decoder(net(masked images))`` (a diagnostic for tests and reports)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0
    mask = patch_mask(x.shape[0], x.shape[2], x.shape[3], cfg.patch_size, cfg.mask_ratio, gen)
    return float(masked_pixel_mse(decoder(masked_features(net, x, mask), (x.shape[2], x.shape[3])), x, mask))
