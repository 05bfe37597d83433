"""MSE weight range setting: never worse than min/max, finds the clipping optimum, exact on easy cases."""

from __future__ import annotations

import pytest
import torch

from edgekd.errors import ConfigError
from edgekd.quantize.weight_range import mse_weight_scale, quantize_symmetric


def _mse(w: torch.Tensor, s: torch.Tensor, bits: int) -> torch.Tensor:
    return ((quantize_symmetric(w, s, bits) - w) ** 2).sum(dim=1)


@pytest.mark.parametrize("bits", [3, 4, 8])
def test_never_worse_than_minmax_per_channel(bits: int) -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, 8, 3, 3, generator=g, dtype=torch.float64)
    w[3, 0, 0, 0] = 12.0  # one outlier channel
    s = mse_weight_scale(w, bits)
    assert s.shape == (16,)
    flat = w.reshape(16, -1)
    minmax = flat.abs().amax(dim=1) / (2 ** (bits - 1) - 1)
    err, err_mm = _mse(flat, s[:, None], bits), _mse(flat, minmax[:, None], bits)
    assert torch.all(err <= err_mm + 1e-12)
    if bits <= 4:  # Gaussian weights at <= 4 bits: clipping strictly helps (Banner et al. 2019)
        assert err.sum() < 0.9 * err_mm.sum()


def test_matches_brute_force_and_per_tensor_shape() -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(1, 200, generator=g, dtype=torch.float64)
    s = mse_weight_scale(w, 4, per_channel=False, grid=50, min_ratio=0.3)
    assert s.shape == ()
    ratios = torch.linspace(0.3, 1.0, 50, dtype=torch.float64)
    errs = [float(_mse(w, (r * w.abs().max() / 7).reshape(1, 1), 4)) for r in ratios]
    best = ratios[int(torch.tensor(errs).argmin())] * w.abs().max() / 7
    assert float(s) == pytest.approx(float(best), rel=1e-12)


def test_exactly_representable_weights_keep_minmax_scale_and_zero_channels() -> None:
    # weights already on the 4-bit min/max grid: min/max is exact (error 0), nothing beats it
    w = torch.tensor([[-7.0, -3.0, 0.0, 2.0, 7.0], [0.0, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64) * 0.5
    s = mse_weight_scale(w, 4)
    assert float(s[0]) == pytest.approx(0.5)
    assert float(s[1]) == 1.0  # all-zero channel: any scale is exact; 1 avoids a division by zero
    assert torch.equal(quantize_symmetric(w, s[:, None], 4), w)


@pytest.mark.parametrize("kw", [{"bits": 1}, {"bits": 9}, {"bits": 4, "grid": 0}, {"bits": 4, "min_ratio": 0.0}])
def test_bad_arguments_are_config_errors(kw: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        mse_weight_scale(torch.ones(2, 2), **kw)  # type: ignore[arg-type]
