"""The interface between the training loop and the loss library.

Each loss file holds (1) a config class (``kind: Literal[...]``, subclass of
LossConfigBase), (2) a plain function computing the paper's formula on tensors, and
(3) a factory registered in ``LOSSES`` that builds a :class:`LossTerm` from the config
and a :class:`TapProbe` (the shapes of the tapped features, so projectors can be sized
before training starts).

The loop builds every term once, hooks the module paths the terms ask for, and on each
step calls ``term(ctx)`` with a :class:`StepContext`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

# inputs (positional, io order) -> (outputs tuple, {module path: feature})
ForwardFn = Callable[[Sequence[torch.Tensor]], tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]]


@dataclass
class TapProbe:
    """Shapes seen on one probe batch, by module path; used to size projectors."""

    student_shapes: Mapping[str, torch.Size]
    teacher_shapes: Mapping[str, torch.Size]
    student_out_shapes: Sequence[torch.Size]
    teacher_out_shapes: Sequence[torch.Size]


@dataclass
class StepContext:
    batch: Mapping[str, torch.Tensor]  # the whole batch on the device: inputs and targets
    inputs: tuple[torch.Tensor, ...]  # model inputs in io-spec order
    student_out: tuple[torch.Tensor, ...]
    teacher_out: tuple[torch.Tensor, ...] | None  # None when no teacher (baseline training)
    student_feats: Mapping[str, torch.Tensor]
    teacher_feats: Mapping[str, torch.Tensor]
    # Extra forwards with the same taps, e.g. on a masked input (MAE-style distillation).
    run_student: ForwardFn
    run_teacher: ForwardFn | None
    epoch: float = 0.0  # fractional epoch, for warm-ups
    extras: dict[str, Any] = field(default_factory=dict)


class LossTerm(nn.Module):
    """One weighted term of the total loss. Parameters (projectors, decoders) are trained
    with the student, saved with it, and dropped at export."""

    #: module paths this term needs captured, in the student and in the teacher
    student_taps: tuple[str, ...] = ()
    teacher_taps: tuple[str, ...] = ()
    #: terms that need no teacher outputs (e.g. the task loss) set this False
    needs_teacher: bool = True

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def forward(self, ctx: StepContext) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


# Factory signature registered in LOSSES for each config class.
TermFactory = Callable[[Any, TapProbe], LossTerm]
