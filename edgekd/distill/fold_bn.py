"""Fold BatchNorm into the convolution before it, in place, for quantization-aware fine-tuning.

Why: an INT8 runtime never sees a BatchNorm. The exporter (and every PTQ tool) folds
``BN(conv(x))`` into one convolution with weight ``W * g / sqrt(v + eps)`` (per output channel)
and bias ``(b - m) * g / sqrt(v + eps) + beta``, and quantizes *that* weight. Fake-quantizing the
unfolded ``W`` trains the wrong tensor and leaves a float BN between integer ops. Jacob et al.,
"Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference"
(CVPR 2018, section 3.2) fold BN for QAT; Krishnamoorthi, "Quantizing deep convolutional networks
for efficient inference" (arXiv:1806.08342, section 3.2) recommends freezing the BN statistics when
fine-tuning: folding them is the limit of that.

Scope: a ``Conv{1,2,3}d`` immediately followed by a ``BatchNorm{1,2,3}d`` of matching width inside an
``nn.Sequential`` (how every edgekd model writes conv-bn-act). The convolution keeps its module
path (feature taps still resolve) and gains a bias; the BatchNorm becomes ``nn.Identity``.
Pairs written as separate attributes and called in ``forward`` are left alone and counted.
"""

from __future__ import annotations

import torch
from torch import nn

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def fold_conv_bn_(conv: nn.Module, bn: nn.Module) -> None:
    """Fold ``bn`` (running statistics) into ``conv``'s weight and bias, in place."""
    if not (isinstance(conv, _CONV) and isinstance(bn, _BN)):
        raise TypeError(f"fold_conv_bn_ needs a Conv and a BatchNorm, got {type(conv).__name__} and "
                        f"{type(bn).__name__}")
    running_var, running_mean = bn.running_var, bn.running_mean
    if running_var is None or running_mean is None:
        raise ValueError("a BatchNorm with track_running_stats=False has no statistics to fold")
    with torch.no_grad():
        scale = torch.rsqrt(running_var + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight
        bias = conv.bias if conv.bias is not None else torch.zeros_like(running_mean)
        new_bias = (bias - running_mean) * scale + (bn.bias if bn.bias is not None else 0.0)
        conv.weight.mul_(scale.reshape(-1, *([1] * (conv.weight.dim() - 1))))
        if conv.bias is None:
            conv.bias = nn.Parameter(new_bias.detach().clone())
        else:
            conv.bias.copy_(new_bias)


def fold_batchnorm(model: nn.Module) -> tuple[int, int]:
    """Fold every Conv -> BatchNorm pair of ``model``'s Sequentials, in place.

    Returns ``(folded, left)``: pairs folded, and BatchNorm modules that could not be (not
    directly after a convolution of the same width in a Sequential). Call on a model in eval
    mode semantics: the running statistics are what gets folded.
    """
    folded = 0
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:], strict=False):
            conv, bn = seq._modules[a], seq._modules[b]
            if (isinstance(conv, _CONV) and isinstance(bn, _BN) and conv.out_channels == bn.num_features
                    and bn.running_var is not None):
                fold_conv_bn_(conv, bn)
                seq._modules[b] = nn.Identity()
                folded += 1
    left = sum(isinstance(m, _BN) for m in model.modules())
    return folded, left
