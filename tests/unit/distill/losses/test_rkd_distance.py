"""RKD distance-wise loss against an explicit pair loop (float64, tolerance abs 1e-10).

The official code averages huber over the full N x N matrix (zero diagonal included); the
off_diagonal variant over the N(N-1) pairs i != j, a factor N/(N-1) larger."""

import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.rkd_distance import RKDDistanceConfig, rkd_distance_loss
from edgekd.errors import TrainingError


def _ref(s: np.ndarray, t: np.ndarray, pairs: str = "full") -> float:
    s, t = s.reshape(len(s), -1), t.reshape(len(t), -1)
    n = len(s)
    ds = np.array([[np.linalg.norm(s[i] - s[j]) for j in range(n)] for i in range(n)])
    dt = np.array([[np.linalg.norm(t[i] - t[j]) for j in range(n)] for i in range(n)])
    mu_s = sum(ds[i, j] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    mu_t = sum(dt[i, j] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    total = 0.0
    for i in range(n):
        for j in range(n):
            x = ds[i, j] / mu_s - dt[i, j] / mu_t
            total += 0.5 * x * x if abs(x) <= 1 else abs(x) - 0.5
    return total / (n * n if pairs == "full" else n * (n - 1))


@pytest.mark.parametrize("pairs", ["full", "off_diagonal"])
def test_matches_reference_with_different_sizes(pairs: str, gen: torch.Generator) -> None:
    s = torch.randn(6, 3, 2, 2, generator=gen, dtype=torch.float64)
    t = torch.randn(6, 20, generator=gen, dtype=torch.float64) * 5
    assert rkd_distance_loss(s, t, pairs).item() == pytest.approx(_ref(s.numpy(), t.numpy(), pairs), abs=1e-10)


def test_full_is_off_diagonal_times_n_minus_1_over_n(gen: torch.Generator) -> None:
    s, t = torch.randn(5, 4, generator=gen, dtype=torch.float64), torch.randn(5, 7, generator=gen, dtype=torch.float64)
    full, off = rkd_distance_loss(s, t), rkd_distance_loss(s, t, "off_diagonal")
    assert full.item() == pytest.approx(off.item() * 4 / 5, abs=1e-12)
    assert RKDDistanceConfig(student="a", teacher="b").pairs == "full"


def test_huber_linear_branch_and_large_values(gen: torch.Generator) -> None:
    # a far outlier in the student makes some |psi_s - psi_t| > 1
    s = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    s[0] += 40
    t = torch.randn(5, 4, generator=gen, dtype=torch.float64) * 50
    assert rkd_distance_loss(s, t).item() == pytest.approx(_ref(s.numpy(), t.numpy()), abs=1e-10)


def test_scale_invariance_gradcheck_and_batch_of_one(gen: torch.Generator) -> None:
    t = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    assert rkd_distance_loss(3 * t, t).item() == pytest.approx(0.0, abs=1e-12)
    s = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: rkd_distance_loss(x, t[:4]), (s,))
    with pytest.raises(TrainingError, match="at least 2"):
        rkd_distance_loss(s[:1], t[:1])
    # two samples: one pair; the full mean divides its two ordered entries by 4
    two_s, two_t = s[:2].detach(), t[:2]
    assert rkd_distance_loss(two_s, two_t).item() == pytest.approx(_ref(two_s.numpy(), two_t.numpy()), abs=1e-12)


def test_term(make_ctx, make_probe, gen: torch.Generator) -> None:
    s, t = torch.randn(4, 8, generator=gen), torch.randn(4, 3, 2, 2, generator=gen)
    for pairs in ("full", "off_diagonal"):
        cfg = RKDDistanceConfig(student="emb", teacher="backbone", pairs=pairs)
        term = LOSSES.get(cfg)(cfg, make_probe(student_feats={"emb": s}, teacher_feats={"backbone": t}))
        assert term(make_ctx(student_feats={"emb": s}, teacher_feats={"backbone": t})).item() == pytest.approx(
            _ref(s.numpy().astype(float), t.numpy().astype(float), pairs), rel=1e-5)
