"""check_task: every missing or ill-typed member of the Task protocol, all at once."""

from __future__ import annotations

from typing import Any

import pytest

from edgekd.iospec import IOSpec, TensorSpec
from edgekd.tasks import MetricSpec, Task, TaskBase, check_task
from edgekd.tasks.base import EvalResult
from edgekd.tasks.protocol_check import ATTRIBUTES, HOOKS, MEMBERS


class Minimal(TaskBase):
    """Only the required members; TaskBase gives the optional hooks."""

    metric = MetricSpec("mae", lower_is_better=True)
    config: Any = None

    def io_spec(self) -> IOSpec:
        return IOSpec((TensorSpec("x", ("batch", 3)),), (TensorSpec("y", ("batch", 1)),))

    def dataset(self, split: str) -> Any:
        return []

    def build_teacher(self) -> Any:
        return None

    def build_student(self, *, init: str = "teacher") -> Any:
        return None

    def task_loss(self, outputs: Any, batch: Any) -> Any:
        return None

    def evaluate(self, predict: Any, split: str = "test", batch_size: int = 64) -> EvalResult:
        return EvalResult(0.0)


def _with_config() -> Minimal:
    from edgekd.tasks.custom import CustomTaskConfig

    t = Minimal()
    t.config = CustomTaskConfig(factory="x.py:build")
    return t


def test_every_protocol_member_is_checked() -> None:
    # the check's table and the Protocol declare the same members
    declared = {n for n in vars(Task) if not n.startswith("_")} | set(Task.__annotations__)
    declared -= {"_is_protocol", "_is_runtime_protocol"}
    assert set(MEMBERS) == {n for n in declared if not n.startswith("_")}


def test_a_conforming_object_has_no_problems() -> None:
    t = _with_config()
    assert check_task(t) == []
    assert isinstance(t, Task)


def test_taskbase_defaults() -> None:
    t = _with_config()
    assert t.eval_splits() == []
    assert t.pretrain_teacher(None) == {}  # type: ignore[arg-type]
    assert tuple(t.teacher_input_names) == ("x",)
    assert (t.parity_compare, t.parity_min_agreement) == ("allclose", 0.99)


def test_a_bare_object_lists_every_member_at_once() -> None:
    problems = check_task(object())
    for name in MEMBERS:
        assert any(p.startswith(f"{name}:") for p in problems), f"{name} not reported: {problems}"
    assert len(problems) == len(HOOKS) + len(ATTRIBUTES)


class IllTyped(Minimal):
    metric = "accuracy"  # type: ignore[assignment]
    parity_compare = "exact"  # type: ignore[assignment]
    parity_min_agreement = 1.5
    teacher_input_names = "image"  # type: ignore[assignment]  (a str is not a sequence of names)
    eval_splits = ["test_fog"]  # type: ignore[assignment]  (not a method)

    def build_student(self) -> Any:  # type: ignore[override]  (no init=)
        return None

    def evaluate(self, predict: Any) -> EvalResult:  # type: ignore[override]  (no split=)
        return EvalResult(0.0)

    def io_spec(self) -> IOSpec:
        raise RuntimeError("no data yet")


@pytest.mark.parametrize("member, words", [
    ("metric", "must be edgekd.tasks.MetricSpec"),
    ("parity_compare", "'allclose' or 'argmax'"),
    ("parity_min_agreement", "[0, 1]"),
    ("teacher_input_names", "sequence of input names"),
    ("eval_splits", "must be a method"),
    ("build_student", "init"),
    ("evaluate", "split"),
    ("io_spec()", "raised RuntimeError: no data yet"),
    ("config", "TaskConfigBase"),
])
def test_ill_typed_members_are_each_named(member: str, words: str) -> None:
    problems = check_task(IllTyped())
    hits = [p for p in problems if p.startswith(member) and words in p]
    assert hits, f"no problem for {member} with {words!r} in {problems}"


def test_ill_typed_reports_all_problems_together() -> None:
    assert len(check_task(IllTyped())) == 9
