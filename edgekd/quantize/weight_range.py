"""MSE range setting for symmetric low-bit weights: the post-training baseline QAT is judged against.

Rounding weights to ``b`` bits with the min/max scale ``s = max|w| / (2^(b-1) - 1)`` spends the
grid on the largest weight; at 4 bits that leaves most weights on a handful of levels. Clipping
the range trades a larger error on the few weights beyond it for a finer grid everywhere else.
The standard post-training remedy (Nagel et al., "A White Paper on Neural Network Quantization",
arXiv:2106.08295, sec. 3.4.1 "Mean squared error"; Banner et al., "Post training 4-bit
quantization of convolutional networks for rapid-deployment", NeurIPS 2019) picks, per output
channel (or per tensor), the clipping ratio ``a`` in ``(0, 1]`` that minimises

    || w - s_a * clamp(round(w / s_a), -2^(b-1), 2^(b-1) - 1) ||^2,   s_a = a * max|w| / (2^(b-1) - 1)

by a grid search over ``a``. The grid always contains ``a = 1`` (min/max), so the result is never
worse than min/max in weight MSE.
"""

from __future__ import annotations

import torch

from edgekd.errors import ConfigError


def quantize_symmetric(w: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """``scale * clamp(round(w / scale), -2^(b-1), 2^(b-1) - 1)``; ``scale`` broadcasts against ``w``."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return torch.clamp(torch.round(w / scale), qmin, qmax) * scale


def mse_weight_scale(weight: torch.Tensor, bits: int, *, per_channel: bool = True, grid: int = 100,
                     min_ratio: float = 0.2) -> torch.Tensor:
    """Symmetric scales minimising the weight rounding MSE (module docstring).

    Returns shape ``[C_out]`` when ``per_channel`` (axis 0 of ``weight``), else a 0-d tensor.
    ``grid`` ratios are searched, evenly spaced from ``min_ratio`` to 1. All-zero channels get
    the scale 1 (any scale represents them exactly; 0 would divide by zero).
    """
    if not 2 <= bits <= 8:
        raise ConfigError(f"bits={bits}: allowed 2..8", hint="use 8 for INT8 runtimes, 4 for W4")
    if grid < 1 or not 0 < min_ratio <= 1:
        raise ConfigError(f"grid={grid}, min_ratio={min_ratio}: need grid >= 1 and 0 < min_ratio <= 1",
                          hint="e.g. grid=100, min_ratio=0.2")
    qmax = 2 ** (bits - 1) - 1
    w = weight.detach().double()
    flat = w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)
    amax = flat.abs().amax(dim=1)  # [C]
    ratios = torch.linspace(min_ratio, 1.0, grid, dtype=torch.float64) if grid > 1 else torch.ones(1,
                                                                                                     dtype=torch.float64)
    best_err = torch.full_like(amax, float("inf"))
    best = amax / qmax
    safe = torch.where(amax > 0, amax, torch.ones_like(amax))
    for r in ratios:
        s = (r * safe / qmax)[:, None]
        err = ((quantize_symmetric(flat, s, bits) - flat) ** 2).sum(dim=1)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best = torch.where(better, s[:, 0], best)
    best = torch.where(amax > 0, best, torch.ones_like(best)).to(weight.dtype)
    return best if per_channel else best[0]
