"""The shipped segmentation recipe: every preset validates, and the selectable losses build on the task's models."""

import pytest
import torch

from edgekd.distill.losses import LOSSES
from edgekd.distill.losses.acam import ACAMConfig
from edgekd.distill.terms import TapProbe
from edgekd.tasks import build_task
from edgekd.tasks.recipe import load_recipe


@pytest.mark.parametrize("preset", ["quick", "smoke", "full"])
def test_presets_validate(preset: str) -> None:
    r = load_recipe("segmentation", preset=preset)
    assert r.task.kind == "segmentation" and r.preset == preset
    assert r.task.height % 8 == 0 and r.task.width % 8 == 0
    assert [lc.kind for lc in r.distill.losses] == ["cwd"]


def test_cwd_and_acam_taps_exist_on_both_models() -> None:
    r = load_recipe("segmentation", preset="smoke")
    task = build_task(r.task, 0)
    t, s = task.build_teacher().eval(), task.build_student().eval()
    shapes: dict[str, dict[str, torch.Size]] = {"s": {}, "t": {}}
    for side, m in (("s", s), ("t", t)):
        for name in ("aspp", "classifier"):
            getattr(m, name).register_forward_hook(
                lambda _m, _i, o, side=side, name=name: shapes[side].__setitem__(name, o.shape))
        with torch.no_grad():
            m(torch.rand(2, 3, r.task.height, r.task.width))
    probe = TapProbe(shapes["s"], shapes["t"], [], [])
    for lc in [*r.distill.losses, ACAMConfig(student="aspp", teacher="aspp")]:
        term = LOSSES.get(lc)(lc, probe)
        assert term.student_taps and term.teacher_taps
    assert shapes["s"]["classifier"] == shapes["t"]["classifier"]


def test_unknown_loss_field_is_rejected_with_its_name() -> None:
    from edgekd.errors import ConfigError

    with pytest.raises(ConfigError, match="masks"):
        load_recipe("segmentation", ["distill.losses.0.kind=acam", "distill.losses.0.masks=0",
                                     "distill.losses.0.student=aspp", "distill.losses.0.teacher=aspp"],
                    preset="smoke")
