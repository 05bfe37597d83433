"""The optional Task hooks the pipeline calls, each reached in exactly one place.

A task may declare these; when it does not, the default here applies. (Once every task derives from a
base class declaring them, these become direct calls.)
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any


def build_scratch_student(task: Any) -> Any:
    """The baseline student gets nothing from the teacher: tasks whose student copies teacher weights by
    default (DFT Gaze copies stage 1) take ``init='scratch'`` for this arm."""
    if "init" in inspect.signature(task.build_student).parameters:
        return task.build_student(init="scratch")
    return task.build_student()


def pretrain_teacher(task: Any, teacher: Any, progress: bool) -> Any:
    """Pre-training before the teacher's supervised training (e.g. gaze's MAE pre-training); None if none."""
    hook = getattr(task, "pretrain_teacher", None)
    return hook(teacher, progress=progress) if callable(hook) else None


def teacher_input_names(task: Any, spec_input_names: Sequence[str]) -> Sequence[str]:
    """A label-assisted teacher may read more inputs than the student gets."""
    return getattr(task, "teacher_input_names", spec_input_names)  # type: ignore[no-any-return]


def teacher_task_loss(task: Any) -> Any:
    """The teacher may train with its own loss (e.g. over two forward paths)."""
    return getattr(task, "teacher_task_loss", task.task_loss)


def parity_compare(task: Any) -> str:
    """How INT8 outputs are compared with torch: ``allclose`` or ``argmax`` (dense class scores)."""
    return str(getattr(task, "parity_compare", "allclose"))


def parity_min_agreement(task: Any) -> float:
    return float(getattr(task, "parity_min_agreement", 0.99))
