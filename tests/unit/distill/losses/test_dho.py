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


def test_combine_heads() -> None:
    ce = torch.tensor([[2.0, 0.0, -1.0]], dtype=torch.float64)
    kd = torch.tensor([[0.0, 3.0, 0.0]], dtype=torch.float64)
    got = combine_heads(ce, kd, alpha=0.25, kd_temperature=2.0)
    ref = 0.25 * _sm(ce[0].numpy()) + 0.75 * _sm(kd[0].numpy() / 2)
    assert np.allclose(got[0].numpy(), ref, atol=1e-12)
    assert got.sum().item() == pytest.approx(1.0)
    assert torch.allclose(combine_heads(ce, kd, alpha=1.0), ce.softmax(1))
    with pytest.raises(ValueError):
        combine_heads(ce, kd, alpha=1.5)


def test_head_shapes_and_predict(make_probe, gen: torch.Generator) -> None:
    cfg = DHOConfig(student="enc")
    tok = LOSSES.get(cfg)(cfg, make_probe([], [torch.zeros(2, 7)], student_feats={"enc": torch.zeros(2, 5, 8)}))
    assert tok.kd_logits(torch.randn(4, 5, 8, generator=gen)).shape == (4, 7)
    seq = LOSSES.get(cfg)(cfg, make_probe([], [torch.zeros(2, 5, 7)], student_feats={"enc": torch.zeros(2, 5, 8)}))
    assert seq.kd_logits(torch.randn(4, 5, 8, generator=gen)).shape == (4, 5, 7)
    probs = tok.predict(torch.randn(4, 5, 8, generator=gen), torch.randn(4, 7, generator=gen), alpha=0.5)
    assert torch.allclose(probs.sum(1), torch.ones(4))
    with pytest.raises(ConfigError, match="no KD head"):
        LOSSES.get(cfg)(cfg, make_probe([], [torch.zeros(2, 7)], student_feats={"enc": torch.zeros(2, 3, 4, 4, 4)}))
    with pytest.raises(ConfigError, match="output=1"):
        LOSSES.get(cfg)(DHOConfig(student="enc", output=1),
                        make_probe([], [torch.zeros(2, 7)], student_feats={"enc": torch.zeros(2, 8)}))
