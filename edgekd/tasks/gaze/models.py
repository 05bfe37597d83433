"""ConvNeXt-V2-Atto-style gaze networks in plain torch (teacher and student).

ConvNeXt V2 (Woo et al., CVPR 2023, arXiv:2301.00808) block, channels-last inside:
``x + pw2(GRN(GELU(pw1(LN(dwconv_k(x))))))`` with Global Response Normalization
``GRN(X) = gamma * (X * N(X)) + beta + X``, ``G(X)_c = ||X_c||_2`` over space,
``N(X)_c = G(X)_c / (mean_c G(X)_c + 1e-6)``.

After each block sits a bottleneck adapter (as in DFT Gaze, GazeGen arXiv:2411.04335):
``x + up(LeakyReLU(BN(down(x))))`` with down d -> d/4 and up d/4 -> d as 1x1 convolutions;
``up`` is zero-initialised so an adapter starts as the identity. Personalisation trains only
the adapters of the last stage.

Layout (module paths, for feature taps): ``downsample.0`` is the stem (k x k patchify,
stride k, LN), ``downsample.{1,2,3}`` are LN + 2x2 stride-2 convs, ``stages.{0..3}`` hold the
blocks, ``head`` pools, normalises and maps to (yaw, pitch) in degrees. At 64x96 with the
default stem stride 4 the stages see 16x24, 8x12, 4x6 and 2x3 positions.

The model takes ``image`` [B, 1, H, W] in [0, 1] and returns ``gaze`` [B, 2] in degrees.
No data-dependent control flow: every op exports to ONNX (opset >= 17 for LayerNormalization).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.tasks.gaze.config import GazeModelConfig
from edgekd.tasks.model_stats import param_count as _param_count

OUT_SCALE_DEG = 10.0  # head outputs are O(1); x10 gives degrees, so initial predictions are plausible


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a [B, C, H, W] tensor (permute, normalise the last axis)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class GRN(nn.Module):
    """Global Response Normalization (ConvNeXt V2) on a channels-last [B, H, W, C] tensor."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # sqrt(sum x^2) rather than torch.norm: exports to plain ONNX ops everywhere. The eps keeps the
        # gradient finite for a channel that is exactly 0 everywhere (GELU underflows to 0 for very negative
        # inputs; at a 1x1 last stage one position suffices): d sqrt(s)/ds is infinite at s = 0, and one NaN
        # gradient ruins the weights. torch.norm avoids it with a zero subgradient; eps is the export-safe way.
        gx = torch.sqrt((x * x).sum(dim=(1, 2), keepdim=True) + 1e-6)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class Adapter(nn.Module):
    """Bottleneck adapter ``x + up(LeakyReLU(BN(down(x))))``; zero-init ``up`` = identity at start."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.down = nn.Conv2d(dim, hidden, 1)
        self.bn = nn.BatchNorm2d(hidden)
        self.act = nn.LeakyReLU(0.1)
        self.up = nn.Conv2d(hidden, dim, 1)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)  # type: ignore[arg-type]  # Conv2d(bias=True) always has one

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.act(self.bn(self.down(x))))


class Block(nn.Module):
    def __init__(self, dim: int, kernel_size: int = 7, adapter_hidden: int = 0) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.adapter = Adapter(dim, adapter_hidden) if adapter_hidden > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(y)))))
        x = x + y.permute(0, 3, 1, 2)
        return self.adapter(x) if self.adapter is not None else x


class GazeHead(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc = nn.Linear(dim, 2)
        nn.init.normal_(self.fc.weight, std=0.02)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x.mean(dim=(2, 3)))) * OUT_SCALE_DEG


class GazeNet(nn.Module):
    """A ConvNeXt-V2-style gaze regressor: ``image [B,1,H,W] in [0,1] -> gaze [B,2] (yaw, pitch) deg``."""

    def __init__(self, dims: Sequence[int], depths: Sequence[int], *, kernel_size: int = 7, stem_stride: int = 4,
                 adapters: bool = True, adapter_reduction: int = 4, in_channels: int = 1) -> None:
        super().__init__()
        self.dims, self.depths = tuple(dims), tuple(depths)
        self.downsample = nn.ModuleList([nn.Sequential(
            nn.Conv2d(in_channels, dims[0], stem_stride, stride=stem_stride), LayerNorm2d(dims[0], eps=1e-6))])
        for i in range(1, len(dims)):
            self.downsample.append(nn.Sequential(LayerNorm2d(dims[i - 1], eps=1e-6),
                                                 nn.Conv2d(dims[i - 1], dims[i], 2, stride=2)))
        self.stages = nn.ModuleList([
            nn.Sequential(*[Block(d, kernel_size, max(1, d // adapter_reduction) if adapters else 0)
                            for _ in range(n)]) for d, n in zip(dims, depths, strict=True)])
        self.head = GazeHead(dims[-1])
        self.apply(_init)
        for m in self.modules():  # after the generic init: adapters start as the identity
            if isinstance(m, Adapter):
                nn.init.zeros_(m.up.weight)
                nn.init.zeros_(m.up.bias)  # type: ignore[arg-type]

    def forward_features(self, image: torch.Tensor) -> torch.Tensor:
        x = (image - 0.5) * 4.0  # [0, 1] -> roughly zero mean, unit spread
        for ds, stage in zip(self.downsample, self.stages, strict=True):
            x = stage(ds(x))
        return x

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(image))


def _init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def build_teacher(cfg: GazeModelConfig) -> GazeNet:
    return GazeNet(cfg.teacher_dims, cfg.depths, kernel_size=cfg.kernel_size, stem_stride=cfg.stem_stride,
                   adapters=cfg.adapters, adapter_reduction=cfg.adapter_reduction)


def build_student(cfg: GazeModelConfig, teacher: GazeNet | None = None) -> GazeNet:
    """The student; with ``teacher`` its first stage (stem and stage-1 blocks) is a copy of the teacher's."""
    student = GazeNet(cfg.student_dims, cfg.depths, kernel_size=cfg.kernel_size, stem_stride=cfg.stem_stride,
                      adapters=cfg.adapters, adapter_reduction=cfg.adapter_reduction)
    if teacher is not None:
        copy_first_stage(teacher, student)
    return student


