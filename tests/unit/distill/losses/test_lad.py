"""LAD loss: the teacher is run with the batch's label hint; the student term is CWD (tau 4, weight 3) against
it, as the official code, checked against an explicit loop (float64, tolerance abs 1e-10); pixel_kl is the
named pre-issue-22 variant."""

import math

import numpy as np
import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.hinton_kd import hinton_kd_loss
from edgekd.distill.losses.lad import LADLossConfig, lad_loss
from edgekd.errors import ConfigError, UnknownNameError


def _log_sm(z: np.ndarray) -> np.ndarray:
    return z - z.max() - math.log(np.exp(z - z.max()).sum())


def _cwd_ref(s: np.ndarray, t: np.ndarray, tau: float) -> float:
    """tau^2 / (B C) sum_{b,c} KL over the H*W pixels of each channel, in loops."""
    B, C = s.shape[:2]
    total = 0.0
    for b in range(B):
        for c in range(C):
            lp, lq = _log_sm(t[b, c].reshape(-1) / tau), _log_sm(s[b, c].reshape(-1) / tau)
            total += sum(math.exp(lp[i]) * (lp[i] - lq[i]) for i in range(len(lp)))
    return total / (B * C) * tau * tau


def _teacher(t: torch.Tensor, seen: list):  # type: ignore[no-untyped-def]
    def run(inputs):  # type: ignore[no-untyped-def]
        seen.append(inputs)
        return (t,), {}
    return run


def test_defaults_are_the_official_cwd_tau4_weight3() -> None:
    cfg = LADLossConfig()
    assert (cfg.distance, cfg.temperature, cfg.weight, cfg.mask_key) == ("cwd", 4.0, 3.0, None)
    with pytest.raises(ValueError, match="only read by distance: pixel_kl"):
        LADLossConfig(mask_key="valid")


@pytest.mark.parametrize("shape", [(2, 5, 4, 3), (1, 3, 2, 2)])  # per-pixel maps; a batch of one
def test_runs_teacher_with_hint_and_matches_cwd_reference(shape, make_ctx, make_probe, gen) -> None:  # type: ignore[no-untyped-def]
    image = torch.rand(shape[0], 3, *shape[2:], generator=gen)
    hint = torch.rand(shape[0], 1, *shape[2:], generator=gen)
    s = (torch.randn(*shape, generator=gen, dtype=torch.float64) * 50).requires_grad_(True)  # logits of +-50
    t = torch.randn(*shape, generator=gen, dtype=torch.float64) * 50
    seen: list = []
    cfg = LADLossConfig()
    term = LOSSES.get(cfg)(cfg, make_probe(student_out=[s], teacher_out=[t]))
    assert term.needs_teacher is False  # the term runs the teacher itself (with the hint)
    ctx = make_ctx(student_out=[s], teacher_out=None, inputs=[image], batch={"hint": hint})
    ctx.run_teacher = _teacher(t, seen)
    loss = term(ctx)
    assert len(seen) == 1 and seen[0][0] is image and seen[0][1] is hint
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(_cwd_ref(s.detach().numpy(), t.numpy(), 4.0), rel=1e-9, abs=1e-10)
    loss.backward()
    assert s.grad is not None


def test_pixel_kl_variant(make_ctx, make_probe, gen) -> None:  # type: ignore[no-untyped-def]
    image = torch.rand(2, 3, 4, 4, generator=gen)
    hint = torch.rand(2, 1, 4, 4, generator=gen)
    s = torch.randn(2, 5, 4, 4, generator=gen, requires_grad=True)
    t = torch.randn(2, 5, 4, 4, generator=gen)
    valid = (torch.rand(2, 4, 4, generator=gen) > 0.3).float()
    cfg = LADLossConfig(distance="pixel_kl", temperature=2.0, mask_key="valid")
    term = LOSSES.get(cfg)(cfg, make_probe(student_out=[s], teacher_out=[t]))
    ctx = make_ctx(student_out=[s], teacher_out=None, inputs=[image], batch={"hint": hint, "valid": valid})
    ctx.run_teacher = _teacher(t, [])
    assert term(ctx).item() == pytest.approx(hinton_kd_loss(s, t, 2.0, mask=valid).item(), rel=1e-6)
    # no valid pixel: 0, not NaN
    assert lad_loss(s, t, distance="pixel_kl", mask=torch.zeros(2, 4, 4)).item() == 0.0


def test_errors_without_teacher_or_hint(make_ctx, make_probe) -> None:  # type: ignore[no-untyped-def]
    s = torch.zeros(1, 3, 2, 2)
    cfg = LADLossConfig()
    with pytest.raises(ConfigError, match="needs a teacher"):
        LOSSES.get(cfg)(cfg, make_probe(student_out=[s], teacher_out=[]))
    with pytest.raises(ConfigError, match=r"\[B,C,H,W\]"):
        LOSSES.get(cfg)(cfg, make_probe(student_out=[torch.zeros(2, 3)], teacher_out=[torch.zeros(2, 3)]))
    term = LOSSES.get(cfg)(cfg, make_probe(student_out=[s], teacher_out=[s]))
    ctx = make_ctx(student_out=[s], batch={"valid": torch.ones(1, 2, 2)})
    ctx.run_teacher = lambda inputs: ((s,), {})
    with pytest.raises(UnknownNameError, match="hint"):
        term(ctx)
