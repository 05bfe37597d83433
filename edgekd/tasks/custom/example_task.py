"""A task of your own for edgekd, written by `edgekd init`: edit it from here.

The recipe next to this file points at it (``task: {kind: custom, factory: "my_task.py:build"}``).
edgekd calls ``build(args, seed)``, where ``args`` is the recipe's ``task.args``, and expects an object
implementing ``edgekd.tasks.Task``. The generic ``ClassificationTask`` does; you give it:

- two model factories (functions returning a fresh torch module): the teacher, and the smaller student
  that edgekd distils, exports to ONNX, quantizes to INT8 and profiles;
- datasets per split ('train', 'val', 'test'), whose items are dicts of tensors: the model inputs
  (here 'image') and the target (here 'label');
- the number of classes and a metric ('accuracy' by default; see edgekd.tasks.blocks.metrics).

For other shapes use ``RegressionTask`` or ``DenseTask`` (edgekd.tasks.blocks); for full control write
a class deriving from ``edgekd.tasks.TaskBase``. The toy data below are generated in code, so this runs
anywhere: replace ``toy_split`` with a loader of your data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from edgekd.tasks.blocks import ArrayDataset, ClassificationTask

CLASSES = 4  # where the bright square sits: top-left, top-right, bottom-left, bottom-right


def toy_split(n: int, size: int, seed: int) -> ArrayDataset:
    """``n`` noisy grayscale images [1, size, size] in [0, 1] with a bright square in one quadrant."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    images = rng.normal(0.3, 0.15, (n, 1, size, size))
    half, side = size // 2, max(2, size // 4)
    for i, k in enumerate(labels):
        y = rng.integers(0, half - side + 1) + half * (k // 2)
        x = rng.integers(0, half - side + 1) + half * (k % 2)
        images[i, 0, y:y + side, x:x + side] += 0.5
    return ArrayDataset(image=images.clip(0, 1).astype(np.float32), label=labels.astype(np.int64))


def convnet(width: int) -> nn.Module:
    """A small CNN: two conv blocks, global pooling, a linear classifier. Any torch module works, as long
    as it takes the inputs in order (here one image batch) and returns the class scores."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, CLASSES),
    )


def build(args: dict[str, Any], seed: int) -> ClassificationTask:
    """Called by edgekd with the recipe's task.args and seed."""
    size = int(args.get("image_size", 16))
    sizes = {"train": int(args.get("train_size", 512)), "val": int(args.get("val_size", 128)),
             "test": int(args.get("test_size", 256))}
    # a different seed stream per split, so no image is shared between them
    datasets = {split: toy_split(n, size, seed * 1000 + i) for i, (split, n) in enumerate(sizes.items())}
    return ClassificationTask(
        teacher=lambda: convnet(int(args.get("teacher_width", 32))),
        student=lambda: convnet(int(args.get("student_width", 8))),
        datasets=datasets,
        num_classes=CLASSES,
        metric="accuracy",
        seed=seed,
    )
