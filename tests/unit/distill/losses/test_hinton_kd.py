import math

import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.hinton_kd import HintonKDConfig, hinton_kd_loss


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def _ref_rows(s: np.ndarray, t: np.ndarray, T: float, weights: np.ndarray | None = None) -> float:
    """Explicit loops over rows [N, C]."""
    total, count = 0.0, 0.0
    for i in range(s.shape[0]):
        w = 1.0 if weights is None else float(weights[i])
        p, q = _softmax(t[i] / T), _softmax(s[i] / T)
        kl = sum(p[c] * (math.log(p[c]) - math.log(q[c])) for c in range(s.shape[1]))
        total += w * kl
        count += w
    return total / count * T * T


@pytest.mark.parametrize("T", [1.0, 4.0, 0.5])
def test_classification(T: float, gen: torch.Generator) -> None:
    s = torch.randn(5, 7, generator=gen, dtype=torch.float64) * 3
    t = torch.randn(5, 7, generator=gen, dtype=torch.float64) * 3
    assert hinton_kd_loss(s, t, T).item() == pytest.approx(_ref_rows(s.numpy(), t.numpy(), T), abs=1e-10)


def test_dense_per_pixel(gen: torch.Generator) -> None:
    s = torch.randn(2, 4, 3, 5, generator=gen, dtype=torch.float64)
    t = torch.randn(2, 4, 3, 5, generator=gen, dtype=torch.float64)
    rows_s = s.permute(0, 2, 3, 1).reshape(-1, 4).numpy()
    rows_t = t.permute(0, 2, 3, 1).reshape(-1, 4).numpy()
    assert hinton_kd_loss(s, t, 2.0).item() == pytest.approx(_ref_rows(rows_s, rows_t, 2.0), abs=1e-10)


def test_sequence_with_mask(gen: torch.Generator) -> None:
    s = torch.randn(3, 6, 11, generator=gen, dtype=torch.float64)
    t = torch.randn(3, 6, 11, generator=gen, dtype=torch.float64)
    mask = torch.ones(3, 6)
    mask[0, 4:] = 0
    mask[2, 1:] = 0
    got = hinton_kd_loss(s, t, 1.5, mask=mask)
    ref = _ref_rows(s.reshape(-1, 11).numpy(), t.reshape(-1, 11).numpy(), 1.5, mask.reshape(-1).numpy())
    assert got.item() == pytest.approx(ref, abs=1e-10)
    # padded positions really are ignored: changing them changes nothing
    s2 = s.clone()
    s2[2, 3] += 100
    assert hinton_kd_loss(s2, t, 1.5, mask=mask).item() == pytest.approx(got.item(), abs=1e-12)


def test_all_masked_is_zero_not_nan(gen: torch.Generator) -> None:
    s, t = torch.randn(2, 3, 4, generator=gen), torch.randn(2, 3, 4, generator=gen)
    assert hinton_kd_loss(s, t, 2.0, mask=torch.zeros(2, 3)).item() == 0.0


def test_identical_logits_give_zero_and_temperature_edges(gen: torch.Generator) -> None:
    z = torch.randn(4, 10, generator=gen, dtype=torch.float64) * 5
    assert hinton_kd_loss(z, z.clone(), 3.0).item() == pytest.approx(0.0, abs=1e-12)
    s = torch.randn(4, 10, generator=gen, dtype=torch.float64) * 5
    # tiny T: sharp distributions, still finite and equal to the reference
    small = hinton_kd_loss(s, z, 0.05)
    assert torch.isfinite(small)
    # large T: T^2 KL -> (1/2C) sum_c (d_c - mean d)^2 per row, d = z_s - z_t (second-order expansion)
    d = (s - z).numpy()
    limit = np.mean([((r - r.mean()) ** 2).sum() / (2 * 10) for r in d])
    assert hinton_kd_loss(s, z, 1e4).item() == pytest.approx(limit, rel=1e-3)


def test_gradcheck(gen: torch.Generator) -> None:
    s = torch.randn(3, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: hinton_kd_loss(x, t, 2.0), (s,))


def test_term_with_mask_key(make_ctx, make_probe, gen: torch.Generator) -> None:
    s, t = torch.randn(2, 4, 9, generator=gen), torch.randn(2, 4, 9, generator=gen)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    cfg = HintonKDConfig(temperature=2.0, mask_key="attention_mask")
    term = LOSSES.get(cfg)(cfg, make_probe([s], [t]))
    got = term(make_ctx([s], [t], batch={"attention_mask": mask}))
    assert got.item() == pytest.approx(hinton_kd_loss(s, t, 2.0, mask=mask).item(), rel=1e-6)
    from edgekd.errors import UnknownNameError
    with pytest.raises(UnknownNameError, match="attention_mask"):
        term(make_ctx([s], [t], batch={"attn_mask": mask}))


def test_half_precision_is_computed_in_float32(gen: torch.Generator) -> None:
    s, t = torch.randn(4, 50, generator=gen), torch.randn(4, 50, generator=gen)
    got = hinton_kd_loss(s.bfloat16(), t.bfloat16(), 2.0)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(hinton_kd_loss(s.bfloat16().float(), t.bfloat16().float(), 2.0).item(), rel=1e-6)


def test_config_rejects_bad_temperature_and_output() -> None:
    for bad in ({"temperature": 0.0}, {"temperature": -1.0}, {"output": -1}):
        with pytest.raises(ValueError):
            HintonKDConfig(**bad)