def train_only_adapters_and_head(model: GazeNet) -> int:
    """Freeze every weight but the bottleneck adapters and the head (DFT Gaze's generalised phase on a
    pre-trained backbone); returns the number of trainable parameters left. The training loop
    optimises only parameters that require gradients."""
    if not any(isinstance(m, Adapter) for m in model.modules()):
        from edgekd.errors import ConfigError

        raise ConfigError("task.mae.finetune=adapters, but the teacher has no adapters to train",
                          hint="set task.model.adapters: true, or task.mae.finetune: full")
    trainable = 0
    for name, p in model.named_parameters():
        keep = ".adapter." in name or name.startswith("head.")
        p.requires_grad_(keep)
        trainable += p.numel() if keep else 0
    return trainable


def copy_first_stage(teacher: GazeNet, student: GazeNet) -> None:
    """Copy ``downsample.0`` (stem) and ``stages.0`` from teacher to student (same widths by construction)."""
    for name in ("downsample.0", "stages.0"):
        src, dst = teacher.get_submodule(name), student.get_submodule(name)
        dst.load_state_dict(src.state_dict())


def param_count(model: nn.Module, *, adapters: bool = True) -> int:
    """Parameters (not buffers); ``adapters=False`` leaves the adapters out."""
    return _param_count(model, include=None if adapters else (lambda n: ".adapter." not in n))


def adapter_parameters(model: GazeNet, stages: Sequence[int] = (3,)) -> list[nn.Parameter]:
    """Parameters of the adapters in the given stages (default: the last one, as DFT Gaze personalises)."""
    out: list[nn.Parameter] = []
    for s in stages:
        for blk in model.stages[s]:  # type: ignore[attr-defined]
            if blk.adapter is not None:
                out.extend(blk.adapter.parameters())
    return out
