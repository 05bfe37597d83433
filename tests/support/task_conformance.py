"""The conformance tests every task passes, written once and subclassed per task.

A task's test file loads this module with :func:`load` and subclasses :class:`TaskConformance` as
``Test<Task>Conformance``, overriding :meth:`TaskConformance.make_task` with a tiny configuration
(a few items per split, narrow models), so the four shipped tasks together run in seconds. A
custom task (``task: {kind: custom}``) can be checked the same way.

What is checked is what the pipeline relies on: the io spec agrees with a dataset item and with
both models; the task loss is a finite scalar with a gradient; evaluation returns a finite metric
in its declared range; the student can be built from scratch; every hook of the protocol can be
called as the pipeline calls it.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import default_collate

from edgekd.errors import ConfigError
from edgekd.iospec import IOSpec, TensorSpec
from edgekd.tasks import Task, check_task
from edgekd.tasks.base import EvalResult, calibration_items, torch_predict


def load() -> Any:
    """Import this file as a module (tests run with --import-mode=importlib: no package imports)."""
    name = "edgekd_tests_tasks_conformance"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _dims_match(spec: TensorSpec, shape: tuple[int, ...], dims: Mapping[str, int], *, batched: bool) -> bool:
    """A concrete shape fits a spec: fixed dims equal, named dims consistent with ``dims`` where given."""
    want = spec.shape if batched else spec.shape[1:]
    if len(want) != len(shape):
        return False
    return all(d == s if isinstance(d, int) else (d not in dims or dims[d] == s) for d, s in zip(want, shape,
                                                                                                   strict=True))


def _outputs(out: Any) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


class TaskConformance:
    """Subclass per task and override :meth:`make_task` (and the knobs below if needed)."""

    eval_split: str = "val"  # the split evaluate() is checked on (tiny in make_task's config)
    batch_items: int = 2  # items stacked into the batch the models are run on

    # --- hooks a task's test overrides --------------------------------------------------------
    def make_task(self) -> Task:
        raise NotImplementedError("override make_task() with a tiny configuration of the task")

    # --- fixtures -----------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    def task(self) -> Task:
        return self.make_task()

    @pytest.fixture(scope="class")
    def spec(self, task: Task) -> IOSpec:
        return task.io_spec()

    @pytest.fixture(scope="class")
    def batch(self, task: Task) -> dict[str, torch.Tensor]:
        ds = task.dataset("train")
        assert len(ds) >= self.batch_items, f"train split has {len(ds)} items, need {self.batch_items}"  # type: ignore[arg-type]
        return default_collate([ds[i] for i in range(self.batch_items)])  # type: ignore[no-any-return]

    @pytest.fixture(scope="class")
    def teacher(self, task: Task) -> Any:
        return task.build_teacher()

    # --- the protocol -------------------------------------------------------------------------
    def test_satisfies_the_protocol(self, task: Task) -> None:
        assert isinstance(task, Task)
        assert check_task(task) == []

    def test_metric_declares_its_direction(self, task: Task) -> None:
        assert isinstance(task.metric.lower_is_better, bool)
        assert task.metric.name

    # --- io spec against data and models ------------------------------------------------------
    def test_io_spec_matches_a_dataset_item(self, task: Task, spec: IOSpec) -> None:
        item = task.dataset("train")[0]
        dims = dict(spec.example_dims)
        for t in spec.inputs:
            assert t.name in item, f"input {t.name!r} of io_spec() is not a key of a dataset item ({sorted(item)})"
            value = item[t.name]
            assert _dims_match(t, tuple(value.shape), dims, batched=False), \
                f"item[{t.name!r}] has shape {tuple(value.shape)}, io_spec() says {t.shape[1:]} (batch dim dropped)"
            assert value.numpy().dtype == np.dtype(t.dtype), f"item[{t.name!r}] is {value.dtype}, io_spec(): {t.dtype}"
        for name in task.teacher_input_names:
            assert name in item, f"teacher input {name!r} is not a key of a dataset item"

    def test_student_outputs_match_io_spec(self, task: Task, spec: IOSpec, batch: dict[str, torch.Tensor]) -> None:
        student = task.build_student().eval()
        with torch.no_grad():
            outs = _outputs(student(*[batch[n] for n in spec.input_names]))
        assert len(outs) == len(spec.outputs), f"student returns {len(outs)} outputs, io_spec() declares " \
                                               f"{spec.output_names}"
        for t, o in zip(spec.outputs, outs, strict=True):
            assert _dims_match(t, tuple(o.shape), {"batch": self.batch_items}, batched=True), \
                f"student output {t.name!r} has shape {tuple(o.shape)}, io_spec(): {t.shape}"

    def test_teacher_outputs_match_io_spec(self, task: Task, spec: IOSpec, teacher: Any,
                                           batch: dict[str, torch.Tensor]) -> None:
        # KD runs the teacher (eval mode) on the student's inputs, through the same predict path as scoring.
        feeds = {n: batch[n].numpy() for n in spec.input_names}
        if isinstance(teacher, nn.Module):
            outs = torch_predict(teacher.eval(), spec)(feeds)
        else:
            assert callable(teacher), "build_teacher() must return an nn.Module or a callable"
            with torch.no_grad():
                outs = [np.asarray(o) for o in _outputs(teacher(*[batch[n] for n in spec.input_names]))]
        assert len(outs) == len(spec.outputs)
        for t, o in zip(spec.outputs, outs, strict=True):
            assert _dims_match(t, tuple(o.shape), {"batch": self.batch_items}, batched=True), \
                f"teacher output {t.name!r} has shape {tuple(o.shape)}, io_spec(): {t.shape}"

    # --- losses -------------------------------------------------------------------------------
    def test_task_loss_is_a_finite_scalar_with_gradient(self, task: Task, spec: IOSpec,
                                                        batch: dict[str, torch.Tensor]) -> None:
        student = task.build_student().train()
        loss = task.task_loss(_outputs(student(*[batch[n] for n in spec.input_names])), batch)
        assert isinstance(loss, torch.Tensor) and loss.ndim == 0, f"task_loss returned {loss!r}, not a scalar"
        assert math.isfinite(float(loss.detach()))
        loss.backward()
        grads = [p.grad for p in student.parameters() if p.requires_grad]
        assert any(g is not None and bool(g.abs().sum() > 0) for g in grads), "task_loss has no gradient"
        assert all(g is None or bool(torch.isfinite(g).all()) for g in grads)

    def test_teacher_task_loss_is_finite(self, task: Task, teacher: Any, batch: dict[str, torch.Tensor]) -> None:
        if not isinstance(teacher, nn.Module):
            pytest.skip("analytic teacher: it is not trained, so teacher_task_loss is never called")
        teacher.train()
        loss = task.teacher_task_loss(_outputs(teacher(*[batch[n] for n in task.teacher_input_names])), batch)
        teacher.eval()
        assert loss.ndim == 0 and math.isfinite(float(loss.detach()))

    # --- evaluation ---------------------------------------------------------------------------
    def test_evaluate_returns_a_finite_metric_in_range(self, task: Task, spec: IOSpec) -> None:
        res = task.evaluate(torch_predict(task.build_student().eval(), spec), split=self.eval_split, batch_size=4)
        assert isinstance(res, EvalResult)
        assert isinstance(res.metric, float) and math.isfinite(res.metric), res.metric
        if task.metric.unit == "fraction" and not task.metric.lower_is_better:
            # a score that grows with quality; val may carry a small tie-breaker below 0 (drone)
            assert -0.2 <= res.metric <= 1.0, res.metric
        if task.metric.lower_is_better:
            assert res.metric >= 0.0, f"an error metric ({task.metric.name}) is negative: {res.metric}"

    def test_eval_splits_exist(self, task: Task) -> None:
        for split in task.eval_splits():
            assert len(task.dataset(split)) > 0, f"eval split {split!r} is empty"  # type: ignore[arg-type]

    # --- models and hooks ---------------------------------------------------------------------
    def test_build_student_from_scratch(self, task: Task) -> None:
        a, b = task.build_student(init="scratch"), task.build_student(init="scratch")
        assert isinstance(a, nn.Module)
        # fresh and seeded: two builds are separate modules with equal weights
        assert a is not b
        for (na, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert torch.equal(pa, pb), f"build_student(init='scratch') is not reproducible at {na}"

    def test_build_student_rejects_an_unknown_init(self, task: Task) -> None:
        with pytest.raises(ConfigError, match="init"):
            task.build_student(init="techer")

    def test_every_hook_can_be_called(self, task: Task, teacher: Any) -> None:
        assert isinstance(task.eval_splits(), list)
        assert all(isinstance(n, str) for n in task.teacher_input_names)
        assert task.parity_compare in ("allclose", "argmax")
        assert 0.0 <= task.parity_min_agreement <= 1.0
        if isinstance(teacher, nn.Module):
            info = task.pretrain_teacher(teacher, progress=False)
            assert isinstance(info, dict)

    def test_calibration_items_are_single_input_batches(self, task: Task, spec: IOSpec) -> None:
        items = calibration_items(task, 2)
        assert len(items) == 2
        for it in items:
            assert sorted(it) == sorted(spec.input_names)
            assert all(v.shape[0] == 1 for v in it.values())
