import numpy as np
import pytest
import torch
from torch import nn

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import Projector
from edgekd.distill.losses.fitnet import FitNetConfig, fitnet_loss
from edgekd.errors import ConfigError


def test_formula(gen: torch.Generator) -> None:
    s = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    t = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    ref = float(np.mean([(a - b) ** 2 for a, b in zip(s.numpy().ravel(), t.numpy().ravel(), strict=True)]))
    assert fitnet_loss(s, t).item() == pytest.approx(ref, abs=1e-12)


def test_term_builds_conv_projector_and_matches_reference(make_ctx, make_probe, gen: torch.Generator) -> None:
    fs = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    ft = torch.randn(2, 5, 4, 4, generator=gen, dtype=torch.float64)
    cfg = FitNetConfig(student="stages.1", teacher="stages.2")
    term = LOSSES.get(cfg)(cfg, make_probe(student_feats={"stages.1": fs}, teacher_feats={"stages.2": ft})).double()
    assert term.student_taps == ("stages.1",) and term.teacher_taps == ("stages.2",)
    conv = term.projector.proj
    assert isinstance(conv, nn.Conv2d) and conv.in_channels == 3 and conv.out_channels == 5
    w, b = conv.weight.detach().numpy()[:, :, 0, 0], conv.bias.detach().numpy()
    proj = np.einsum("oc,bchw->bohw", w, fs.numpy()) + b[None, :, None, None]
    ref = ((proj - ft.numpy()) ** 2).mean()
    got = term(make_ctx(student_feats={"stages.1": fs}, teacher_feats={"stages.2": ft}))
    assert got.item() == pytest.approx(ref, abs=1e-10)
    got.backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_identity_when_shapes_match_and_linear_for_tokens(make_probe) -> None:
    cfg = FitNetConfig(student="a", teacher="b")
    same = LOSSES.get(cfg)(cfg, make_probe(student_feats={"a": torch.zeros(2, 4)}, teacher_feats={"b": torch.zeros(2, 4)}))
    assert isinstance(same.projector, nn.Identity)
    tok = LOSSES.get(cfg)(cfg, make_probe(student_feats={"a": torch.zeros(2, 7, 4)},
                                          teacher_feats={"b": torch.zeros(2, 7, 6)}))
    assert isinstance(tok.projector, Projector) and isinstance(tok.projector.proj, nn.Linear)
    assert tok.projector(torch.zeros(3, 7, 4)).shape == (3, 7, 6)


def test_spatial_mismatch_is_resized(make_probe) -> None:
    p = Projector((2, 3, 8, 8), (2, 6, 4, 4))
    assert p(torch.randn(2, 3, 8, 8)).shape == (2, 6, 4, 4)


def test_bad_paths_and_ranks(make_probe) -> None:
    cfg = FitNetConfig(student="stages.9", teacher="b")
    probe = make_probe(student_feats={"stages.1": torch.zeros(2, 4), "stages.2": torch.zeros(2, 4)},
                       teacher_feats={"b": torch.zeros(2, 4)})
    with pytest.raises(ConfigError, match="stages"):
        LOSSES.get(cfg)(cfg, probe)
    cfg = FitNetConfig(student="a", teacher="b")
    with pytest.raises(ConfigError, match="ranks"):
        LOSSES.get(cfg)(cfg, make_probe(student_feats={"a": torch.zeros(2, 4)},
                                        teacher_feats={"b": torch.zeros(2, 4, 2, 2)}))


def test_gradcheck(gen: torch.Generator) -> None:
    s = torch.randn(2, 3, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    t = torch.randn(2, 3, 2, 2, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: fitnet_loss(x, t), (s,))
