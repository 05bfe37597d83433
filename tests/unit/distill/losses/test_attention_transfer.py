import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.attention_transfer import AttentionTransferConfig, attention_transfer_loss
from edgekd.errors import ConfigError


def _ref(s: np.ndarray, t: np.ndarray) -> float:
    total = 0.0
    for b in range(s.shape[0]):
        qs = np.array([[sum(s[b, c, i, j] ** 2 for c in range(s.shape[1])) for j in range(s.shape[3])]
                       for i in range(s.shape[2])]).ravel()
        qt = np.array([[sum(t[b, c, i, j] ** 2 for c in range(t.shape[1])) for j in range(t.shape[3])]
                       for i in range(t.shape[2])]).ravel()
        total += np.sum((qs / np.linalg.norm(qs) - qt / np.linalg.norm(qt)) ** 2)
    return total / s.shape[0]


def test_matches_reference_with_different_channels(gen: torch.Generator) -> None:
    s = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    t = torch.randn(2, 7, 4, 4, generator=gen, dtype=torch.float64)
    assert attention_transfer_loss(s, t).item() == pytest.approx(_ref(s.numpy(), t.numpy()), abs=1e-10)


def test_scale_invariance_and_resize(gen: torch.Generator) -> None:
    t = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    assert attention_transfer_loss(5 * t, t).item() == pytest.approx(0.0, abs=1e-12)
    s_big = torch.randn(2, 3, 8, 8, generator=gen, dtype=torch.float64)
    assert torch.isfinite(attention_transfer_loss(s_big, t))


def test_gradcheck(gen: torch.Generator) -> None:
    s = torch.randn(1, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(1, 4, 3, 3, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: attention_transfer_loss(x, t), (s,))


def test_term(make_ctx, make_probe, gen: torch.Generator) -> None:
    s = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    t = torch.randn(2, 5, 4, 4, generator=gen, dtype=torch.float64)
    cfg = AttentionTransferConfig(student="a", teacher="b")
    term = LOSSES.get(cfg)(cfg, make_probe(student_feats={"a": s}, teacher_feats={"b": t}))
    assert list(term.parameters()) == []
    assert term(make_ctx(student_feats={"a": s}, teacher_feats={"b": t})).item() == pytest.approx(
        _ref(s.numpy(), t.numpy()), abs=1e-10)
    with pytest.raises(ConfigError, match="4-D"):
        LOSSES.get(cfg)(cfg, make_probe(student_feats={"a": torch.zeros(2, 3)}, teacher_feats={"b": t}))
