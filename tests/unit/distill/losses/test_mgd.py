import numpy as np
import pytest
import torch
from torch import nn

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.mgd import MGDConfig, mgd_loss, random_spatial_mask


def _conv3(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Explicit 3x3 same-padding convolution, loops over output pixels."""
    B, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((B, w.shape[0], H, W))
    for i in range(H):
        for j in range(W):
            out[:, :, i, j] = np.einsum("bckl,ockl->bo", xp[:, :, i:i + 3, j:j + 3], w) + b
    return out


def test_mask_statistics(gen: torch.Generator) -> None:
    f = torch.zeros(8, 3, 16, 16)
    m = random_spatial_mask(f, 0.65, generator=gen)
    assert m.shape == (8, 1, 16, 16)
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    assert abs((1 - m).mean().item() - 0.65) < 0.05
    assert random_spatial_mask(f, 0.0, generator=gen).min() == 1


def test_term_matches_explicit_conv(make_ctx, make_probe, gen: torch.Generator) -> None:
    fs = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    ft = torch.randn(2, 5, 4, 4, generator=gen, dtype=torch.float64)
    cfg = MGDConfig(student="s", teacher="t", alpha=1e-2, lambda_mask=0.5)
    term = LOSSES.get(cfg)(cfg, make_probe(student_feats={"s": fs}, teacher_feats={"t": ft})).double()
    torch.manual_seed(7)
    got = term(make_ctx(student_feats={"s": fs}, teacher_feats={"t": ft}))
    torch.manual_seed(7)
    mask = random_spatial_mask(torch.zeros(2, 5, 4, 4, dtype=torch.float64), 0.5).numpy()
    p = lambda m: m.weight.detach().numpy(), lambda m: m.bias.detach().numpy()  # noqa: E731
    a = np.einsum("oc,bchw->bohw", p[0](term.align.proj)[:, :, 0, 0], fs.numpy()) + p[1](term.align.proj)[None, :, None, None]
    g1, g2 = term.generation[0], term.generation[2]
    h = np.maximum(_conv3(a * mask, p[0](g1), p[1](g1)), 0)
    gen_out = _conv3(h, p[0](g2), p[1](g2))
    ref = 1e-2 * ((gen_out - ft.numpy()) ** 2).sum() / 2
    assert got.item() == pytest.approx(ref, rel=1e-10)


def test_gradcheck(gen: torch.Generator) -> None:
    torch.manual_seed(0)
    g = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.Tanh(), nn.Conv2d(2, 2, 3, padding=1)).double()
    s = torch.randn(1, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(1, 2, 3, 3, generator=gen, dtype=torch.float64)
    m = (torch.rand(1, 1, 3, 3, generator=gen) > 0.5).double()
    assert torch.autograd.gradcheck(lambda x: mgd_loss(x, t, m, g, 0.1), (s,))
