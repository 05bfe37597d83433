"""Size and compute of a torch model, for reports and benchmarks: parameters and multiply-accumulates.

The one parameter counter and the one FLOP counter for torch models in edgekd (ONNX graphs are counted by
the roofline analysis in ``edgekd.profile.estimate``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def param_count(model: Any, *, include: Callable[[str], bool] | None = None) -> int:
    """Parameters (not buffers) of ``model``; ``include(name)`` selects by parameter name.

    Anything that is not an ``nn.Module`` (an analytic teacher, an ONNX teacher) has 0 parameters.
    """
    if not isinstance(model, nn.Module):
        return 0
    return sum(p.numel() for n, p in model.named_parameters() if include is None or include(n))


def macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass on ``inputs`` (batch 1 expected): half the FLOPs that torch's
    ``FlopCounterMode`` counts, i.e. convolutions, matrix products (linear, bmm) and attention; elementwise
    ops are not counted. Run in eval mode without gradients; the model's mode is restored."""
    from torch.utils.flop_counter import FlopCounterMode

    was = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*inputs)
    finally:
        model.train(was)
    return int(counter.get_total_flops()) // 2
