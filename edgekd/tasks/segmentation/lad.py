"""Label Assisted Distillation (LAD; Qiu et al., "Make a Strong Teacher with Label Assistance: A Novel
Knowledge Distillation Approach for Semantic Segmentation", ECCV 2024, arXiv:2407.13254): a
teacher that also reads a noised label channel.

The teacher gets the image plus one extra input channel carrying a corrupted copy of the
ground truth (see :func:`edgekd.tasks.segmentation.task.make_hint`); knowing most of the
answer, it produces sharper, better-aligned soft targets than an image-only teacher. It is
trained *dual-path*: every step computes the loss both with the hint and with a zero channel,
    L_teacher = 1/2 [ CE(f_T(x, h), y) + CE(f_T(x, 0), y) ],
plus a dual-path consistency term as in the paper (here between the hint and the zero path),
    lambda * ||softmax(f_T(x, h)) - softmax(f_T(x, 0))||^2   (``task.lad.consistency``),
so it is also a usable image-only model (how it is evaluated and profiled). The student never
sees labels: its input has no hint channel, which for a first convolution is exactly a zero
channel. During distillation the ``lad`` loss (``edgekd/distill/losses/lad.py``) calls the
teacher with the batch's hint and matches the student to those label-assisted soft targets.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekd.tasks.segmentation.models import DeepLabTeacher


class LADTeacher(nn.Module):
    """``forward(image, hint=None)``: eval -> logits (hint path, or zero path without a hint);
    training with ``dual_path`` and a hint -> (logits with hint, logits with a zero channel)."""

    def __init__(self, net: DeepLabTeacher, dual_path: bool = True) -> None:
        super().__init__()
        self.net = net
        self.dual_path = dual_path

    def forward(self, image: torch.Tensor, hint: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if self.training and self.dual_path and hint is not None:
            # one batched pass over both paths (BatchNorm sees both input distributions)
            both = self.net(torch.cat([image, image]), torch.cat([hint, torch.zeros_like(hint)]))
            return both[: image.shape[0]], both[image.shape[0]:]
        return self.net(image, hint)
