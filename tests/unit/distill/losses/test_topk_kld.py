import math

import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.hinton_kd import hinton_kd_loss
from edgekd.distill.losses.topk_kld import TopKLDConfig, topk_kld_loss
from edgekd.errors import ConfigError


def _sm(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def _kl(p, q):
    return sum(p[i] * math.log(p[i] / q[i]) for i in range(len(p)))


def _ref(s, t, k, gamma, weighted, T):
    vals = []
    for n in range(len(s)):
        ps, pt = _sm(s[n] / T), _sm(t[n] / T)
        top = list(np.argsort(-t[n])[:k])
        tail = [c for c in range(len(ps)) if c not in top]
        mk_s, mk_t = ps[top].sum(), pt[top].sum()
        kl_b = _kl([mk_t, 1 - mk_t], [mk_s, 1 - mk_s])
        kl_k = _kl(pt[top] / mk_t, ps[top] / mk_s)
        kl_tail = _kl(pt[tail] / (1 - mk_t), ps[tail] / (1 - mk_s))
        wk, wt = 2 * (1 - gamma), 2 * gamma
        if weighted:
            wk, wt = wk * mk_t, wt * (1 - mk_t)
        vals.append(kl_b + wk * kl_k + wt * kl_tail)
    return float(np.mean(vals)) * T * T


@pytest.mark.parametrize("gamma", [0.0, 0.3, 0.8])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_reference(gamma, weighted, gen: torch.Generator) -> None:
    s = torch.randn(5, 12, generator=gen, dtype=torch.float64) * 2
    t = torch.randn(5, 12, generator=gen, dtype=torch.float64) * 2
    got = topk_kld_loss(s, t, 4, balance=gamma, mass_weighted=weighted, temperature=2.0)
    assert got.item() == pytest.approx(_ref(s.numpy(), t.numpy(), 4, gamma, weighted, 2.0), abs=1e-10)


def test_mass_weighted_half_is_forward_kl(gen: torch.Generator) -> None:
    s = torch.randn(3, 4, 10, generator=gen, dtype=torch.float64)
    t = torch.randn(3, 4, 10, generator=gen, dtype=torch.float64)
    got = topk_kld_loss(s, t, 3, balance=0.5, mass_weighted=True, temperature=3.0)
    assert got.item() == pytest.approx(hinton_kd_loss(s, t, 3.0).item(), abs=1e-10)


def test_gradcheck(gen: torch.Generator) -> None:
    s = torch.randn(3, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(3, 7, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: topk_kld_loss(x, t, 3, balance=0.7), (s,))


def test_term(make_ctx, make_probe, gen: torch.Generator) -> None:
    s, t = torch.randn(4, 9, generator=gen), torch.randn(4, 9, generator=gen)
    cfg = TopKLDConfig(top_k=3, balance=0.25)
    got = LOSSES.get(cfg)(cfg, make_probe([s], [t]))(make_ctx([s], [t]))
    assert got.item() == pytest.approx(topk_kld_loss(s, t, 3, balance=0.25).item(), rel=1e-6)
    with pytest.raises(ConfigError, match="top_k"):
        LOSSES.get(cfg)(TopKLDConfig(top_k=9), make_probe([s], [t]))
