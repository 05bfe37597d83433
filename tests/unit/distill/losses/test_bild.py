"""BiLD and DBiLD against explicit pair loops in numpy."""

import math

import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.bild import BiLDConfig, bild_loss
from edgekd.distill.losses.dbild import DBiLDConfig, adaptive_k, dbild_loss
from edgekd.errors import ConfigError


def _sm(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def _ld(s: np.ndarray, t: np.ndarray, leader: np.ndarray, k: int, T: float) -> float:
    order = np.argsort(-leader, kind="stable")[:k]
    dt, ds = [], []
    for a in range(k):
        for b in range(a + 1, k):
            dt.append(t[order[a]] - t[order[b]])
            ds.append(s[order[a]] - s[order[b]])
    p, q = _sm(np.array(dt) / T), _sm(np.array(ds) / T)
    return float(sum(p[i] * math.log(p[i] / q[i]) for i in range(len(p))))


def _nucleus_k(z: np.ndarray, top_p: float, k_min: int, k_max: int) -> int:
    p = np.sort(_sm(z))[::-1]
    k = int(np.argmax(np.cumsum(p) >= top_p)) + 1
    return max(min(k, k_max, len(z)), k_min)


def _ref(s, t, led, T, kfn, mask=None):
    V = s.shape[-1]
    S, Tt = s.reshape(-1, V).numpy(), t.reshape(-1, V).numpy()
    m = np.ones(len(S)) if mask is None else mask.reshape(-1).numpy().astype(float)
    vals = []
    for n in range(len(S)):
        v = 0.0
        if led in ("both", "teacher"):
            v += _ld(S[n], Tt[n], Tt[n], kfn(Tt[n]), T)
        if led in ("both", "student"):
            v += _ld(S[n], Tt[n], S[n], kfn(S[n]), T)
        vals.append(v)
    return float(np.dot(vals, m) / m.sum())


@pytest.mark.parametrize("led", ["both", "teacher", "student"])
@pytest.mark.parametrize("T", [1.0, 2.0])
def test_bild_matches_reference(led: str, T: float, gen: torch.Generator) -> None:
    s = torch.randn(3, 4, 20, generator=gen, dtype=torch.float64) * 2
    t = torch.randn(3, 4, 20, generator=gen, dtype=torch.float64) * 2
    mask = torch.ones(3, 4)
    mask[0, 2:] = 0
    got = bild_loss(s, t, 5, led=led, temperature=T, mask=mask)
    assert got.item() == pytest.approx(_ref(s, t, led, T, lambda z: 5, mask), abs=1e-10)


def test_bild_ignores_tail_and_is_shift_invariant(gen: torch.Generator) -> None:
    s = torch.randn(4, 12, generator=gen, dtype=torch.float64)
    t = torch.randn(4, 12, generator=gen, dtype=torch.float64)
    base = bild_loss(s, t, 3, led="teacher")
    # logits outside the teacher's top-3 do not matter for the teacher-led term...
    t_tail = t.clone()
    low = t.argsort(dim=1)[:, :5]
    t_tail.scatter_(1, low, t_tail.gather(1, low) - 3.0)
    assert bild_loss(s, t_tail, 3, led="teacher").item() == pytest.approx(base.item(), abs=1e-12)
    # ...and differences make it invariant to per-row offsets
    assert bild_loss(s + 7.0, t - 2.0, 3).item() == pytest.approx(bild_loss(s, t, 3).item(), abs=1e-10)


@pytest.mark.parametrize("led", ["both", "teacher", "student"])
@pytest.mark.parametrize("top_p", [0.5, 0.9])
def test_dbild_matches_reference(led: str, top_p: float, gen: torch.Generator) -> None:
    s = torch.randn(10, 15, generator=gen, dtype=torch.float64) * 3
    t = torch.randn(10, 15, generator=gen, dtype=torch.float64) * 3
    got = dbild_loss(s, t, top_p=top_p, k_min=2, k_max=8, led=led, temperature=1.5)
    ref = _ref(s, t, led, 1.5, lambda z: _nucleus_k(z, top_p, 2, 8))
    assert got.item() == pytest.approx(ref, abs=1e-10)


def test_adaptive_k_follows_confidence() -> None:
    z = torch.tensor([[10.0, 0, 0, 0, 0, 0], [1.0, 1, 1, 1, 1, 1]], dtype=torch.float64)
    _, k = adaptive_k(z, 0.9, 2, 5)
    assert k.tolist() == [2, 5]  # confident row -> k_min; flat row -> capped at k_max


def test_dbild_equals_bild_when_k_is_forced(gen: torch.Generator) -> None:
    s = torch.randn(5, 10, generator=gen, dtype=torch.float64)
    t = torch.randn(5, 10, generator=gen, dtype=torch.float64)
    assert dbild_loss(s, t, top_p=1.0, k_min=4, k_max=4).item() == pytest.approx(bild_loss(s, t, 4).item(), abs=1e-12)


@pytest.mark.parametrize("fn", [lambda x, t: bild_loss(x, t, 4), lambda x, t: dbild_loss(x, t, top_p=0.8, k_max=5)])
def test_gradcheck(fn, gen: torch.Generator) -> None:
    s = torch.randn(3, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(3, 8, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: fn(x, t), (s,))


def test_terms(make_ctx, make_probe, gen: torch.Generator) -> None:
    s = torch.randn(2, 3, 10, generator=gen, dtype=torch.float64)
    t = torch.randn(2, 3, 10, generator=gen, dtype=torch.float64)
    cfg = BiLDConfig(top_k=4, led="student")
    got = LOSSES.get(cfg)(cfg, make_probe([s], [t]))(make_ctx([s], [t]))
    assert got.item() == pytest.approx(bild_loss(s, t, 4, led="student").item(), abs=1e-12)
    dcfg = DBiLDConfig(top_p=0.7, k_max=6)
    got = LOSSES.get(dcfg)(dcfg, make_probe([s], [t]))(make_ctx([s], [t]))
    assert got.item() == pytest.approx(dbild_loss(s, t, top_p=0.7, k_max=6).item(), abs=1e-12)
    with pytest.raises(ConfigError, match="top_k=12"):
        LOSSES.get(BiLDConfig)(BiLDConfig(top_k=12), make_probe([s], [t]))
    with pytest.raises(ValueError, match="k_min"):
        DBiLDConfig(k_min=9, k_max=4)
