"""BiLD against explicit pair loops in numpy (float64; tolerance abs 1e-10). DBiLD: test_dbild.py."""

import math

import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.bild import BiLDConfig, bild_loss
from edgekd.errors import ConfigError


def _log_sm(z: np.ndarray) -> np.ndarray:
    m = z.max()
    return z - m - math.log(np.exp(z - m).sum())


def _ld(s: np.ndarray, t: np.ndarray, leader: np.ndarray, k: int, T: float) -> float:
    """KL(softmax(d^t/T) || softmax(d^s/T)) over the pairs of the leader's top-k, in explicit loops."""
    order = np.argsort(-leader, kind="stable")[:k]
    dt, ds = [], []
    for a in range(k):
        for b in range(a + 1, k):
            dt.append(t[order[a]] - t[order[b]])
            ds.append(s[order[a]] - s[order[b]])
    lp, lq = _log_sm(np.array(dt) / T), _log_sm(np.array(ds) / T)
    return float(sum(math.exp(lp[i]) * (lp[i] - lq[i]) for i in range(len(lp))))


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


def test_gradcheck(gen: torch.Generator) -> None:
    s = torch.randn(3, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(3, 8, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: bild_loss(x, t, 4), (s,))


def test_default_temperature_is_the_official_3(gen: torch.Generator) -> None:
    assert BiLDConfig().temperature == 3.0 and BiLDConfig().top_k == 8
    s = torch.randn(4, 12, generator=gen, dtype=torch.float64)
    t = torch.randn(4, 12, generator=gen, dtype=torch.float64)
    assert bild_loss(s, t).item() == pytest.approx(_ref(s, t, "both", 3.0, lambda z: 8), abs=1e-10)


def test_edge_cases_batch_of_one_large_logits_per_pixel_and_no_valid_token(gen: torch.Generator) -> None:
    one_s = torch.randn(1, 9, generator=gen, dtype=torch.float64) * 50
    one_t = torch.randn(1, 9, generator=gen, dtype=torch.float64) * 50
    got = bild_loss(one_s, one_t, 4)
    assert torch.isfinite(got) and got.item() == pytest.approx(_ref(one_s, one_t, "both", 3.0, lambda z: 4),
                                                               rel=1e-9, abs=1e-10)
    # per-pixel layout [B, C, H, W]: the class axis is 1, every pixel a position
    s = torch.randn(2, 6, 3, 2, generator=gen, dtype=torch.float64)
    t = torch.randn(2, 6, 3, 2, generator=gen, dtype=torch.float64)
    rows = lambda x: x.permute(0, 2, 3, 1).reshape(-1, 6)  # noqa: E731
    assert bild_loss(s, t, 3).item() == pytest.approx(_ref(rows(s), rows(t), "both", 3.0, lambda z: 3), abs=1e-10)
    # no valid token: 0, not NaN
    seq_s, seq_t = torch.randn(2, 3, 7, generator=gen), torch.randn(2, 3, 7, generator=gen)
    assert bild_loss(seq_s, seq_t, 3, mask=torch.zeros(2, 3)).item() == 0.0


def test_terms(make_ctx, make_probe, gen: torch.Generator) -> None:
    s = torch.randn(2, 3, 10, generator=gen, dtype=torch.float64)
    t = torch.randn(2, 3, 10, generator=gen, dtype=torch.float64)
    cfg = BiLDConfig(top_k=4, led="student")
    got = LOSSES.get(cfg)(cfg, make_probe([s], [t]))(make_ctx([s], [t]))
    assert got.item() == pytest.approx(bild_loss(s, t, 4, led="student").item(), abs=1e-12)
    with pytest.raises(ConfigError, match="top_k=12"):
        LOSSES.get(BiLDConfig)(BiLDConfig(top_k=12), make_probe([s], [t]))
