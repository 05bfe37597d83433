import math

import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.trg import TRGConfig, contextual_loss, graph_loss, to_tokens


def _norm(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _graph_ref(s, t, tau):
    xs, xt = _norm(s.reshape(-1, s.shape[-1])), _norm(t.reshape(-1, t.shape[-1]))
    n = len(xs)
    total = 0.0
    for i in range(n):
        others = [j for j in range(n) if j != i]
        a_s = np.array([xs[i] @ xs[j] / tau for j in others])
        a_t = np.array([xt[i] @ xt[j] / tau for j in others])
        p = np.exp(a_t - a_t.max()) / np.exp(a_t - a_t.max()).sum()
        q = np.exp(a_s - a_s.max()) / np.exp(a_s - a_s.max()).sum()
        total += sum(p[k] * math.log(p[k] / q[k]) for k in range(len(p)))
    return total / n


def _cx_ref(s, t, h, eps=1e-5):
    out = []
    for b in range(len(s)):
        mu = t[b].mean(0)
        x, y = _norm(s[b] - mu), _norm(t[b] - mu)
        N = len(x)
        d = np.array([[1 - x[i] @ y[j] for j in range(N)] for i in range(N)])
        cx = np.zeros_like(d)
        for i in range(N):
            rel = d[i] / (d[i].min() + eps)
            w = np.exp((1 - rel) / h)
            cx[i] = w / w.sum()
        out.append(-math.log(np.mean([cx[:, j].max() for j in range(N)])))
    return float(np.mean(out))


def test_graph_loss_matches_reference(gen: torch.Generator) -> None:
    s = torch.randn(2, 4, 3, generator=gen, dtype=torch.float64)
    t = torch.randn(2, 4, 3, generator=gen, dtype=torch.float64)
    assert graph_loss(s, t, 0.5).item() == pytest.approx(_graph_ref(s.numpy(), t.numpy(), 0.5), abs=1e-10)
    nodes = torch.tensor([0, 3, 5, 6])
    sub = _graph_ref(s.reshape(-1, 3)[nodes].numpy(), t.reshape(-1, 3)[nodes].numpy(), 0.5)
    assert graph_loss(s, t, 0.5, nodes).item() == pytest.approx(sub, abs=1e-10)


def test_contextual_loss_matches_reference(gen: torch.Generator) -> None:
    s = torch.randn(2, 5, 4, generator=gen, dtype=torch.float64)
    t = torch.randn(2, 5, 4, generator=gen, dtype=torch.float64)
    assert contextual_loss(s, t, 0.5).item() == pytest.approx(_cx_ref(s.numpy(), t.numpy(), 0.5), abs=1e-10)


def test_identical_tokens_score_best(gen: torch.Generator) -> None:
    t = torch.randn(2, 6, 4, generator=gen, dtype=torch.float64)
    s = torch.randn(2, 6, 4, generator=gen, dtype=torch.float64)
    assert graph_loss(t.clone(), t, 0.2).item() == pytest.approx(0.0, abs=1e-12)
    assert contextual_loss(t.clone(), t) < contextual_loss(s, t)


def test_gradcheck(gen: torch.Generator) -> None:
    s = torch.randn(2, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(2, 3, 4, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: graph_loss(x, t, 0.5), (s,))
    assert torch.autograd.gradcheck(lambda x: contextual_loss(x, t, 0.5), (s,))


def test_term_on_conv_features(make_ctx, make_probe, gen: torch.Generator) -> None:
    fs = torch.randn(2, 3, 2, 2, generator=gen, dtype=torch.float64)
    ft = torch.randn(2, 3, 2, 2, generator=gen, dtype=torch.float64)
    cfg = TRGConfig(student="s", teacher="t", temperature=0.5, context_weight=0.7, max_nodes=None)
    term = LOSSES.get(cfg)(cfg, make_probe(student_feats={"s": fs}, teacher_feats={"t": ft}))
    got = term(make_ctx(student_feats={"s": fs}, teacher_feats={"t": ft}))
    ts, tt = to_tokens(fs).numpy(), to_tokens(ft).numpy()
    assert ts.shape == (2, 4, 3)
    ref = _graph_ref(ts, tt, 0.5) + 0.7 * _cx_ref(ts, tt, 0.5)
    assert got.item() == pytest.approx(ref, abs=1e-10)
    sub = TRGConfig(student="s", teacher="t", max_nodes=3, context_tokens=2)
    assert torch.isfinite(LOSSES.get(sub)(sub, make_probe(student_feats={"s": fs}, teacher_feats={"t": ft}))(
        make_ctx(student_feats={"s": fs}, teacher_feats={"t": ft})))
