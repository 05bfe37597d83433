import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.dist import DISTConfig, dist_loss


def _ref(s, t, beta, gamma, T):
    def sm(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    ys, yt = sm(s / T), sm(t / T)
    inter = 1 - np.mean([np.corrcoef(ys[i], yt[i])[0, 1] for i in range(len(ys))])
    intra = 1 - np.mean([np.corrcoef(ys[:, j], yt[:, j])[0, 1] for j in range(ys.shape[1])])
    return T * T * (beta * inter + gamma * intra)


@pytest.mark.parametrize("beta,gamma,T", [(1.0, 1.0, 1.0), (2.0, 0.5, 4.0)])
def test_matches_numpy_corrcoef(beta, gamma, T, gen: torch.Generator) -> None:
    s = torch.randn(8, 6, generator=gen, dtype=torch.float64) * 3
    t = torch.randn(8, 6, generator=gen, dtype=torch.float64) * 3
    got = dist_loss(s, t, beta=beta, gamma=gamma, temperature=T)
    assert got.item() == pytest.approx(_ref(s.numpy(), t.numpy(), beta, gamma, T), abs=1e-5)


def test_zero_for_identical_logits(gen: torch.Generator) -> None:
    t = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    assert dist_loss(t.clone(), t).item() == pytest.approx(0.0, abs=1e-7)


def test_gradcheck_and_term(make_ctx, make_probe, gen: torch.Generator) -> None:
    s = torch.randn(4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: dist_loss(x, t, temperature=2.0), (s,))
    cfg = DISTConfig(beta=2.0)
    term = LOSSES.get(cfg)(cfg, make_probe([s], [t]))
    assert term(make_ctx([s], [t])).item() == pytest.approx(dist_loss(s, t, beta=2.0).item(), abs=1e-12)
