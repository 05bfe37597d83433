"""Photometric augmentation as in NSER-IBVS: brightness, saturation, salt-and-pepper noise.

All three leave the geometry, hence the teacher's command, unchanged, and the analytic teacher
is built to see through them (ratio thresholds ignore brightness; the median removes isolated
salt-and-pepper pixels), so the teacher can label augmented views online during distillation.
"""

from __future__ import annotations

import torch

BRIGHTNESS = (0.7, 1.3)  # multiplicative factor
SATURATION = (0.6, 1.4)  # 0 = grey, 1 = unchanged
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)


def augment(image: torch.Tensor, salt_pepper: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """One image [3, H, W] in [0, 1] -> an augmented copy (random factors from ``generator``,
    or torch's global generator, which the training loop seeds)."""
    r = torch.rand(3, generator=generator)
    b = BRIGHTNESS[0] + (BRIGHTNESS[1] - BRIGHTNESS[0]) * r[0]
    s = SATURATION[0] + (SATURATION[1] - SATURATION[0]) * r[1]
    x = image * b
    grey = (x * _LUMA).sum(0, keepdim=True)
    x = grey + s * (x - grey)
    if salt_pepper > 0:
        h, w = image.shape[-2:]
        u = torch.rand(1, h, w, generator=generator)
        x = torch.where(u < salt_pepper / 2, torch.zeros_like(x), x)
        x = torch.where(u > 1 - salt_pepper / 2, torch.ones_like(x), x)
    return x.clamp(0, 1)
