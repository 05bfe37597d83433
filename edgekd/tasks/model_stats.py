"""Size and compute of a torch model, for reports and benchmarks: parameters and multiply-accumulates."""

from __future__ import annotations

import torch
from torch import nn

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass on ``inputs`` (batch 1 expected), counted over the
    convolutions and linear layers (the rest is negligible for the CNNs here): a convolution costs
    ``out_elements * in_channels / groups * prod(kernel)``, a linear layer ``out_elements * in_features``.
    Run in eval mode without gradients; the model's mode is restored."""
    total = 0

    def hook(mod: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        per_sample = out.numel() // out.shape[0]
        if isinstance(mod, _CONV):
            k = 1
            for s in mod.kernel_size:
                k *= s
            total += per_sample * (mod.in_channels // mod.groups) * k
        elif isinstance(mod, nn.Linear):
            total += per_sample * mod.in_features

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (*_CONV, nn.Linear))]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return total
