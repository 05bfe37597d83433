"""DHO against explicit loops (float64; tolerance abs 1e-10, probabilities abs 1e-12)."""

import math

import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.dho import DHOConfig, combine_heads
from edgekd.errors import ConfigError


def _sm(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def _log_sm(z: np.ndarray) -> np.ndarray:
    return z - z.max() - math.log(np.exp(z - z.max()).sum())


def test_kd_head_loss_matches_reference(make_ctx, make_probe, gen: torch.Generator) -> None:
    h = torch.randn(3, 6, 2, 2, generator=gen, dtype=torch.float64)  # conv feature -> GAP -> linear
    zt = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    cfg = DHOConfig(student="backbone", temperature=2.0)
    term = LOSSES.get(cfg)(cfg, make_probe([torch.zeros(3, 5)], [zt], student_feats={"backbone": h})).double()
    assert term.student_taps == ("backbone",) and term.teacher_taps == ()
    got = term(make_ctx([torch.zeros(3, 5)], [zt], student_feats={"backbone": h}))
    W, b = term.head.proj.weight.detach().numpy(), term.head.proj.bias.detach().numpy()
    ref = 0.0
    for n in range(3):
        pooled = h[n].numpy().mean(axis=(1, 2))
        zkd = W @ pooled + b
        p, q = _sm(zt[n].numpy() / 2), _sm(zkd / 2)
        ref += sum(p[c] * math.log(p[c] / q[c]) for c in range(5))
    assert got.item() == pytest.approx(ref / 3 * 4, abs=1e-10)
    got.backward()
    assert term.head.proj.weight.grad is not None


def test_combine_heads_alpha_weights_the_kd_head_as_the_official_code() -> None:
    ce = torch.tensor([[2.0, 0.0, -1.0]], dtype=torch.float64)
    kd = torch.tensor([[0.0, 3.0, 0.0]], dtype=torch.float64)
    got = combine_heads(ce, kd, alpha=0.25, kd_temperature=2.0)
    ref = 0.75 * _sm(ce[0].numpy()) + 0.25 * _sm(kd[0].numpy() / 2)
    assert np.allclose(got[0].numpy(), ref, atol=1e-12)
    assert got.sum().item() == pytest.approx(1.0)
    assert torch.allclose(combine_heads(ce, kd, alpha=0.0), ce.softmax(1))  # alpha 0: the CE head alone
    assert torch.allclose(combine_heads(ce, kd, alpha=1.0), kd.softmax(1))  # alpha 1: the KD head alone
    with pytest.raises(ValueError):
        combine_heads(ce, kd, alpha=1.5)
    with pytest.raises(ValueError, match="differ in shape"):
        combine_heads(ce, kd[:, :2])


@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 5), (2, 5, 3, 2)])
def test_combine_heads_normalises_over_the_class_axis(shape: tuple, gen: torch.Generator) -> None:
    """[B,K] and dense [B,K,H,W]: classes on axis 1; per-token [B,L,K]: classes last."""
    ce = torch.randn(*shape, generator=gen, dtype=torch.float64) * 50  # logits of +-50 included
    kd = torch.randn(*shape, generator=gen, dtype=torch.float64)
    got = combine_heads(ce, kd, alpha=0.3, kd_temperature=1.5)
    cls_axis = len(shape) - 1 if len(shape) == 3 else 1
    assert torch.allclose(got.sum(cls_axis), torch.ones(()).double(), atol=1e-12)
    c, k = ce.movedim(cls_axis, -1).reshape(-1, 5).numpy(), kd.movedim(cls_axis, -1).reshape(-1, 5).numpy()
    rows = got.movedim(cls_axis, -1).reshape(-1, 5).numpy()
    for n in range(len(rows)):
        ref = 0.7 * _sm(c[n]) + 0.3 * _sm(k[n] / 1.5)
        assert np.allclose(rows[n], ref, atol=1e-12)


def test_per_token_kd_loss_and_batch_of_one(make_ctx, make_probe, gen: torch.Generator) -> None:
    h = torch.randn(1, 4, 6, generator=gen, dtype=torch.float64)  # [B=1, L, D]
    zt = torch.randn(1, 4, 5, generator=gen, dtype=torch.float64) * 50
    cfg = DHOConfig(student="enc")
    assert cfg.temperature == 2.0
    term = LOSSES.get(cfg)(cfg, make_probe([], [zt], student_feats={"enc": h})).double()
    got = term(make_ctx([torch.zeros(1, 4, 5)], [zt], student_feats={"enc": h}))
    W, b = term.head.proj.weight.detach().numpy(), term.head.proj.bias.detach().numpy()
    ref = 0.0
    for tok in range(4):
        zkd = W @ h[0, tok].numpy() + b
        lp, lq = _log_sm(zt[0, tok].numpy() / 2), _log_sm(zkd / 2)
        ref += sum(math.exp(lp[c]) * (lp[c] - lq[c]) for c in range(5))
    assert torch.isfinite(got) and got.item() == pytest.approx(ref / 4 * 2 ** 2, rel=1e-9, abs=1e-10)
    probs = term.predict(h, torch.randn(1, 4, 5, generator=gen, dtype=torch.float64))
    assert torch.allclose(probs.sum(-1), torch.ones(1, 4).double(), atol=1e-12)


def test_head_shapes_and_predict(make_probe, gen: torch.Generator) -> None:
    cfg = DHOConfig(student="enc")
    tok = LOSSES.get(cfg)(cfg, make_probe([], [torch.zeros(2, 7)], student_feats={"enc": torch.zeros(2, 5, 8)}))
    assert tok.kd_logits(torch.randn(4, 5, 8, generator=gen)).shape == (4, 7)
    seq = LOSSES.get(cfg)(cfg, make_probe([], [torch.zeros(2, 5, 7)], student_feats={"enc": torch.zeros(2, 5, 8)}))
    assert seq.kd_logits(torch.randn(4, 5, 8, generator=gen)).shape == (4, 5, 7)
    probs = tok.predict(torch.randn(4, 5, 8, generator=gen), torch.randn(4, 7, generator=gen), alpha=0.5)
    assert torch.allclose(probs.sum(1), torch.ones(4))
    seq_probs = seq.predict(torch.randn(4, 5, 8, generator=gen), torch.randn(4, 5, 7, generator=gen))
    assert torch.allclose(seq_probs.sum(-1), torch.ones(4, 5))  # per token: over the classes, not the tokens
    with pytest.raises(ConfigError, match="no KD head"):
        LOSSES.get(cfg)(cfg, make_probe([], [torch.zeros(2, 7)], student_feats={"enc": torch.zeros(2, 3, 4, 4, 4)}))
    with pytest.raises(ConfigError, match="output=1"):
        LOSSES.get(cfg)(DHOConfig(student="enc", output=1),
                        make_probe([], [torch.zeros(2, 7)], student_feats={"enc": torch.zeros(2, 8)}))
