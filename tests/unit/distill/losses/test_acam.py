"""ACAM-style loss: the masked error and diversity formulas on seeded tensors, the term, and its errors."""

import itertools

import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.acam import ACAMConfig, CrossAttentionMasks, mask_diversity, masked_feature_loss
from edgekd.errors import ConfigError


def _ref_masked(s: np.ndarray, t: np.ndarray, mc: np.ndarray, ms: np.ndarray) -> float:
    """Loop form of L_kd: 1/M sum_k sum_{b,c,i} w (s-t)^2 / (sum_{b,c,i} w * var(t))."""
    var = t.transpose(1, 0, 2, 3).reshape(t.shape[1], -1).var(1).mean()
    out = 0.0
    for k in range(ms.shape[1]):
        num = den = 0.0
        for b, c in itertools.product(range(s.shape[0]), range(s.shape[1])):
            w = mc[b, c] * ms[b, k]
            num += float((w * (s[b, c] - t[b, c]) ** 2).sum())
            den += float(w.sum())
        out += num / (den * var)
    return out / ms.shape[1]


def test_masked_loss_matches_loop_reference(gen: torch.Generator) -> None:
    s = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    t = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64) * 2
    mc = torch.rand(2, 3, generator=gen, dtype=torch.float64)
    ms = torch.rand(2, 4, 4, 5, generator=gen, dtype=torch.float64)
    got = masked_feature_loss(s, t, mc, ms, eps=0.0).item()
    assert got == pytest.approx(_ref_masked(s.numpy(), t.numpy(), mc.numpy(), ms.numpy()), rel=1e-10)


def test_uniform_masks_give_variance_normalised_mse(gen: torch.Generator) -> None:
    s = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    t = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    mse = ((s - t) ** 2).mean() / t.var(dim=(0, 2, 3), unbiased=False).mean()
    got = masked_feature_loss(s, t, torch.full((2, 3), 0.3, dtype=torch.float64),
                              torch.full((2, 2, 4, 4), 0.7, dtype=torch.float64), eps=0.0)
    assert got.item() == pytest.approx(mse.item(), rel=1e-10)
    # masks scale out (normalised by their mass): they cannot shrink the loss by switching off
    assert masked_feature_loss(s, t, torch.full((2, 3), 1e-3, dtype=torch.float64),
                               torch.full((2, 2, 4, 4), 1e-3, dtype=torch.float64), eps=0.0).item() == \
        pytest.approx(mse.item(), rel=1e-8)
    assert masked_feature_loss(t, t, torch.rand(2, 3), torch.rand(2, 2, 4, 4)).item() == pytest.approx(0.0, abs=1e-12)


def test_diversity_identical_vs_disjoint_masks() -> None:
    same = torch.ones(1, 3, 2, 2)
    assert mask_diversity(same).item() == pytest.approx(1.0)
    disjoint = torch.zeros(1, 2, 2, 2)
    disjoint[0, 0, 0] = 1.0
    disjoint[0, 1, 1] = 1.0
    assert mask_diversity(disjoint).item() == pytest.approx(0.0, abs=1e-7)
    assert mask_diversity(torch.rand(2, 1, 3, 3)).item() == 0.0


def test_masks_are_in_unit_range_and_fusion_starts_at_teacher(gen: torch.Generator) -> None:
    torch.manual_seed(0)
    m = CrossAttentionMasks(channels=6, masks=3, attn_dim=4)
    s, t = torch.randn(2, 6, 3, 4, generator=gen), torch.randn(2, 6, 3, 4, generator=gen)
    mc, ms, fused = m(s, t)
    assert mc.shape == (2, 6) and ms.shape == (2, 3, 3, 4)
    assert bool(((mc > 0) & (mc < 1)).all()) and bool(((ms > 0) & (ms < 1)).all())
    torch.testing.assert_close(fused, t)  # zero-initialised output projection


def test_term_trains_student_and_masks_only_through_their_paths(make_ctx, make_probe, gen) -> None:  # type: ignore[no-untyped-def]
    s = torch.randn(2, 4, 3, 3, generator=gen, requires_grad=True)
    t = torch.randn(2, 6, 3, 3, generator=gen, requires_grad=True)
    cfg = ACAMConfig(student="s", teacher="t", masks=2, attn_dim=4)
    term = LOSSES.get(cfg)(cfg, make_probe(student_feats={"s": s}, teacher_feats={"t": t}))
    loss = term(make_ctx(student_feats={"s": s}, teacher_feats={"t": t}))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None  # the teacher never gets gradients
    assert term.masker.spatial.weight.grad is not None and term.projector.proj.weight.grad is not None


