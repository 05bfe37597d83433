"""The segmentation Task: mini-city (or a real dataset), DeepLabV3-style teacher, MobileNetV2-style
student, dataset-level mIoU on the test split and on shifted domains.

Splits: ``train`` (random horizontal flips), ``val`` (checkpoint selection), ``test`` and one
``test_<shift>`` per configured shift (the test images under fog / night / rain; same labels).
For real datasets, ``train`` is the official train split (capped at ``train_size``), ``val`` the
first ``val_size`` images of the official val split and ``test`` the next ``test_size`` ones.

Items: ``image`` [3, H, W] float32 in [0, 1]; ``label`` [H, W] int64 (class id, 255 = ignore);
``valid`` [H, W] float32 (label != 255, the mask for pixel-wise KD); with ``lad.enabled`` the
train split adds ``hint`` [1, H, W] float32: the label with ``label_noise`` of its pixels
replaced by random classes, encoded as (class + 1) / K (0 = no hint), for the label-assisted
teacher (LAD).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from edgekd.errors import ConfigError, UnknownNameError
from edgekd.iospec import IOSpec, TensorSpec
from edgekd.tasks.base import (
    EvalResult,
    MetricSpec,
    ParityCompare,
    PredictFn,
    TaskBase,
    check_student_init,
    iterate_numpy,
)
from edgekd.tasks.memo import Memo
from edgekd.tasks.segmentation import loaders, metric, models, synth
from edgekd.tasks.segmentation.config import SegmentationTaskConfig

METRIC = MetricSpec("miou", lower_is_better=False, unit="fraction")
BASE_SPLITS = ("train", "val", "test")

_SPLITS: Memo[synth.SegArrays] = Memo(max_items=24)


class SegDataset(Dataset):  # type: ignore[type-arg]
    """An in-memory split (uint8); flips and LAD hints are drawn per access."""

    def __init__(self, arrays: synth.SegArrays, num_classes: int, *, hflip: bool = False,
                 hint_noise: float | None = None, seed: int = 0) -> None:
        self.arrays = arrays
        self.num_classes = num_classes
        self._images = torch.from_numpy(arrays.images)
        self._labels = torch.from_numpy(arrays.labels)
        self.hflip = hflip
        self.hint_noise = hint_noise  # None = no hint key
        self.seed = seed

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        img = self._images[i].float() / 255.0
        lab = self._labels[i].long()
        # torch's global RNG: fit() seeds it, so flips are reproducible per run
        if self.hflip and bool(torch.rand(()) < 0.5):
            img, lab = img.flip(-1), lab.flip(-1)
        item = {"image": img, "label": lab, "valid": (lab != metric.IGNORE).float()}
        if self.hint_noise is not None:
            item["hint"] = make_hint(lab, self.num_classes, self.hint_noise)
        return item


def make_hint(label: torch.Tensor, num_classes: int, noise: float) -> torch.Tensor:
    """LAD's label channel: (class + 1) / K, with a ``noise`` share of pixels set to a random class
    and ignored pixels set to 0, so the teacher must still read the image."""
    lab = label.clone()
    flip = torch.rand(lab.shape) < noise
    lab[flip] = torch.randint(0, num_classes, (int(flip.sum()),))
    hint = (lab.float() + 1.0) / num_classes
    hint[label == metric.IGNORE] = 0.0
    return hint[None]


class SegmentationTask(TaskBase):
    """The segmentation domain behind :class:`edgekd.tasks.base.Task`."""

    metric = METRIC

    def __init__(self, config: SegmentationTaskConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = seed

    # ---- data
    @property
    def num_classes(self) -> int:
        return len(synth.CLASSES) if self.config.source == "synth" else loaders.NUM_CLASSES[self.config.source]

    @property
    def class_names(self) -> tuple[str, ...]:
        src = self.config.source
        if src == "synth":
            return synth.CLASSES
        if src == "cityscapes":
            return loaders.CITYSCAPES_CLASSES
        if src == "voc":
            return loaders.VOC_CLASSES
        return tuple(f"ade_{i + 1}" for i in range(150))

    def io_spec(self) -> IOSpec:
        """image [batch, 3, H, W] -> logits [batch, K, H, W]; H and W named (dynamic) with ``dynamic_size``."""
        c = self.config
        h: int | str = "height" if c.dynamic_size else c.height
        w: int | str = "width" if c.dynamic_size else c.width
        return IOSpec(inputs=(TensorSpec("image", ("batch", 3, h, w), "float32", 0.0, 1.0),),
                      outputs=(TensorSpec("logits", ("batch", self.num_classes, h, w), "float32"),),
                      example_dims={"batch": 2, "height": c.height, "width": c.width})

    def splits(self) -> list[str]:
        return [*BASE_SPLITS, *[f"test_{s}" for s in self.config.shifts]]

    def arrays(self, split: str) -> synth.SegArrays:
        """uint8 arrays of a split (memoised in memory per config, split and seed)."""
        c = self.config
        if split not in self.splits():
            raise UnknownNameError("segmentation split", split, self.splits(),
                                   hint="use train, val, test or test_<shift> for a shift in task.shifts")
        key = (c.model_dump_json(include={"source", "root", "height", "width", "train_size", "val_size",
                                          "test_size", "shift_severity"}), split, self.seed)
        return _SPLITS.get(key, lambda: self._generate(split))

    def _generate(self, split: str) -> synth.SegArrays:
        c = self.config
        if split.startswith("test_"):
            test = self.arrays("test")
            return synth.SegArrays(synth.apply_shift(test.images, split.removeprefix("test_"), self.seed,
                                                     c.shift_severity), test.labels)
        if c.source == "synth":
            n = {"train": c.train_size, "val": c.val_size, "test": c.test_size}[split]
            return synth.generate(c.height, c.width, n, self.seed, synth.STREAM[split])
        if c.root is None:  # the config validator rejects this; kept for direct construction
            raise ConfigError(f"task.source={c.source!r} needs task.root", hint="set task.root")
        if split == "train":
            return loaders.load(c.source, c.root, "train", c.height, c.width, limit=c.train_size)
        skip = 0 if split == "val" else c.val_size
        return loaders.load(c.source, c.root, "val", c.height, c.width,
                            limit=c.val_size if split == "val" else c.test_size, skip=skip)

    def dataset(self, split: str) -> SegDataset:
        c = self.config
        train = split == "train"
        return SegDataset(self.arrays(split), self.num_classes, hflip=train and c.hflip,
                          hint_noise=c.lad.label_noise if train and c.lad.enabled else None, seed=self.seed)

    # ---- models
    def build_teacher(self) -> nn.Module:
        """An untrained DeepLabV3-style teacher (with LAD: wrapped to train on both hint paths)."""
        torch.manual_seed(self.seed)
        t = models.DeepLabTeacher(self.num_classes, self.config.model)
        if self.config.lad.enabled:
            from edgekd.tasks.segmentation.lad import LADTeacher

            return LADTeacher(t, dual_path=self.config.lad.dual_path)
        return t

    def build_student(self, *, init: str = "teacher") -> models.MobileNetV2Student:
        """A fresh student; it copies nothing from the teacher, so ``init`` changes nothing."""
        check_student_init(init)
        torch.manual_seed(self.seed + 1)
        return models.MobileNetV2Student(self.num_classes, self.config.model)

    # Inputs and loss the pipeline uses to train the teacher (LAD: image + hint, both paths).
    @property
    def teacher_input_names(self) -> tuple[str, ...]:
        return ("image", "hint") if self.config.lad.enabled else tuple(self.io_spec().input_names)

    def teacher_task_loss(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Mean of the task loss over every output; with LAD's two paths (hint, zero channel) plus the
        dual-path consistency term  lambda * mean_pixels ||softmax(z_hint) - softmax(z_zero)||^2."""
        loss = torch.stack([self.task_loss((o,), batch) for o in outputs]).mean()
        lam = self.config.lad.consistency
        if len(outputs) == 2 and lam > 0:
            p, q = (torch.softmax(o.float(), 1) for o in outputs)
            loss = loss + lam * (p - q).pow(2).sum(1).mean()
        return loss

    # ---- loss and metric
    def task_loss(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Pixel-wise cross-entropy, ignoring label 255."""
        logits = outputs[0].float()
        target = batch["label"].to(logits.device).long()
        return F.cross_entropy(logits, target, ignore_index=metric.IGNORE,
                               label_smoothing=self.config.label_smoothing)

    def confusion(self, predict: PredictFn, split: str = "test", batch_size: int = 32) -> np.ndarray:
        k = self.num_classes
        cm = np.zeros((k, k), np.int64)
        for feeds, batch in iterate_numpy(self.dataset(split), self.io_spec().input_names, batch_size):
            pred = metric.to_label_map(predict(feeds)[0])
            cm += metric.confusion_matrix(pred, batch["label"].numpy(), k)
        return cm

    def evaluate(self, predict: PredictFn, split: str = "test", batch_size: int = 32) -> EvalResult:
        """Dataset-level mIoU of the argmax map (ignore 255), per-class IoU and pixel accuracy."""
        cm = self.confusion(predict, split, batch_size)
        iou = metric.iou_per_class(cm)
        extras: dict[str, Any] = {
            "per_class_iou": {n: (None if np.isnan(v) else float(v)) for n, v in zip(self.class_names, iou,
                                                                                     strict=True)},
            "pixel_accuracy": metric.pixel_accuracy(cm), "pixels": int(cm.sum()), "split": split,
        }
        return EvalResult(metric=metric.mean_iou(cm), extras=extras)

    def eval_splits(self) -> list[str]:
        return [f"test_{s}" for s in self.config.shifts]

    # Parity of dense outputs is judged on the argmax map too (see Task.parity_compare).
    parity_compare: ParityCompare = "argmax"
    parity_min_agreement: float = 0.97
