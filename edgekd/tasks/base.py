"""What a recipe domain (gaze, segmentation, drone, GUI agent) provides to the pipeline.

A task owns its offline data generator, its real-dataset loaders, its teacher and
student models and its metric. The pipeline and the distillation engine see it only
through this protocol, so adding a domain touches no shared code.

Conventions:
- A dataset item is a ``dict[str, Tensor]`` holding every model input (named as in
  ``io_spec().inputs``) and the targets; torch's default collate stacks them.
- Models are called positionally with the inputs in ``io_spec()`` order and return a
  Tensor or a tuple of Tensors in ``io_spec().outputs`` order.
- Metrics are computed from a numpy ``predict`` function, so the very same code scores
  PyTorch, ONNX Runtime, OpenVINO and TensorRT artifacts.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from edgekd.config.recipe import TaskConfigBase
from edgekd.iospec import IOSpec
from edgekd.runtime.predict import PredictFn, iterate_numpy, torch_predict

# the teacher of an analytic task: batch inputs (torch, positional) -> outputs
TeacherFn = Callable[..., Any]


@dataclass(frozen=True)
class MetricSpec:
    name: str  # e.g. "angular_error_deg", "miou", "click_accuracy", "success_rate"
    lower_is_better: bool
    unit: str = ""
    # figures of the test split's extras that report.md prints beside the metric (e.g. the drone's final error
    # beside its success rate, which alone can saturate)
    beside: tuple[str, ...] = ()


@dataclass
class EvalResult:
    """The main metric plus any extras (per-class IoU, per-split scores, ...)."""

    metric: float
    extras: dict[str, Any] = field(default_factory=dict)


# What a task's outputs are compared by when an INT8 artifact is checked against the FP32 model.
ParityCompare = Literal["allclose", "argmax"]
STUDENT_INITS = ("teacher", "scratch")


@runtime_checkable
class Task(Protocol):
    """Every member the pipeline, the distillation CLI and the export/profile commands use.

    The first group is required. The second group (from ``pretrain_teacher`` on) is optional in the
    sense that :class:`TaskBase` gives every one a default; an object that does not derive from it
    must define them too (``edgekd.tasks.check_task`` lists what is missing or ill-typed).
    """

    metric: MetricSpec

    @property
    def config(self) -> TaskConfigBase:
        """The recipe's task section (read-only here, so a task may narrow it to its own config class)."""
        ...

    def io_spec(self) -> IOSpec:
        """Input and output names, shapes and dtypes of the student (and of every exported artifact)."""
        ...

    def dataset(self, split: str) -> Dataset[dict[str, torch.Tensor]]:
        """'train', 'val', 'test' at least; tasks may add more (e.g. 'test_fog')."""
        ...

    def build_teacher(self) -> nn.Module | TeacherFn:
        """An untrained teacher network, or an analytic callable (drone IBVS)."""
        ...

    def build_student(self, *, init: str = "teacher") -> nn.Module:
        """A fresh student. ``init='teacher'``: it may copy weights from the teacher this task built last
        (DFT Gaze copies stage 1); ``init='scratch'``: nothing from the teacher (the student-alone arm)."""
        ...

    def task_loss(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The supervised loss against labels (used for the teacher, the baseline and KD's label term)."""
        ...

    def evaluate(self, predict: PredictFn, split: str = "test", batch_size: int = 64) -> EvalResult:
        """The task's metric of a numpy predict function on a split (``metric`` says its direction)."""
        ...

    def eval_splits(self) -> list[str]:
        """Splits reported in addition to 'test' (shifted domains, paraphrases...)."""
        ...

    # ---- optional hooks (defaults in TaskBase)
    def pretrain_teacher(self, teacher: nn.Module, *, progress: bool = False) -> dict[str, Any]:
        """Called once before the teacher's supervised training (not on a cache hit); returns what was
        done, for the report ({} = nothing)."""
        ...

    @property
    def teacher_input_names(self) -> Sequence[str]:
        """The dataset keys the teacher is trained on (a label-assisted teacher reads a label channel)."""
        ...

    def teacher_task_loss(self, outputs: Sequence[torch.Tensor],
                          batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The loss the teacher is trained with (e.g. over two forward paths); defaults to task_loss."""
        ...

    # How INT8 outputs are compared with the FP32 model's: 'allclose' (measured differences, judged by
    # the metric) or 'argmax' (dense class scores: the share of equal argmax labels).
    parity_compare: ParityCompare
    parity_min_agreement: float  # with 'argmax': the least share of equal labels that passes


class TaskBase(abc.ABC):
    """Defaults of the optional :class:`Task` hooks; the shipped tasks and the generic bases derive
    from it, so a task defines only what it needs (one level of subclassing, no other behaviour).
    The required members are abstract: a subclass that misses one cannot be instantiated, and the
    error names every missing one."""

    metric: MetricSpec
    parity_compare: ParityCompare = "allclose"
    parity_min_agreement: float = 0.99

    @abc.abstractmethod
    def io_spec(self) -> IOSpec: ...

    @abc.abstractmethod
    def dataset(self, split: str) -> Dataset[dict[str, torch.Tensor]]: ...

    @abc.abstractmethod
    def build_teacher(self) -> nn.Module | TeacherFn: ...

    @abc.abstractmethod
    def build_student(self, *, init: str = "teacher") -> nn.Module: ...

    @abc.abstractmethod
    def task_loss(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]) -> torch.Tensor: ...

    @abc.abstractmethod
    def evaluate(self, predict: PredictFn, split: str = "test", batch_size: int = 64) -> EvalResult: ...

    def eval_splits(self) -> list[str]:
        return []

    def pretrain_teacher(self, teacher: nn.Module, *, progress: bool = False) -> dict[str, Any]:
        return {}

    @property
    def teacher_input_names(self) -> Sequence[str]:
        return tuple(self.io_spec().input_names)

    def teacher_task_loss(self, outputs: Sequence[torch.Tensor],
                          batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.task_loss(outputs, batch)


def check_student_init(init: str) -> None:
    """Reject an unknown ``build_student(init=...)`` value (a typo must not silently mean 'teacher')."""
    if init not in STUDENT_INITS:
        from edgekd.errors import ConfigError

        raise ConfigError(f"build_student(init={init!r}): allowed are {', '.join(map(repr, STUDENT_INITS))}")


def calibration_items(task: Task, n: int) -> list[dict[str, np.ndarray]]:
    """The first ``n`` training items as model inputs, batch 1 each (INT8 calibration, PTQ and QAT alike)."""
    items: list[dict[str, np.ndarray]] = []
    for batch, _ in iterate_numpy(task.dataset("train"), task.io_spec().input_names, batch_size=1):
        items.append(batch)
        if len(items) >= n:
            break
    return items


__all__ = ["STUDENT_INITS", "EvalResult", "MetricSpec", "ParityCompare", "PredictFn", "Task", "TaskBase", "TeacherFn",
           "calibration_items", "check_student_init", "iterate_numpy", "torch_predict"]
