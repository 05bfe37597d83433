"""Regression to a teacher's outputs: L1, L2 or Huber between student and teacher outputs.

For analytic teachers (a controller, a geometric gaze model: ``ctx.teacher_out`` holds the
callable's tensors) and for regressing a trained teacher's continuous outputs (gaze angles).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from edgekd.config.recipe import LossConfigBase
from edgekd.distill.losses import LOSSES
from edgekd.distill.losses._common import check_output_index, check_same_shape, student_output, teacher_output
from edgekd.distill.terms import LossTerm, StepContext, TapProbe
from edgekd.errors import ConfigError


class RegressionConfig(LossConfigBase):
    kind: Literal["regression"] = "regression"
    loss: Literal["l1", "l2", "huber"] = Field("l2", description="l1 = mean |d|, l2 = mean d^2, huber")
    delta: float = Field(1.0, gt=0, description="Huber threshold (quadratic below, linear above)")
    output: int = Field(0, ge=0, description="index into the student's and teacher's outputs")


def regression_loss(student: torch.Tensor, teacher: torch.Tensor, *, loss: str = "l2",
                    delta: float = 1.0) -> torch.Tensor:
    """Mean elementwise distance between student and (detached) teacher outputs.

    With d = s - t:  l1: mean |d|;  l2: mean d^2;
    huber (Huber 1964): mean of 0.5 d^2 if |d| <= delta else delta (|d| - 0.5 delta).
    """
    d = student - teacher.detach().to(student.dtype)
    if loss == "l1":
        return d.abs().mean()
    if loss == "l2":
        return d.pow(2).mean()
    if loss == "huber":
        a = d.abs()
        return torch.where(a <= delta, 0.5 * d.pow(2), delta * (a - 0.5 * delta)).mean()
    raise ValueError(f"loss must be l1, l2 or huber, got {loss!r}")


class RegressionTerm(LossTerm):
    def __init__(self, cfg: RegressionConfig) -> None:
        super().__init__(cfg.kind)
        self.cfg = cfg

    def forward(self, ctx: StepContext) -> torch.Tensor:
        s = student_output(ctx, self.cfg.output, self.cfg.kind)
        t = teacher_output(ctx, self.cfg.output, self.cfg.kind)
        check_same_shape(s, t, self.cfg.kind, "output")
        return regression_loss(s, t, loss=self.cfg.loss, delta=self.cfg.delta)


@LOSSES.register(RegressionConfig)
def build_regression(cfg: RegressionConfig, probe: TapProbe) -> LossTerm:
    check_output_index(cfg.kind, cfg.output, probe)
    s, t = probe.student_out_shapes[cfg.output], probe.teacher_out_shapes[cfg.output]
    if tuple(s)[1:] != tuple(t)[1:]:
        raise ConfigError(f"loss 'regression': student output {cfg.output} has shape {tuple(s)} but the "
                          f"teacher's has {tuple(t)}.",
                          hint="regress outputs of the same shape (pick another output index)")
    return RegressionTerm(cfg)
