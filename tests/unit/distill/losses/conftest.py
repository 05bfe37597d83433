"""Tiny fakes for loss-term tests: a StepContext and a TapProbe built from tensors."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
import torch

from edgekd.distill.terms import StepContext, TapProbe


def fake_ctx(student_out: Sequence[torch.Tensor] = (), teacher_out: Sequence[torch.Tensor] | None = (),
             student_feats: Mapping[str, torch.Tensor] | None = None,
             teacher_feats: Mapping[str, torch.Tensor] | None = None,
             batch: Mapping[str, torch.Tensor] | None = None, inputs: Sequence[torch.Tensor] = (),
             run_student: Callable[..., Any] | None = None) -> StepContext:
    def no_run(_inputs: Sequence[torch.Tensor]) -> Any:
        raise AssertionError("run_student was not expected to be called")

    return StepContext(
        batch=dict(batch or {}), inputs=tuple(inputs), student_out=tuple(student_out),
        teacher_out=None if teacher_out is None else tuple(teacher_out),
        student_feats=dict(student_feats or {}), teacher_feats=dict(teacher_feats or {}),
        run_student=run_student or no_run, run_teacher=None)


def fake_probe(student_out: Sequence[torch.Tensor] = (), teacher_out: Sequence[torch.Tensor] = (),
               student_feats: Mapping[str, torch.Tensor] | None = None,
               teacher_feats: Mapping[str, torch.Tensor] | None = None) -> TapProbe:
    return TapProbe(
        student_shapes={k: v.shape for k, v in (student_feats or {}).items()},
        teacher_shapes={k: v.shape for k, v in (teacher_feats or {}).items()},
        student_out_shapes=[o.shape for o in student_out], teacher_out_shapes=[o.shape for o in teacher_out])


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def make_ctx() -> Callable[..., StepContext]:
    return fake_ctx


@pytest.fixture
def make_probe() -> Callable[..., TapProbe]:
    return fake_probe
