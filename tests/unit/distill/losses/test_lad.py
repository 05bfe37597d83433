"""LAD loss: the teacher is run with the batch's label hint; the value is pixel KD against it."""

import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.hinton_kd import hinton_kd_loss
from edgekd.distill.losses.lad import LADLossConfig
from edgekd.errors import ConfigError, UnknownNameError


def test_runs_teacher_with_hint_and_matches_pixel_kd(make_ctx, make_probe, gen) -> None:  # type: ignore[no-untyped-def]
    image = torch.rand(2, 3, 4, 4, generator=gen)
    hint = torch.rand(2, 1, 4, 4, generator=gen)
    s = torch.randn(2, 5, 4, 4, generator=gen, requires_grad=True)
    t = torch.randn(2, 5, 4, 4, generator=gen)
    valid = (torch.rand(2, 4, 4, generator=gen) > 0.3).float()
    seen = []

    def teacher(inputs):  # type: ignore[no-untyped-def]
        seen.append(inputs)
        return (t,), {}

    cfg = LADLossConfig(temperature=2.0)
    term = LOSSES.get(cfg)(cfg, make_probe(student_out=[s], teacher_out=[t]))
    assert term.needs_teacher is False  # the term runs the teacher itself (with the hint)
    ctx = make_ctx(student_out=[s], teacher_out=None, inputs=[image], batch={"hint": hint, "valid": valid})
    ctx.run_teacher = teacher
    loss = term(ctx)
    assert len(seen) == 1 and seen[0][0] is image and seen[0][1] is hint
    assert loss.item() == pytest.approx(hinton_kd_loss(s, t, 2.0, mask=valid).item(), rel=1e-6)
    loss.backward()
    assert s.grad is not None


def test_errors_without_teacher_or_hint(make_ctx, make_probe) -> None:  # type: ignore[no-untyped-def]
    s = torch.zeros(1, 3, 2, 2)
    cfg = LADLossConfig()
    with pytest.raises(ConfigError, match="needs a teacher"):
        LOSSES.get(cfg)(cfg, make_probe(student_out=[s], teacher_out=[]))
    term = LOSSES.get(cfg)(cfg, make_probe(student_out=[s], teacher_out=[s]))
    ctx = make_ctx(student_out=[s], batch={"valid": torch.ones(1, 2, 2)})
    ctx.run_teacher = lambda inputs: ((s,), {})
    with pytest.raises(UnknownNameError, match="hint"):
        term(ctx)
