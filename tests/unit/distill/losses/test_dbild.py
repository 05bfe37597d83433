"""DBiLD (Switch-KD) against explicit loops in Python: Kneedle on the teacher's sorted logits, pairwise
differences of the leader's top-k, reverse KL. float64; tolerance abs 1e-10 (rel 1e-9 at logits of +-50)."""

import math

import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.bild import bild_loss
from edgekd.distill.losses.dbild import DBiLDConfig, dbild_loss, kneedle_k, nucleus_k
from edgekd.errors import ConfigError


def _log_sm(z: list[float]) -> list[float]:
    m = max(z)
    lse = m + math.log(sum(math.exp(v - m) for v in z))
    return [v - lse for v in z]


def _kneedle(z: np.ndarray, k_min: int, k_max: int, window: int | None = None) -> int:
    """Knee of the descending sorted logits: the rank furthest below the chord, first on ties."""
    y = sorted(z.tolist(), reverse=True)[: window or len(z)]
    W = len(y)
    best, best_r = -math.inf, 0
    for r in range(W):
        x = r / (W - 1)
        yn = (y[r] - y[-1]) / (y[0] - y[-1]) if y[0] > y[-1] else 0.0
        if (1 - x) - yn > best:
            best, best_r = (1 - x) - yn, r
    return max(min(best_r + 1, k_max, len(z)), min(k_min, k_max, len(z)))


def _nucleus(z: np.ndarray, top_p: float, k_min: int, k_max: int) -> int:
    lp = _log_sm(z.tolist())
    probs = sorted((math.exp(v) for v in lp), reverse=True)
    cum, k = 0.0, 0
    for p in probs:
        k += 1
        cum += p
        if cum >= top_p:
            break
    return max(min(k, k_max, len(z)), k_min)


def _ld(s: np.ndarray, t: np.ndarray, leader: np.ndarray, k: int, T: float, reverse: bool) -> float:
    order = np.argsort(-leader, kind="stable")[:k]
    dt, ds = [], []
    for a in range(k):
        for b in range(a + 1, k):
            dt.append((t[order[a]] - t[order[b]]) / T)
            ds.append((s[order[a]] - s[order[b]]) / T)
    lt, ls = _log_sm(dt), _log_sm(ds)
    lp, lq = (ls, lt) if reverse else (lt, ls)
    return sum(math.exp(lp[i]) * (lp[i] - lq[i]) for i in range(len(lp)))


def _ref(s, t, *, led="both", T=1.0, k_min=2, k_max=16, window=None, rule="kneedle", top_p=None,
         reverse=True, mask=None) -> float:
    V = s.shape[-1]
    S, Tt = s.reshape(-1, V).numpy(), t.reshape(-1, V).numpy()
    m = np.ones(len(S)) if mask is None else mask.reshape(-1).numpy().astype(float)
    total, count = 0.0, 0.0
    for n in range(len(S)):
        v = 0.0
        for leader, on in ((Tt[n], led != "student"), (S[n], led != "teacher")):
            if not on:
                continue
            if rule == "kneedle":
                k = _kneedle(Tt[n], k_min, k_max, window)  # the teacher's k, both directions
            else:
                k = _nucleus(leader, top_p, k_min, k_max)
            v += _ld(S[n], Tt[n], leader, k, T, reverse)
        total += m[n] * v
        count += m[n]
    return total / count


def _pair(gen: torch.Generator, *shape: int, scale: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale,
            torch.randn(*shape, generator=gen, dtype=torch.float64) * scale)


@pytest.mark.parametrize("led", ["both", "teacher", "student"])
@pytest.mark.parametrize("T", [1.0, 2.0])
def test_dbild_kneedle_reverse_kl_matches_reference(led: str, T: float, gen: torch.Generator) -> None:
    s, t = _pair(gen, 12, 15, scale=3.0)
    t[:4, 0] += 8.0  # some confident rows: knee right after the top logit
    got = dbild_loss(s, t, k_min=2, k_max=8, led=led, temperature=T)
    assert got.item() == pytest.approx(_ref(s, t, led=led, T=T, k_max=8), abs=1e-10)


def test_kneedle_k_against_loop_and_window(gen: torch.Generator) -> None:
    z = torch.randn(20, 30, generator=gen, dtype=torch.float64)
    z[:6, :2] += 6.0
    for window in (None, 10):
        idx, k = kneedle_k(z, 2, 12, window)
        assert k.tolist() == [_kneedle(row, 2, 12, window) for row in z.numpy()]
        assert torch.equal(idx, z.topk(12, dim=1).indices)
    # one dominant logit: the knee is right after it, k = 1 -> clamped to k_min
    peaked = torch.tensor([[9.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5]], dtype=torch.float64)
    assert kneedle_k(peaked, 2, 5)[1].tolist() == [2]
    # a flat head of 4 then a drop: the knee is the first logit after the drop (rank 5), and k counts it
    head = torch.tensor([[5.0, 5.0, 5.0, 5.0, 0.0, -0.1, -0.2, -0.3]], dtype=torch.float64)
    assert kneedle_k(head, 2, 8)[1].tolist() == [5]
    # equal logits: no NaN, k_min
    assert kneedle_k(torch.zeros(2, 6, dtype=torch.float64), 2, 5)[1].tolist() == [2, 2]


