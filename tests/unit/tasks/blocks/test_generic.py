"""The generic tasks (classification, regression, dense) pass the task conformance tests and score
predictions with their ready metrics; a custom task loaded from a recipe passes them too."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from support import task_conformance as C
from torch import nn

from edgekd.errors import ConfigError, UnknownNameError
from edgekd.tasks import Task, build_task
from edgekd.tasks.blocks import ArrayDataset, ClassificationTask, DenseTask, RegressionTask
from edgekd.tasks.custom import CustomTaskConfig

CONFIG = CustomTaskConfig(factory="tests.py:build")


def _images(n: int, seed: int, channels: int = 1, size: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).random((n, channels, size, size), dtype=np.float32)


def regression_task() -> RegressionTask:
    def split(n: int, seed: int) -> ArrayDataset:
        x = _images(n, seed)
        return ArrayDataset(image=x, target=np.stack([x.mean((1, 2, 3)), x.std((1, 2, 3))], 1).astype(np.float32))

    def net(width: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(width, 2))

    return RegressionTask(teacher=lambda: net(8), student=lambda: net(4), config=CONFIG,
                          datasets={"train": split(8, 0), "val": split(4, 1), "test": split(4, 2)})


def dense_task(num_classes: int) -> DenseTask:
    def split(n: int, seed: int) -> ArrayDataset:
        x = _images(n, seed, channels=3)
        label = (x[:, 0] > 0.5).astype(np.int64) if num_classes > 1 else (x[:, 0] > 0.5).astype(np.float32)
        return ArrayDataset(image=x, label=label)

    def net(width: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, num_classes, 1))

    return DenseTask(teacher=lambda: net(8), student=lambda: net(4), num_classes=num_classes, config=CONFIG,
                     datasets=lambda s: split(6, {"train": 0, "val": 1, "test": 2}[s]))


class TestClassificationConformance(C.TaskConformance):  # type: ignore[misc, name-defined]
    def make_task(self) -> Task:
        # the example `edgekd init` writes, through the custom-task loader
        cfg = CustomTaskConfig(factory="edgekd.tasks.custom.example_task:build",
                               args={"train_size": 16, "val_size": 8, "test_size": 8, "teacher_width": 4,
                                     "student_width": 2})
        return build_task(cfg, 0)


class TestRegressionConformance(C.TaskConformance):  # type: ignore[misc, name-defined]
    def make_task(self) -> Task:
        return regression_task()


class TestDenseConformance(C.TaskConformance):  # type: ignore[misc, name-defined]
    def make_task(self) -> Task:
        return dense_task(3)


class TestBinaryDenseConformance(C.TaskConformance):  # type: ignore[misc, name-defined]
    def make_task(self) -> Task:
        return dense_task(1)


def _oracle(task: Any, split: str, key: str, transform: Any = lambda y: y) -> Any:
    """A predict function that returns the split's targets, batch by batch, in order."""
    ds = task.dataset(split)
    targets = iter([transform(ds[i][key].numpy()[None]) for i in range(len(ds))])

    def predict(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        n = len(next(iter(feeds.values())))
        return [np.concatenate([next(targets) for _ in range(n)])]

    return predict


def test_perfect_predictions_score_best() -> None:
    reg = regression_task()
    assert reg.evaluate(_oracle(reg, "test", "target"), "test", batch_size=3).metric == pytest.approx(0.0)
    dense = dense_task(3)
    one_hot = dense.evaluate(_oracle(dense, "test", "label", lambda y: np.eye(3)[y].transpose(0, 3, 1, 2)),
                             "test", batch_size=4)
    assert one_hot.metric == pytest.approx(1.0)
    binary = dense_task(1)
    logits = binary.evaluate(_oracle(binary, "test", "label", lambda y: (y[:, None] * 20 - 10)), "test")
    assert logits.metric == pytest.approx(1.0)
    assert binary.metric.name == "iou" and binary.parity_compare == "allclose"
    assert dense.metric.name == "miou" and dense.parity_compare == "argmax"


def test_student_factories_give_fresh_modules() -> None:
    task = regression_task()
    a, b = task.build_student(), task.build_student()
    assert a is not b
    with torch.no_grad():
        next(a.parameters()).add_(1.0)
    assert not torch.equal(next(a.parameters()), next(b.parameters()))


def test_helpful_errors() -> None:
    bad = ClassificationTask(teacher=lambda: nn.Linear(2, 2), student=lambda: "not a module",  # type: ignore[arg-type, return-value]
                             datasets={"train": ArrayDataset(x=np.zeros((2, 2), np.float32), label=np.zeros(2))},
                             num_classes=2)
    with pytest.raises(ConfigError, match="student factory returned a str"):
        bad.build_student()
    with pytest.raises(ConfigError, match="input 'image' is not a key"):
        bad.io_spec()
    with pytest.raises(UnknownNameError, match="unknown split 'val'"):
        bad.dataset("val")
    with pytest.raises(ValueError, match="differ in length"):
        ArrayDataset(x=np.zeros(2), y=np.zeros(3))
