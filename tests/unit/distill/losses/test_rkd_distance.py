import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.rkd_distance import RKDDistanceConfig, rkd_distance_loss
from edgekd.errors import TrainingError


def _ref(s: np.ndarray, t: np.ndarray) -> float:
    s, t = s.reshape(len(s), -1), t.reshape(len(t), -1)
    n = len(s)
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    ds = np.array([np.linalg.norm(s[i] - s[j]) for i, j in pairs])
    dt = np.array([np.linalg.norm(t[i] - t[j]) for i, j in pairs])
    x = ds / ds.mean() - dt / dt.mean()
    return float(np.mean([0.5 * v * v if abs(v) <= 1 else abs(v) - 0.5 for v in x]))


def test_matches_reference_with_different_sizes(gen: torch.Generator) -> None:
    s = torch.randn(6, 3, 2, 2, generator=gen, dtype=torch.float64)
    t = torch.randn(6, 20, generator=gen, dtype=torch.float64) * 5
    assert rkd_distance_loss(s, t).item() == pytest.approx(_ref(s.numpy(), t.numpy()), abs=1e-10)


def test_huber_linear_branch(gen: torch.Generator) -> None:
    # a far outlier in the student makes some |psi_s - psi_t| > 1
    s = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    s[0] += 40
    t = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    assert rkd_distance_loss(s, t).item() == pytest.approx(_ref(s.numpy(), t.numpy()), abs=1e-10)


def test_scale_invariance_and_gradcheck(gen: torch.Generator) -> None:
    t = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    assert rkd_distance_loss(3 * t, t).item() == pytest.approx(0.0, abs=1e-12)
    s = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: rkd_distance_loss(x, t[:4]), (s,))
    with pytest.raises(TrainingError, match="at least 2"):
        rkd_distance_loss(s[:1], t[:1])


def test_term(make_ctx, make_probe, gen: torch.Generator) -> None:
    s, t = torch.randn(4, 8, generator=gen), torch.randn(4, 3, 2, 2, generator=gen)
    cfg = RKDDistanceConfig(student="emb", teacher="backbone")
    term = LOSSES.get(cfg)(cfg, make_probe(student_feats={"emb": s}, teacher_feats={"backbone": t}))
    assert term(make_ctx(student_feats={"emb": s}, teacher_feats={"backbone": t})).item() == pytest.approx(
        _ref(s.numpy().astype(float), t.numpy().astype(float)), rel=1e-5)
