"""token_kd, reverse_kl and jsd against explicit per-row loops."""

import math

import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.hinton_kd import hinton_kd_loss
from edgekd.distill.losses.jsd import JSDConfig, generalized_jsd_loss
from edgekd.distill.losses.reverse_kl import ReverseKLConfig, reverse_kl_loss
from edgekd.distill.losses.token_kd import TokenKDConfig, token_kd_loss


def _sm(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def _rows(s: torch.Tensor, t: torch.Tensor, fn, T: float, mask=None) -> float:
    V = s.shape[-1]
    S, Tt = s.reshape(-1, V).numpy(), t.reshape(-1, V).numpy()
    m = np.ones(len(S)) if mask is None else mask.reshape(-1).numpy().astype(float)
    vals = [fn(_sm(Tt[i] / T), _sm(S[i] / T)) for i in range(len(S))]
    return float(np.dot(vals, m) / m.sum() * T * T)


def _kl(p, q) -> float:
    return sum(p[c] * math.log(p[c] / q[c]) for c in range(len(p)))


@pytest.fixture
def seq(gen: torch.Generator):
    s = torch.randn(3, 5, 9, generator=gen, dtype=torch.float64) * 2
    t = torch.randn(3, 5, 9, generator=gen, dtype=torch.float64) * 2
    mask = torch.ones(3, 5, dtype=torch.long)
    mask[1, 2:] = 0
    return s, t, mask


@pytest.mark.parametrize("T", [1.0, 2.5])
def test_token_kd(seq, T: float) -> None:
    s, t, mask = seq
    ref = _rows(s, t, lambda p, q: -sum(p[c] * math.log(q[c]) for c in range(len(p))), T, mask)
    assert token_kd_loss(s, t, mask, T).item() == pytest.approx(ref, abs=1e-10)
    # same gradient as hinton KL (they differ by the teacher entropy only)
    a = s.clone().requires_grad_(True)
    b = s.clone().requires_grad_(True)
    token_kd_loss(a, t, mask, T).backward()
    hinton_kd_loss(b, t, T, mask=mask).backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-12)


@pytest.mark.parametrize("T", [1.0, 3.0])
def test_reverse_kl(seq, T: float) -> None:
    s, t, mask = seq
    ref = _rows(s, t, lambda p, q: _kl(q, p), T, mask)
    assert reverse_kl_loss(s, t, T, mask=mask).item() == pytest.approx(ref, abs=1e-10)


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
def test_jsd(seq, beta: float) -> None:
    s, t, mask = seq

    def jsd(p, q):
        m = beta * p + (1 - beta) * q
        return beta * _kl(p, m) + (1 - beta) * _kl(q, m)

    ref = _rows(s, t, jsd, 2.0, mask)
    assert generalized_jsd_loss(s, t, beta, 2.0, mask=mask).item() == pytest.approx(ref, abs=1e-10)


def test_jsd_limits(gen: torch.Generator) -> None:
    s = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    t = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    b = 1e-6
    # JSD(beta) / beta -> forward KL(P||Q) as beta -> 0; / (1-beta) -> reverse KL as beta -> 1
    assert (generalized_jsd_loss(s, t, b) / b).item() == pytest.approx(hinton_kd_loss(s, t, 1.0).item(), rel=1e-4)
    assert (generalized_jsd_loss(s, t, 1 - b) / b).item() == pytest.approx(reverse_kl_loss(s, t, 1.0).item(), rel=1e-4)
    assert generalized_jsd_loss(t, t.clone(), 0.5).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("fn", [
    lambda x, t: token_kd_loss(x, t, None, 2.0),
    lambda x, t: reverse_kl_loss(x, t, 2.0),
    lambda x, t: generalized_jsd_loss(x, t, 0.3, 1.5),
])
def test_gradcheck(fn, gen: torch.Generator) -> None:
    s = torch.randn(2, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(2, 3, 4, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: fn(x, t), (s,))


@pytest.mark.parametrize("cfg,fn", [
    (TokenKDConfig(mask_key="m", temperature=2.0), lambda s, t, m: token_kd_loss(s, t, m, 2.0)),
    (ReverseKLConfig(mask_key="m"), lambda s, t, m: reverse_kl_loss(s, t, 1.0, mask=m)),
    (JSDConfig(mask_key="m", beta=0.2), lambda s, t, m: generalized_jsd_loss(s, t, 0.2, mask=m)),
])
def test_terms(cfg, fn, seq, make_ctx, make_probe) -> None:
    s, t, mask = seq
    term = LOSSES.get(cfg)(cfg, make_probe([s], [t]))
    got = term(make_ctx([s], [t], batch={"m": mask}))
    assert got.item() == pytest.approx(fn(s, t, mask).item(), abs=1e-12)


def test_jsd_beta_bounds() -> None:
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError):
            JSDConfig(beta=bad)
