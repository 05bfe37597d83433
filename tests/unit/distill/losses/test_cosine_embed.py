"""Cosine embedding distillation: formula, projector sizing, direction-only matching, bad taps."""

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.cosine_embed import CosineEmbedConfig, cosine_embed_loss
from edgekd.errors import ConfigError


def test_formula(gen: torch.Generator) -> None:
    s = torch.randn(3, 5, 6, generator=gen, dtype=torch.float64)
    t = torch.randn(3, 5, 6, generator=gen, dtype=torch.float64)
    a, b = s.numpy().reshape(-1, 6), t.numpy().reshape(-1, 6)
    ref = np.mean([1 - x @ y / (np.linalg.norm(x) * np.linalg.norm(y)) for x, y in zip(a, b, strict=True)])
    assert cosine_embed_loss(s, t).item() == pytest.approx(ref, abs=1e-12)


def test_scale_invariant_and_zero_when_aligned(gen: torch.Generator) -> None:
    t = torch.randn(4, 8, generator=gen, dtype=torch.float64)
    assert cosine_embed_loss(3.0 * t, t).item() == pytest.approx(0.0, abs=1e-12)
    assert cosine_embed_loss(-t, t).item() == pytest.approx(2.0, abs=1e-12)


def test_term_projects_and_trains(make_ctx, make_probe, gen: torch.Generator) -> None:
    s = torch.randn(4, 6, generator=gen)
    t = torch.randn(4, 10, generator=gen)
    cfg = CosineEmbedConfig(student="text", teacher="text")
    term = LOSSES.get(cfg)(cfg, make_probe(student_feats={"text": s}, teacher_feats={"text": t}))
    assert isinstance(term.projector.proj, nn.Linear) and term.projector.proj.out_features == 10
    loss = term(make_ctx(student_feats={"text": s}, teacher_feats={"text": t}))
    ref = cosine_embed_loss(term.projector(s), t)
    assert loss.item() == pytest.approx(ref.item(), abs=1e-6)
    loss.backward()
    assert term.projector.proj.weight.grad.abs().sum() > 0


def test_same_width_without_projection_is_identity(make_probe) -> None:
    cfg = CosineEmbedConfig(student="a", teacher="b", project=False)
    term = LOSSES.get(cfg)(cfg, make_probe(student_feats={"a": torch.zeros(2, 4)}, teacher_feats={"b": torch.zeros(2, 4)}))
    assert isinstance(term.projector, nn.Identity)


def test_image_feature_is_rejected(make_probe) -> None:
    cfg = CosineEmbedConfig(student="a", teacher="b")
    with pytest.raises(ConfigError, match="embedding"):
        LOSSES.get(cfg)(cfg, make_probe(student_feats={"a": torch.zeros(2, 4, 3, 3)},
                                        teacher_feats={"b": torch.zeros(2, 4, 3, 3)}))
