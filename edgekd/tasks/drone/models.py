"""The NSER-IBVS student: a small ConvNet that regresses the teacher's normalised commands.

conv 5x5 16 (stride 2) -> conv 5x5 32 (stride 2) -> conv 3x3 64, 128, 256, 512 (each with
BatchNorm and an activation; a max-pool after each of these but the last keeps the compute small)
-> global average pool -> FC 256 -> activation -> FC 3 -> tanh. At width 1.0 that is 1,714,835
parameters (the paper's "about 1.7M"); ``width_mult=0.5`` halves every channel count (429,771).

Activation: ReLU by default, GELU selectable. Why ReLU: ONNX Runtime fuses Conv+ReLU, and in a
static INT8 graph ReLU folds into the uint8 output range of QLinearConv, while GELU stays a float
op between a DequantizeLinear and a QuantizeLinear. Measured at 96 px, batch 1, 1 thread (ORT
1.32, untrained weights, interleaved): GELU FP32 1.61 ms / INT8 1.45 ms; ReLU FP32 1.42 ms /
INT8 0.875 ms. With GELU, INT8 bought only 1.1x; with ReLU, 1.6x.

Downsampling in the first two blocks: a stride-2 convolution by default ("strided"), the
conv + max-pool of the other blocks selectable ("pool"). Same parameters (1,714,835); the
full-resolution 5x5 convolution and its activation and pool were the largest cost: 52.7M vs
83.1M MACs at 96 px, ORT FP32 0.95 vs 1.41 ms, INT8 0.38 vs 0.87 ms (1 thread, ReLU, measured
side by side with untrained weights). The two layouts have the same parameter shapes, so weights
load into either: load them into the layout they were trained with (the run's resolved recipe says
which).
"""

from __future__ import annotations

import torch
from torch import nn

from edgekd.tasks.model_stats import macs as _macs
from edgekd.tasks.model_stats import param_count as param_count


def _act(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "gelu":
        return nn.GELU()
    from edgekd.errors import ConfigError

    raise ConfigError(f"task.activation={name!r}: allowed relu, gelu")


def _block(cin: int, cout: int, k: int, pool: bool, act: str, stride: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
                               nn.BatchNorm2d(cout), _act(act)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class StudentNet(nn.Module):
    """``forward(image [B,3,H,W] in [0,1]) -> commands [B,3] in (-1, 1)``."""

    def __init__(self, width_mult: float = 1.0, activation: str = "relu", downsample: str = "strided") -> None:
        super().__init__()
        if downsample not in ("strided", "pool"):
            from edgekd.errors import ConfigError

            raise ConfigError(f"task.downsample={downsample!r}: allowed strided, pool")
        ch = [max(4, int(round(c * width_mult))) for c in (16, 32, 64, 128, 256, 512)]
        hidden = max(8, int(round(256 * width_mult)))
        pool, stride = (True, 1) if downsample == "pool" else (False, 2)
        self.features = nn.Sequential(
            _block(3, ch[0], 5, pool, activation, stride), _block(ch[0], ch[1], 5, pool, activation, stride),
            _block(ch[1], ch[2], 3, True, activation), _block(ch[2], ch[3], 3, True, activation),
            _block(ch[3], ch[4], 3, True, activation), _block(ch[4], ch[5], 3, False, activation),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Linear(ch[5], hidden), _act(activation), nn.Linear(hidden, 3))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(image)).flatten(1)
        return torch.tanh(self.head(x))


def macs(model: nn.Module, size: int) -> int:
    """Multiply-accumulates of one forward pass at ``size`` x ``size`` (see :func:`edgekd.tasks.model_stats.macs`)."""
    return _macs(model, torch.zeros(1, 3, size, size))
