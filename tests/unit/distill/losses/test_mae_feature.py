"""DMAE-style masked feature distillation against explicit loops (float64; tolerance abs 1e-10).

As the official code: one patch mask for both models (the teacher sees the student's visible patches),
L2-normalised projected features matched by L1 and summed over tap pairs, MAE's reconstruction of
per-patch-normalised pixels on the hidden patches."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.mae_feature import (
    MAEFeatureConfig,
    mae_feature_loss,
    patch_normalized,
    random_patch_mask,
)
from edgekd.errors import ConfigError


def test_patch_mask_counts_and_grid(gen: torch.Generator) -> None:
    m = random_patch_mask(3, 10, 12, 4, 0.5, generator=gen)  # grid 3x3 = 9 patches, round(4.5) = 4 masked
    assert m.shape == (3, 1, 10, 12)
    for b in range(3):
        grid = m[b, 0, ::4, ::4]
        assert int(grid.sum()) == 4
        # constant inside each patch
        up = grid.repeat_interleave(4, 0).repeat_interleave(4, 1)[:10, :12]
        assert torch.equal(up, m[b, 0])
    assert random_patch_mask(2, 8, 8, 4, 0.0, generator=gen).sum() == 0
    assert MAEFeatureConfig(student="a", teacher="b").mask_ratio == 0.75


def _norm_pix_ref(x: np.ndarray, p: int) -> np.ndarray:
    """Each patch (its pixels in every channel, edge patches cropped) minus its mean over sqrt(var + 1e-6),
    var with n - 1 in the denominator, as MAE's norm_pix_loss."""
    B, C, H, W = x.shape
    out = np.zeros_like(x)
    for b in range(B):
        for i in range(0, H, p):
            for j in range(0, W, p):
                v = x[b, :, i:i + p, j:j + p]
                vals = v.reshape(-1)
                mean = sum(vals) / len(vals)
                var = sum((u - mean) ** 2 for u in vals) / (len(vals) - 1)
                out[b, :, i:i + p, j:j + p] = (v - mean) / math.sqrt(var + 1e-6)
    return out


@pytest.mark.parametrize("hw", [(8, 8), (10, 7)])  # divisible, and cropped edge patches
def test_patch_normalized_matches_loops(hw: tuple, gen: torch.Generator) -> None:
    x = torch.randn(2, 3, *hw, generator=gen, dtype=torch.float64) * 50 + 3
    assert np.allclose(patch_normalized(x, 4).numpy(), _norm_pix_ref(x.numpy(), 4), atol=1e-10)


def _l2n_positions(f: np.ndarray) -> np.ndarray:
    """Normalise each position's vector: over channels of [B,C,H,W], over the last axis otherwise."""
    out = np.zeros_like(f)
    if f.ndim == 4:
        for b in range(f.shape[0]):
            for i in range(f.shape[2]):
                for j in range(f.shape[3]):
                    v = f[b, :, i, j]
                    out[b, :, i, j] = v / max(math.sqrt(sum(v * v)), 1e-12)
        return out
    flat, res = f.reshape(-1, f.shape[-1]), out.reshape(-1, f.shape[-1])
    for n in range(len(flat)):
        res[n] = flat[n] / max(math.sqrt(sum(flat[n] ** 2)), 1e-12)
    return out


