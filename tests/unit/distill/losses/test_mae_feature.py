import numpy as np
import pytest
import torch
from torch import nn

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.mae_feature import MAEFeatureConfig, mae_feature_loss, random_patch_mask


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


class _Student(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = torch.tanh(self.stem(x))
        return self.head(f.mean((2, 3))), f


def _run_student(model: _Student, seen: list):
    def run(inputs):
        seen.append(inputs[0].detach().clone())
        out, f = model(inputs[0])
        return (out,), {"stem": f}
    return run


@pytest.mark.parametrize("pixel_weight", [0.0, 1.0])
def test_term_matches_independent_computation(pixel_weight: float, make_ctx, make_probe, gen: torch.Generator) -> None:
    torch.manual_seed(0)
    model = _Student().double()
    x = torch.randn(2, 3, 8, 8, generator=gen, dtype=torch.float64)
    ft = torch.randn(2, 6, 8, 8, generator=gen, dtype=torch.float64)
    _, fs_clean = model(x)
    cfg = MAEFeatureConfig(student="stem", teacher="t.stem", mask_ratio=0.5, patch_size=4, pixel_weight=pixel_weight)
    term = LOSSES.get(cfg)(cfg, make_probe(student_feats={"stem": fs_clean}, teacher_feats={"t.stem": ft})).double()
    seen: list = []
    ctx = make_ctx(inputs=[x], teacher_feats={"t.stem": ft}, run_student=_run_student(model, seen),
                   student_feats={"stem": fs_clean})
    got = term(ctx)
    # independent: recover the mask from the input the student saw, recompute in numpy
    xm = seen[0].numpy()
    mask = (xm == 0).all(axis=1, keepdims=True).astype(np.float64)
    assert mask[:, :, ::4, ::4].sum(axis=(1, 2, 3)).tolist() == [2.0, 2.0]  # 4 patches, half masked
    assert np.allclose(xm, x.numpy() * (1 - mask))
    with torch.no_grad():
        fs_masked = torch.tanh(model.stem(torch.from_numpy(xm))).numpy()
    w = term.projectors[0].proj.weight.detach().numpy()[:, :, 0, 0]
    b = term.projectors[0].proj.bias.detach().numpy()
    proj = np.einsum("oc,bchw->bohw", w, fs_masked) + b[None, :, None, None]
    ref = 0.5 * ((proj - ft.numpy()) ** 2).mean()
    if pixel_weight:
        with torch.no_grad():
            rec = term.pixel_head(torch.from_numpy(fs_masked), (8, 8)).numpy()
        ref += pixel_weight * (mask * (rec - x.numpy()) ** 2).sum() / (mask.sum() * 3)
    assert got.item() == pytest.approx(ref, abs=1e-10)
    got.backward()
    assert model.stem.weight.grad is not None and term.projectors[0].proj.weight.grad is not None


def test_lists_of_taps(make_ctx, make_probe, gen: torch.Generator) -> None:
    cfg = MAEFeatureConfig(student=["a", "b"], teacher=["ta", "tb"])
    probe = make_probe(student_feats={"a": torch.zeros(2, 4, 4, 4), "b": torch.zeros(2, 8)},
                       teacher_feats={"ta": torch.zeros(2, 4, 4, 4), "tb": torch.zeros(2, 5)})
    term = LOSSES.get(cfg)(cfg, probe)
    assert term.student_taps == ("a", "b") and len(term.projectors) == 2
    assert term.projectors[1](torch.zeros(3, 8)).shape == (3, 5)
    with pytest.raises(ValueError, match="one teacher path per student"):
        MAEFeatureConfig(student=["a", "b"], teacher="ta")


def test_formula_function(gen: torch.Generator) -> None:
    p = [torch.randn(2, 3, generator=gen, dtype=torch.float64), torch.randn(2, 4, 2, 2, generator=gen, dtype=torch.float64)]
    t = [torch.randn(2, 3, generator=gen, dtype=torch.float64), torch.randn(2, 4, 2, 2, generator=gen, dtype=torch.float64)]
    ref = 0.25 * (np.mean((p[0].numpy() - t[0].numpy()) ** 2) + np.mean((p[1].numpy() - t[1].numpy()) ** 2)) / 2
    assert mae_feature_loss(p, t, feature_weight=0.25).item() == pytest.approx(ref, abs=1e-12)
    q = p[0].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: mae_feature_loss([z], [t[0]]), (q,))
