import math

import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.cwd import CWDConfig, cwd_loss
from edgekd.errors import ConfigError


def _ref(s: np.ndarray, t: np.ndarray, tau: float) -> float:
    B, C = s.shape[:2]
    total = 0.0
    for b in range(B):
        for c in range(C):
            ys, yt = s[b, c].ravel() / tau, t[b, c].ravel() / tau
            ps = np.exp(ys - ys.max()) / np.exp(ys - ys.max()).sum()
            pt = np.exp(yt - yt.max()) / np.exp(yt - yt.max()).sum()
            total += sum(pt[i] * math.log(pt[i] / ps[i]) for i in range(len(pt)))
    return tau * tau * total / (B * C)


@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_matches_reference(tau: float, gen: torch.Generator) -> None:
    s = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64) * 2
    t = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64) * 2
    assert cwd_loss(s, t, tau).item() == pytest.approx(_ref(s.numpy(), t.numpy(), tau), abs=1e-10)


def test_zero_for_equal_and_shift_invariant(gen: torch.Generator) -> None:
    t = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    assert cwd_loss(t + 5.0, t, 2.0).item() == pytest.approx(0.0, abs=1e-12)  # per-channel softmax ignores offsets


def test_gradcheck(gen: torch.Generator) -> None:
    s = torch.randn(1, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(1, 2, 3, 3, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: cwd_loss(x, t, 3.0), (s,))


def test_term_with_projector(make_ctx, make_probe, gen: torch.Generator) -> None:
    fs = torch.randn(2, 4, 3, 3, generator=gen, dtype=torch.float64)
    ft = torch.randn(2, 6, 3, 3, generator=gen, dtype=torch.float64)
    cfg = CWDConfig(student="s", teacher="t", temperature=2.0)
    term = LOSSES.get(cfg)(cfg, make_probe(student_feats={"s": fs}, teacher_feats={"t": ft})).double()
    got = term(make_ctx(student_feats={"s": fs}, teacher_feats={"t": ft}))
    w, b = term.projector.proj.weight.detach().numpy()[:, :, 0, 0], term.projector.proj.bias.detach().numpy()
    proj = np.einsum("oc,bchw->bohw", w, fs.numpy()) + b[None, :, None, None]
    assert got.item() == pytest.approx(_ref(proj, ft.numpy(), 2.0), abs=1e-10)


def test_rejects_non_4d(make_probe) -> None:
    cfg = CWDConfig(student="s", teacher="t")
    with pytest.raises(ConfigError, match="4-D"):
        LOSSES.get(cfg)(cfg, make_probe(student_feats={"s": torch.zeros(2, 4)}, teacher_feats={"t": torch.zeros(2, 4)}))
    with pytest.raises(ValueError):
        CWDConfig(student="s", teacher="t", temperature=0)