def test_non_4d_features_are_rejected(make_probe) -> None:  # type: ignore[no-untyped-def]
    cfg = ACAMConfig(student="s", teacher="t")
    probe = make_probe(student_feats={"s": torch.zeros(2, 8)}, teacher_feats={"t": torch.zeros(2, 8)})
    with pytest.raises(ConfigError, match="4-D"):
        LOSSES.get(cfg)(cfg, probe)


def _ref_masked_cwd(s: np.ndarray, t: np.ndarray, mc: np.ndarray, ms: np.ndarray, tau: float) -> float:
    """Loop form of the cwd distance: tau^2/M sum_k sum w kl / (sum w / HW), p = spatial softmax per map."""
    b_, c_, h, w_ = s.shape
    out = 0.0
    for k in range(ms.shape[1]):
        num = den = 0.0
        for b, c in itertools.product(range(b_), range(c_)):
            zt, zs = t[b, c].ravel() / tau, s[b, c].ravel() / tau
            pt = np.exp(zt - zt.max()) / np.exp(zt - zt.max()).sum()
            ps = np.exp(zs - zs.max()) / np.exp(zs - zs.max()).sum()
            w = (mc[b, c] * ms[b, k]).ravel()
            num += float((w * pt * (np.log(pt) - np.log(ps))).sum())
            den += float(w.sum()) / (h * w_)
        out += num / den
    return tau ** 2 * out / ms.shape[1]


def test_masked_cwd_matches_loop_reference_and_all_ones_masks_give_cwd(gen: torch.Generator) -> None:
    from edgekd.distill.losses.acam import masked_cwd_loss
    from edgekd.distill.losses.cwd import cwd_loss

    s = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    t = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64) * 2
    mc = torch.rand(2, 3, generator=gen, dtype=torch.float64)
    ms = torch.rand(2, 4, 4, 5, generator=gen, dtype=torch.float64)
    for tau in (1.0, 4.0):
        got = masked_cwd_loss(s, t, mc, ms, tau, eps=0.0).item()
        assert got == pytest.approx(_ref_masked_cwd(s.numpy(), t.numpy(), mc.numpy(), ms.numpy(), tau), rel=1e-9)
        ones = masked_cwd_loss(s, t, torch.ones(2, 3, dtype=torch.float64), torch.ones(2, 2, 4, 5, dtype=torch.float64),
                               tau, eps=0.0)
        assert ones.item() == pytest.approx(cwd_loss(s, t, tau).item(), rel=1e-9)
    assert masked_cwd_loss(t, t, mc, ms).item() == pytest.approx(0.0, abs=1e-12)


def test_mask_floor_keeps_masks_in_floor_to_one(make_ctx, make_probe, gen) -> None:  # type: ignore[no-untyped-def]
    """With mask_floor f the weights are f + (1-f) m: masks that switch everything off (m = 0) leave the
    uniform-mask loss, and masks at 1 are unchanged, so at most a 1/f re-weighting between pixels."""
    from edgekd.distill.losses.acam import masked_cwd_loss

    s = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    t = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    for floor in (0.25, 0.5):
        cfg = ACAMConfig(student="s", teacher="t", masks=2, attn_dim=4, distance="cwd", diversity=0.0,
                         mask_floor=floor)
        term = LOSSES.get(cfg)(cfg, make_probe(student_feats={"s": s}, teacher_feats={"t": t})).double()
        term.projector = torch.nn.Identity()

        def zero_masks(s_: torch.Tensor, t_: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            m_c, m_s = torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, 2, 4, 5, dtype=torch.float64)
            return m_c, m_s, t_

        term.masker.forward = zero_masks  # type: ignore[method-assign]
        got = term(make_ctx(student_feats={"s": s}, teacher_feats={"t": t})).item()
        uniform = masked_cwd_loss(s, t, torch.ones(2, 3, dtype=torch.float64),
                                  torch.ones(2, 2, 4, 5, dtype=torch.float64)).item()
        assert got == pytest.approx(uniform, rel=1e-5)  # eps 1e-6 in the mass normalisation
    with pytest.raises(ValueError, match="mask_floor"):
        ACAMConfig(student="s", teacher="t", mask_floor=1.0)
