"""Generic tasks for the common shapes: you give models, datasets and the metric, edgekd the rest.

- :class:`ClassificationTask`: inputs -> class scores [batch, K]; cross-entropy; accuracy.
- :class:`RegressionTask`: inputs -> values [batch, *target shape]; L1; MAE.
- :class:`DenseTask`: an image -> a map [batch, K, H, W] per pixel (K classes; K = 1 for a binary
  map); cross-entropy and mIoU, or BCE + Dice and IoU for one channel.

Models are given as factories (functions returning a fresh ``nn.Module``): the pipeline builds the
student more than once (the student-alone arm, the distilled one, re-building a run for export).
Datasets are a dict ``{split: Dataset}`` or a function of the split name; items are dicts of tensors
holding the inputs and the target (:class:`~edgekd.tasks.blocks.data.ArrayDataset` makes them).
Metric and loss are a ready name (:mod:`~edgekd.tasks.blocks.metrics`, :mod:`~edgekd.tasks.blocks.losses`)
or your own. Each class derives from :class:`~edgekd.tasks.base.TaskBase` directly; what they share
lives in the functions of this module, not in a middle class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from edgekd.config.recipe import TaskConfigBase
from edgekd.iospec import Dim, IOSpec, TensorSpec
from edgekd.tasks.base import EvalResult, PredictFn, TaskBase, check_student_init, iterate_numpy
from edgekd.tasks.blocks.data import DatasetSource, Item, Splits, input_specs
from edgekd.tasks.blocks.losses import LossFn, ready_loss
from edgekd.tasks.blocks.metrics import Metric, ready_metric

ModelFactory = Callable[[], nn.Module]

def build_seeded(factory: ModelFactory, seed: int, what: str) -> nn.Module:
    """A fresh model from ``factory`` with torch seeded first, so a build is reproducible."""
    torch.manual_seed(seed)
    model = factory()
    if not isinstance(model, nn.Module):
        from edgekd.errors import ConfigError

        raise ConfigError(f"the {what} factory returned a {type(model).__name__}, not a torch.nn.Module",
                          hint=f"pass a function that builds the {what}, e.g. {what}=lambda: MyNet()")
    return model

def collect(splits: Splits, io: IOSpec, target: str, predict: PredictFn, split: str,
            batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(first model output, target values) over a split, stacked on axis 0."""
    outs, targets = [], []
    for feeds, batch in iterate_numpy(splits.get(split), io.input_names, batch_size):
        outs.append(np.asarray(predict(feeds)[0]))
        targets.append(batch[target].numpy())
    if not outs:
        from edgekd.errors import ConfigError

        raise ConfigError(f"split {split!r} is empty", hint="give every evaluated split at least one item")
    return np.concatenate(outs), np.concatenate(targets)

