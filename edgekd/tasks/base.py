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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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


@dataclass
class EvalResult:
    """The main metric plus any extras (per-class IoU, per-split scores, ...)."""

    metric: float
    extras: dict[str, Any] = field(default_factory=dict)


class Task(Protocol):
    config: TaskConfigBase
    metric: MetricSpec

    def io_spec(self) -> IOSpec: ...

    def dataset(self, split: str) -> Dataset[dict[str, torch.Tensor]]:
        """'train', 'val', 'test' at least; tasks may add more (e.g. 'test_fog')."""
        ...

    def build_teacher(self) -> nn.Module | TeacherFn:
        """An untrained teacher network, or an analytic callable (drone IBVS)."""
        ...

    def build_student(self) -> nn.Module: ...

    def task_loss(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The supervised loss against labels (used for the teacher, the baseline and KD's label term)."""
        ...

    def evaluate(self, predict: PredictFn, split: str = "test", batch_size: int = 64) -> EvalResult: ...

    def eval_splits(self) -> list[str]:
        """Splits reported in addition to 'test' (shifted domains, paraphrases...)."""
        ...


def calibration_items(task: Task, n: int) -> list[dict[str, np.ndarray]]:
    """The first ``n`` training items as model inputs, batch 1 each (INT8 calibration, PTQ and QAT alike)."""
    items: list[dict[str, np.ndarray]] = []
    for batch, _ in iterate_numpy(task.dataset("train"), task.io_spec().input_names, batch_size=1):
        items.append(batch)
        if len(items) >= n:
            break
    return items


__all__ = ["EvalResult", "MetricSpec", "PredictFn", "Task", "TeacherFn", "calibration_items", "iterate_numpy",
           "torch_predict"]
