import math

import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.dkd import DKDConfig, dkd_loss
from edgekd.distill.losses.hinton_kd import hinton_kd_loss


def _sm(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def _kl(p, q):
    return sum(p[i] * math.log(p[i] / q[i]) for i in range(len(p)))


def _ref(s, t, y, a, b, T, ignore=-100):
    vals = []
    for n in range(len(y)):
        if y[n] == ignore:
            continue
        ps, pt = _sm(s[n] / T), _sm(t[n] / T)
        g = y[n]
        tckd = _kl([pt[g], 1 - pt[g]], [ps[g], 1 - ps[g]])
        others = [c for c in range(len(ps)) if c != g]
        nckd = _kl(_sm(t[n][others] / T), _sm(s[n][others] / T))
        vals.append(a * tckd + b * nckd)
    return float(np.mean(vals)) * T * T


@pytest.mark.parametrize("a,b,T", [(1.0, 8.0, 4.0), (0.5, 2.0, 1.0)])
def test_matches_reference(a, b, T, gen: torch.Generator) -> None:
    s = torch.randn(6, 5, generator=gen, dtype=torch.float64) * 2
    t = torch.randn(6, 5, generator=gen, dtype=torch.float64) * 2
    y = torch.randint(0, 5, (6,), generator=gen)
    y[2] = -100
    got = dkd_loss(s, t, y, alpha=a, beta=b, temperature=T)
    assert got.item() == pytest.approx(_ref(s.numpy(), t.numpy(), y.numpy(), a, b, T), abs=1e-10)


def test_decomposition_recovers_kd(gen: torch.Generator) -> None:
    # KD = TCKD + (1 - p_t,g) NCKD: with beta weighted per row it is exact; on a batch where the
    # teacher assigns ~0 mass to the target, alpha=beta=1 equals KD
    s = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    t = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    y = torch.zeros(4, dtype=torch.long)
    t[:, 0] = -60.0
    assert dkd_loss(s, t, y, alpha=1.0, beta=1.0, temperature=1.0).item() == pytest.approx(
        hinton_kd_loss(s, t, 1.0).item(), rel=1e-8)


def test_dense_labels_and_gradcheck(gen: torch.Generator) -> None:
    s = torch.randn(2, 4, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(2, 4, 3, 3, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (2, 3, 3), generator=gen)
    flat = lambda x: x.permute(0, 2, 3, 1).reshape(-1, 4).detach().numpy()  # noqa: E731
    got = dkd_loss(s, t, y, temperature=2.0)
    assert got.item() == pytest.approx(_ref(flat(s), flat(t), y.reshape(-1).numpy(), 1.0, 8.0, 2.0), abs=1e-10)
    assert torch.autograd.gradcheck(lambda x: dkd_loss(x, t, y, temperature=2.0), (s,))


def test_term(make_ctx, make_probe, gen: torch.Generator) -> None:
    s, t = torch.randn(3, 4, generator=gen), torch.randn(3, 4, generator=gen)
    y = torch.tensor([0, 3, 1])
    cfg = DKDConfig(target_key="y")
    term = LOSSES.get(cfg)(cfg, make_probe([s], [t]))
    assert term(make_ctx([s], [t], batch={"y": y})).item() == pytest.approx(dkd_loss(s, t, y).item(), rel=1e-6)
