import numpy as np
import pytest
import torch
from torch import nn

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.mgd import MGDConfig, mgd_loss, random_channel_mask, random_spatial_mask


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


def test_variant_defaults_are_the_official_codes() -> None:
    assert MGDConfig(student="s", teacher="t").resolved == (2e-5, 0.65)
    assert MGDConfig(student="s", teacher="t", variant="classification").resolved == (7e-5, 0.15)
    assert MGDConfig(student="s", teacher="t", variant="classification", lambda_mask=0.3).resolved == (7e-5, 0.3)


def test_channel_mask_statistics(gen: torch.Generator) -> None:
    f = torch.zeros(64, 32, 3, 3)
    m = random_channel_mask(f, 0.15, generator=gen)
    assert m.shape == (64, 32, 1, 1) and set(m.unique().tolist()) <= {0.0, 1.0}
    assert abs((1 - m).mean().item() - 0.15) < 0.03


@pytest.mark.parametrize("batch", [2, 1])
def test_classification_variant_matches_explicit_conv(batch: int, make_ctx, make_probe, gen: torch.Generator) -> None:
    fs = torch.randn(batch, 4, 3, 3, generator=gen, dtype=torch.float64) * 50  # large activations
    ft = torch.randn(batch, 4, 3, 3, generator=gen, dtype=torch.float64)
    cfg = MGDConfig(student="s", teacher="t", variant="classification")
    term = LOSSES.get(cfg)(cfg, make_probe(student_feats={"s": fs}, teacher_feats={"t": ft})).double()
    torch.manual_seed(3)
    got = term(make_ctx(student_feats={"s": fs}, teacher_feats={"t": ft}))
    torch.manual_seed(3)
    mask = random_channel_mask(torch.zeros(batch, 4, 3, 3, dtype=torch.float64), 0.15).numpy()  # [B, C, 1, 1]
    g1, g2 = term.generation[0], term.generation[2]
    w = lambda m: (m.weight.detach().numpy(), m.bias.detach().numpy())  # noqa: E731
    h = np.maximum(_conv3(fs.numpy() * mask, *w(g1)), 0)  # same channels: no align conv
    gen_out = _conv3(h, *w(g2))
    ref = 7e-5 * sum(((gen_out[b] - ft.numpy()[b]) ** 2).sum() for b in range(batch)) / batch
    assert got.item() == pytest.approx(ref, rel=1e-10)


def test_gradcheck(gen: torch.Generator) -> None:
    torch.manual_seed(0)
    g = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.Tanh(), nn.Conv2d(2, 2, 3, padding=1)).double()
    s = torch.randn(1, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(1, 2, 3, 3, generator=gen, dtype=torch.float64)
    m = (torch.rand(1, 1, 3, 3, generator=gen) > 0.5).double()
    assert torch.autograd.gradcheck(lambda x: mgd_loss(x, t, m, g, 0.1), (s,))