class _Net(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.head = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = torch.tanh(self.stem(x))
        return self.head(f.mean((2, 3))), f


def _runner(model: _Net, key: str, seen: list):
    def run(inputs):
        seen.append(inputs[0].detach().clone())
        with torch.set_grad_enabled(key == "stem"):
            out, f = model(inputs[0])
        return (out,), {key: f}
    return run


def _step(cfg: MAEFeatureConfig, x: torch.Tensor, make_ctx, make_probe):
    torch.manual_seed(0)
    student, teacher = _Net(4).double(), _Net(6).double()
    _, fs_clean = student(x)
    with torch.no_grad():
        _, ft_clean = teacher(x)
    probe = make_probe([torch.zeros(1)], [torch.zeros(1)], student_feats={"stem": fs_clean},
                       teacher_feats={"t.stem": ft_clean})
    term = LOSSES.get(cfg)(cfg, probe).double()
    s_seen, t_seen = [], []
    ctx = make_ctx(inputs=[x], teacher_feats={"t.stem": ft_clean}, student_feats={"stem": fs_clean},
                   run_student=_runner(student, "stem", s_seen))
    ctx.run_teacher = _runner(teacher, "t.stem", t_seen)
    return term, student, teacher, term(ctx), s_seen, t_seen, ft_clean


@pytest.mark.parametrize("batch", [2, 1])
def test_default_term_matches_dmae_reference(batch: int, make_ctx, make_probe, gen: torch.Generator) -> None:
    x = torch.randn(batch, 3, 8, 8, generator=gen, dtype=torch.float64)
    cfg = MAEFeatureConfig(student="stem", teacher="t.stem", mask_ratio=0.5, patch_size=4)
    term, student, teacher, got, s_seen, t_seen, _ = _step(cfg, x, make_ctx, make_probe)
    # both models saw the same masked image; recover the mask from it
    assert len(t_seen) == 1 and torch.equal(s_seen[0], t_seen[0])
    xm = s_seen[0].numpy()
    mask = (xm == 0).all(axis=1, keepdims=True).astype(np.float64)
    assert mask[:, :, ::4, ::4].sum(axis=(1, 2, 3)).tolist() == [2.0] * batch  # 4 patches, half hidden
    assert np.allclose(xm, x.numpy() * (1 - mask))
    with torch.no_grad():
        fs = torch.tanh(student.stem(torch.from_numpy(xm))).numpy()
        ft = torch.tanh(teacher.stem(torch.from_numpy(xm))).numpy()
        rec = term.pixel_head(torch.from_numpy(fs), (8, 8)).numpy()
    w = term.projectors[0].proj.weight.detach().numpy()[:, :, 0, 0]
    b = term.projectors[0].proj.bias.detach().numpy()
    proj = np.einsum("oc,bchw->bohw", w, fs) + b[None, :, None, None]
    feat = np.abs(_l2n_positions(proj) - _l2n_positions(ft)).mean()
    target = _norm_pix_ref(x.numpy(), 4)
    pix = (mask * (rec - target) ** 2).sum() / (mask.sum() * 3)
    assert got.item() == pytest.approx(1.0 * feat + 1.0 * pix, abs=1e-10)
    got.backward()
    assert student.stem.weight.grad is not None and term.projectors[0].proj.weight.grad is not None
    assert teacher.stem.weight.grad is None


def test_pre_issue_22_variant(make_ctx, make_probe, gen: torch.Generator) -> None:
    """teacher_input full, raw features by MSE averaged over taps, raw-pixel target: the earlier formula."""
    x = torch.randn(2, 3, 8, 8, generator=gen, dtype=torch.float64)
    cfg = MAEFeatureConfig(student="stem", teacher="t.stem", mask_ratio=0.5, patch_size=4, teacher_input="full",
                           feature_distance="l2", normalize_features=False, tap_reduction="mean",
                           feature_weight=0.5, norm_pix=False, pixel_weight=2.0)
    term, student, _, got, s_seen, t_seen, ft_clean = _step(cfg, x, make_ctx, make_probe)
    assert t_seen == [] and term.needs_teacher  # the loop's teacher forward on the full image is used
    xm = s_seen[0].numpy()
    mask = (xm == 0).all(axis=1, keepdims=True).astype(np.float64)
    with torch.no_grad():
        fs = torch.tanh(student.stem(torch.from_numpy(xm))).numpy()
        rec = term.pixel_head(torch.from_numpy(fs), (8, 8)).numpy()
    w = term.projectors[0].proj.weight.detach().numpy()[:, :, 0, 0]
    b = term.projectors[0].proj.bias.detach().numpy()
    proj = np.einsum("oc,bchw->bohw", w, fs) + b[None, :, None, None]
    ref = 0.5 * ((proj - ft_clean.numpy()) ** 2).mean() + 2.0 * (mask * (rec - x.numpy()) ** 2).sum() / (mask.sum() * 3)
    assert got.item() == pytest.approx(ref, abs=1e-10)


def test_lists_of_taps_and_errors(make_ctx, make_probe, gen: torch.Generator) -> None:
    cfg = MAEFeatureConfig(student=["a", "b"], teacher=["ta", "tb"], pixel_weight=0.0)
    probe = make_probe([torch.zeros(1)], [torch.zeros(1)],
                       student_feats={"a": torch.zeros(2, 4, 4, 4), "b": torch.zeros(2, 8)},
                       teacher_feats={"ta": torch.zeros(2, 4, 4, 4), "tb": torch.zeros(2, 5)})
    term = LOSSES.get(cfg)(cfg, probe)
    assert term.student_taps == ("a", "b") and term.teacher_taps == ("ta", "tb") and len(term.projectors) == 2
    assert term.projectors[1](torch.zeros(3, 8)).shape == (3, 5)
    assert term.needs_teacher is False  # it runs the teacher on the masked image itself
    with pytest.raises(ValueError, match="one teacher path per student"):
        MAEFeatureConfig(student=["a", "b"], teacher="ta")
    with pytest.raises(ConfigError, match="needs a teacher"):
        LOSSES.get(cfg)(cfg, make_probe([torch.zeros(1)], [], student_feats={"a": torch.zeros(2, 4, 4, 4)}))


def test_formula_function_sum_l1_normalised(gen: torch.Generator) -> None:
    p = [torch.randn(2, 3, generator=gen, dtype=torch.float64) * 50,
         torch.randn(2, 4, 2, 2, generator=gen, dtype=torch.float64)]
    t = [torch.randn(2, 3, generator=gen, dtype=torch.float64),
         torch.randn(2, 4, 2, 2, generator=gen, dtype=torch.float64)]
    ref = sum(np.abs(_l2n_positions(a.numpy()) - _l2n_positions(b.numpy())).mean() for a, b in zip(p, t, strict=True))
    assert mae_feature_loss(p, t, feature_weight=0.25).item() == pytest.approx(0.25 * ref, abs=1e-12)
    sq = sum(((_l2n_positions(a.numpy()) - _l2n_positions(b.numpy())) ** 2).mean() for a, b in zip(p, t, strict=True))
    got = mae_feature_loss(p, t, feature_distance="l2", tap_reduction="mean")
    assert got.item() == pytest.approx(sq / 2, abs=1e-12)
    q = p[0].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: mae_feature_loss([z], [t[0]]), (q,))