class _Parts:
    """What the three generic tasks hold: models, splits, names, metric and loss."""

    def __init__(self, teacher: ModelFactory, student: ModelFactory, datasets: DatasetSource, seed: int,
                 inputs: Sequence[str], target: str, output: str, metric: Metric, loss: LossFn,
                 eval_splits: Sequence[str]) -> None:
        self.teacher, self.student, self.splits, self.seed = teacher, student, Splits(datasets), seed
        self.inputs, self.target, self.output = tuple(inputs), target, output
        self.metric, self.loss, self.eval_splits = metric, loss, list(eval_splits)

    def io_spec(self, output_shape: Callable[[Item], tuple[Dim, ...]]) -> IOSpec:
        item = self.splits.first_item()
        if self.target not in item:
            from edgekd.errors import ConfigError

            raise ConfigError(f"target {self.target!r} is not a key of a dataset item (keys: {sorted(item)})",
                              hint="set target= to the item key holding the label")
        return IOSpec(input_specs(item, self.inputs), (TensorSpec(self.output, output_shape(item)),))

    def build_student(self, init: str) -> nn.Module:
        check_student_init(init)  # the generic student copies nothing from the teacher
        return build_seeded(self.student, self.seed + 1, "student")

    def task_loss(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.loss(outputs[0], batch[self.target])

class _GenericTask(TaskBase):
    """What the three generic tasks share: everything but their constructor, io spec and score alignment.
    (A second level under the Protocol, kept because the three would otherwise repeat six methods.)"""

    parts: _Parts
    seed: int

    def dataset(self, split: str) -> Dataset[Item]:
        return self.parts.splits.get(split)

    def build_teacher(self) -> nn.Module:
        return build_seeded(self.parts.teacher, self.seed, "teacher")

    def build_student(self, *, init: str = "teacher") -> nn.Module:
        return self.parts.build_student(init)

    def task_loss(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.parts.task_loss(outputs, batch)

    def evaluate(self, predict: PredictFn, split: str = "test", batch_size: int = 64) -> EvalResult:
        pred, target = collect(self.parts.splits, self.io_spec(), self.parts.target, predict, split, batch_size)
        pred = self._align(pred, target)
        return EvalResult(float(self.parts.metric.fn(pred, target)), {"n": int(len(target)), "split": split})

    def eval_splits(self) -> list[str]:
        return list(self.parts.eval_splits)

    def _align(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        return pred


class ClassificationTask(_GenericTask):
    """Inputs -> class scores [batch, num_classes]; labels are int64 class ids [batch]."""

    def __init__(self, *, teacher: ModelFactory, student: ModelFactory, datasets: DatasetSource,
                 num_classes: int, seed: int = 0, inputs: Sequence[str] = ("image",), target: str = "label",
                 output: str = "logits", metric: str | Metric = "accuracy", loss: str | LossFn = "cross_entropy",
                 eval_splits: Sequence[str] = (), config: TaskConfigBase | None = None) -> None:
        self.num_classes = num_classes
        m = ready_metric(metric, num_classes) if isinstance(metric, str) else metric
        self.parts = _Parts(teacher, student, datasets, seed, inputs, target, output, m,
                            ready_loss(loss) if isinstance(loss, str) else loss, eval_splits)
        self.metric, self.seed, self.config = m.spec, seed, config

    def io_spec(self) -> IOSpec:
        return self.parts.io_spec(lambda item: ("batch", self.num_classes))


class RegressionTask(_GenericTask):
    """Inputs -> values shaped like the target [batch, *target shape] (a scalar target: [batch, 1])."""

    def __init__(self, *, teacher: ModelFactory, student: ModelFactory, datasets: DatasetSource, seed: int = 0,
                 inputs: Sequence[str] = ("image",), target: str = "target", output: str = "prediction",
                 metric: str | Metric = "mae", loss: str | LossFn = "l1", eval_splits: Sequence[str] = (),
                 config: TaskConfigBase | None = None) -> None:
        m = ready_metric(metric) if isinstance(metric, str) else metric
        self.parts = _Parts(teacher, student, datasets, seed, inputs, target, output, m,
                            ready_loss(loss) if isinstance(loss, str) else loss, eval_splits)
        self.metric, self.seed, self.config = m.spec, seed, config

    def io_spec(self) -> IOSpec:
        return self.parts.io_spec(lambda item: ("batch", *(tuple(item[self.parts.target].shape) or (1,))))

    def _align(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        return pred.reshape(target.shape) if pred.size == target.size else pred


class DenseTask(_GenericTask):
    """An image [batch, C, H, W] -> a map [batch, num_classes, H, W]. ``num_classes > 1``: labels int64
    [batch, H, W] (255 ignored), cross-entropy, mIoU, INT8 parity judged on the argmax map. ``num_classes
    == 1`` (a binary map, e.g. text or a mask): targets in {0, 1} [batch, H, W], BCE + Dice, IoU."""

    def __init__(self, *, teacher: ModelFactory, student: ModelFactory, datasets: DatasetSource,
                 num_classes: int, seed: int = 0, inputs: Sequence[str] = ("image",), target: str = "label",
                 output: str = "logits", metric: str | Metric | None = None, loss: str | LossFn | None = None,
                 eval_splits: Sequence[str] = (), config: TaskConfigBase | None = None) -> None:
        binary = num_classes == 1
        self.num_classes = num_classes
        metric = metric or ("iou" if binary else "miou")
        m = ready_metric(metric, num_classes) if isinstance(metric, str) else metric
        loss = loss or ("bce_dice" if binary else "cross_entropy")
        self.parts = _Parts(teacher, student, datasets, seed, inputs, target, output, m,
                            ready_loss(loss) if isinstance(loss, str) else loss, eval_splits)
        self.metric, self.seed, self.config = m.spec, seed, config
        if not binary:  # class scores per pixel: INT8 is judged on the label map, as for segmentation
            self.parity_compare, self.parity_min_agreement = "argmax", 0.97

    def io_spec(self) -> IOSpec:
        return self.parts.io_spec(lambda item: ("batch", self.num_classes,
                                                *tuple(item[self.parts.inputs[0]].shape[-2:])))


__all__ = ["ClassificationTask", "DenseTask", "ModelFactory", "RegressionTask", "build_seeded", "collect"]