@pytest.mark.parametrize("reverse", [True, False])
def test_divergence_direction(reverse: bool, gen: torch.Generator) -> None:
    s, t = _pair(gen, 6, 10)
    got = dbild_loss(s, t, divergence="reverse_kl" if reverse else "forward_kl")
    assert got.item() == pytest.approx(_ref(s, t, reverse=reverse), abs=1e-10)


@pytest.mark.parametrize("top_p", [0.5, 0.9])
def test_nucleus_variant_matches_reference(top_p: float, gen: torch.Generator) -> None:
    s, t = _pair(gen, 10, 15, scale=3.0)
    got = dbild_loss(s, t, k_rule="nucleus", top_p=top_p, k_min=2, k_max=8, temperature=1.5)
    assert got.item() == pytest.approx(_ref(s, t, rule="nucleus", top_p=top_p, k_max=8, T=1.5), abs=1e-10)
    old = dbild_loss(s, t, k_rule="nucleus", top_p=top_p, k_max=8, temperature=1.5, divergence="forward_kl")
    assert old.item() == pytest.approx(_ref(s, t, rule="nucleus", top_p=top_p, k_max=8, T=1.5, reverse=False),
                                       abs=1e-10)
    z = torch.tensor([[10.0, 0, 0, 0, 0, 0], [1.0, 1, 1, 1, 1, 1]], dtype=torch.float64)
    assert nucleus_k(z, 0.9, 2, 5)[1].tolist() == [2, 5]


def test_forward_kl_with_forced_k_is_bild(gen: torch.Generator) -> None:
    s, t = _pair(gen, 5, 10)
    forced = dbild_loss(s, t, k_min=4, k_max=4, divergence="forward_kl", temperature=2.0)
    assert forced.item() == pytest.approx(bild_loss(s, t, 4, temperature=2.0).item(), abs=1e-12)


def test_edge_cases(gen: torch.Generator) -> None:
    # batch of one, logits of +-50
    s1, t1 = _pair(gen, 1, 9, scale=50.0)
    got = dbild_loss(s1, t1, k_max=6)
    assert torch.isfinite(got) and got.item() == pytest.approx(_ref(s1, t1, k_max=6), rel=1e-9, abs=1e-10)
    # per-token [B, L, V] with a padding mask; the fully padded sequence counts for nothing
    s, t = _pair(gen, 3, 4, 11)
    mask = torch.ones(3, 4)
    mask[1, 2:] = 0
    mask[2] = 0
    got = dbild_loss(s, t, k_max=5, mask=mask)
    assert got.item() == pytest.approx(_ref(s, t, k_max=5, mask=mask), abs=1e-10)
    # per-pixel [B, C, H, W]: class axis 1
    sp, tp = _pair(gen, 2, 7, 2, 3)
    rows = lambda x: x.permute(0, 2, 3, 1).reshape(-1, 7)  # noqa: E731
    assert dbild_loss(sp, tp, k_max=5).item() == pytest.approx(_ref(rows(sp), rows(tp), k_max=5), abs=1e-10)
    # no valid token: 0, not NaN
    assert dbild_loss(s, t, mask=torch.zeros(3, 4)).item() == 0.0


def test_gradcheck_and_teacher_gets_no_gradient(gen: torch.Generator) -> None:
    s = torch.randn(3, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(3, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: dbild_loss(x, t.detach(), k_max=5), (s,))
    dbild_loss(s, t, k_max=5).backward()
    assert t.grad is None and s.grad is not None


def test_term_and_config(make_ctx, make_probe, gen: torch.Generator) -> None:
    s, t = _pair(gen, 2, 3, 10)
    cfg = DBiLDConfig(k_max=6)
    assert (cfg.k_rule, cfg.divergence, cfg.led) == ("kneedle", "reverse_kl", "both")
    got = LOSSES.get(cfg)(cfg, make_probe([s], [t]))(make_ctx([s], [t]))
    assert got.item() == pytest.approx(dbild_loss(s, t, k_max=6).item(), abs=1e-12)
    ncfg = DBiLDConfig(k_rule="nucleus", top_p=0.7, k_max=6)
    got = LOSSES.get(ncfg)(ncfg, make_probe([s], [t]))(make_ctx([s], [t]))
    assert got.item() == pytest.approx(dbild_loss(s, t, k_rule="nucleus", top_p=0.7, k_max=6).item(), abs=1e-12)
    with pytest.raises(ValueError, match="k_min"):
        DBiLDConfig(k_min=9, k_max=4)
    with pytest.raises(ValueError, match="only read by k_rule: nucleus"):
        DBiLDConfig(top_p=0.9)
    with pytest.raises(ValueError, match="needs top_p"):
        DBiLDConfig(k_rule="nucleus")
    with pytest.raises(ConfigError, match="k_min=4"):
        LOSSES.get(DBiLDConfig)(DBiLDConfig(k_min=4), make_probe([s[..., :3]], [t[..., :3]]))
