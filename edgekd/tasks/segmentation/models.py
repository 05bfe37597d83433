"""Segmentation networks in plain torch: a DeepLabV3-style teacher and a MobileNetV2-style student.

Teacher (Chen et al., "Rethinking Atrous Convolution for Semantic Image Segmentation",
arXiv:1706.05587): a residual backbone whose last stage replaces striding by dilation (rate 2),
so the output stride is 8; Atrous Spatial Pyramid Pooling on top (a 1x1 branch, 3x3 branches
at several rates, and an image-pooling branch, concatenated and projected), a 3x3 head and a
1x1 classifier; logits are bilinearly upsampled to the input size.

Student (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
arXiv:1801.04381): inverted residual blocks (1x1 expand -> 3x3 depthwise -> 1x1 linear
project, residual when shapes match), the last stages dilated instead of strided (output
stride 8, as the DeepLabV3-MobileNetV2 students of CWD and ACAM-KD), and a light ASPP
(a 1x1 branch and an image-pooling branch only, as in LR-ASPP of MobileNetV3).

Both expose the same module names for distillation taps: ``aspp`` (the fused ASPP feature,
[B, C, H/8, W/8]) and ``classifier`` (the logits at stride 8, [B, K, H/8, W/8]). The teacher
takes an optional label-hint channel (LAD); without one it sees a zero channel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.tasks.model_stats import macs as _macs
from edgekd.tasks.model_stats import param_count as param_count
from edgekd.tasks.segmentation.config import SegModelConfig


def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, groups: int = 1,
         relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, padding=dilation * (k // 2), dilation=dilation,
                                         groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs) with an optional dilation instead of a stride."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = _cbr(cin, cout, 3, stride, dilation)
        self.conv2 = _cbr(cout, cout, 3, 1, dilation, relu=False)
        self.down = None if stride == 1 and cin == cout else _cbr(cin, cout, 1, stride, relu=False)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.down is None else self.down(x)
        return self.act(self.conv2(self.conv1(x)) + skip)


class ImagePool(nn.Module):
    """ASPP's image-level branch: global average -> 1x1 conv -> broadcast back to the map."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = _cbr(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # expand_as (not interpolate) keeps the ONNX graph free of a Resize on a 1x1 map
        y = self.conv(self.pool(x))
        return y.expand(-1, -1, x.shape[2], x.shape[3])


class ASPP(nn.Module):
    """DeepLabV3 ASPP: [1x1, 3x3 at each rate, image pool] -> concat -> 1x1 projection."""

    def __init__(self, cin: int, cout: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        branches: list[nn.Module] = [_cbr(cin, cout, 1)]
        branches += [_cbr(cin, cout, 3, dilation=r) for r in rates if r > 1]
        branches.append(ImagePool(cin, cout))
        self.branches = nn.ModuleList(branches)
        self.project = _cbr(cout * len(branches), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([b(x) for b in self.branches], 1))


class DeepLabTeacher(nn.Module):
    """``forward(image [B,3,H,W], hint [B,1,H,W] | None) -> logits [B,K,H,W]`` (output stride 8)."""

    def __init__(self, num_classes: int, cfg: SegModelConfig) -> None:
        super().__init__()
        w = cfg.teacher_widths
        self.stem = nn.Sequential(_cbr(4, w[0], 3, 2), _cbr(w[0], w[0], 3))  # 3 RGB + 1 label-hint channel
        self.layer1 = nn.Sequential(BasicBlock(w[0], w[1], stride=2), BasicBlock(w[1], w[1]))
        self.layer2 = nn.Sequential(BasicBlock(w[1], w[2], stride=2), BasicBlock(w[2], w[2]))
        # DeepLabV3: the last stage keeps stride 8 and dilates instead (multi-grid rates 2, 4)
        self.layer3 = nn.Sequential(BasicBlock(w[2], w[3], dilation=2), BasicBlock(w[3], w[3], dilation=4))
        self.aspp = ASPP(w[3], cfg.teacher_aspp, tuple(cfg.teacher_rates))
        self.head = _cbr(cfg.teacher_aspp, cfg.teacher_aspp, 3)
        self.classifier = nn.Conv2d(cfg.teacher_aspp, num_classes, 1)

    def forward(self, image: torch.Tensor, hint: torch.Tensor | None = None) -> torch.Tensor:
        if hint is None:
            hint = image.new_zeros(image.shape[0], 1, image.shape[2], image.shape[3])
        x = self.stem(torch.cat([image, hint.to(image.dtype)], 1))
        x = self.layer3(self.layer2(self.layer1(x)))
        logits = self.classifier(self.head(self.aspp(x)))
        return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (t) -> 3x3 depthwise (stride or dilation) -> 1x1 linear projection."""

    def __init__(self, cin: int, cout: int, expand: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = [] if expand == 1 else [_cbr(cin, mid, 1)]
        layers += [_cbr(mid, mid, 3, stride, dilation, groups=mid), _cbr(mid, cout, 1, relu=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


def _ch(c: int, mult: float) -> int:
    return max(8, int(round(c * mult / 8)) * 8)


class MobileNetV2Student(nn.Module):
    """``forward(image [B,3,H,W]) -> logits [B,K,H,W]``: MobileNetV2 (output stride 8) + light ASPP."""

    # (expansion t, channels c, repeats n, stride s, dilation) as in MobileNetV2's table 2, shortened
    SETTINGS = ((1, 16, 1, 1, 1), (4, 24, 2, 2, 1), (4, 32, 2, 2, 1), (4, 64, 2, 1, 2), (4, 96, 1, 1, 2))

    def __init__(self, num_classes: int, cfg: SegModelConfig) -> None:
        super().__init__()
        m = cfg.student_width
        c_in = _ch(16, m)
        blocks: list[nn.Module] = [_cbr(3, c_in, 3, 2)]
        for t, c, n, s, d in self.SETTINGS:
            c_out = _ch(c, m)
            for i in range(n):
                blocks.append(InvertedResidual(c_in, c_out, t, s if i == 0 else 1, d))
                c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.aspp = ASPP(c_in, cfg.student_aspp, rates=())  # light ASPP: 1x1 + image pooling
        self.classifier = nn.Conv2d(cfg.student_aspp, num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.aspp(self.features(image)))
        return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)


def macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of one forward pass at height x width (see :func:`edgekd.tasks.model_stats.macs`)."""
    return _macs(model, torch.zeros(1, 3, height, width))
