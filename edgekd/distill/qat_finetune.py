"""Quantization-aware fine-tuning of a trained FP32 student, with the teacher still in the loss.

Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference" (CVPR 2018) start QAT from trained float weights; Krishnamoorthi (arXiv:1806.08342,
sec. 3.2) folds BatchNorm first and fine-tunes briefly at a small learning rate. Steps:

1. copy the student and fold each Conv + BatchNorm (:mod:`edgekd.distill.fold_bn`): the tensors
   fake-quantized in training are then the ones the integer runtime will hold;
2. :func:`edgekd.distill.qat.prepare_qat` at the section's weight bits and granularity;
3. calibrate: one eval-mode forward over the calibration items (concatenated, so the min/max
   observers start from the ranges of all of them, as post-training calibration would);
4. :func:`edgekd.distill.loop.fit` for ``finetune_epochs`` at ``lr * finetune_lr_scale`` without
   warm-up, with the same task loss, teacher and distillation terms as the FP32 run.

The FP32 student passed in is left untouched. Export the result with
:func:`edgekd.export.onnx.export_onnx` (QDQ; low-bit weights are baked into int8 there).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekd.config.recipe import QATConfig, TrainConfig
from edgekd.distill.loop import FitResult
from edgekd.errors import ConfigError


def calibrate_qat(model: nn.Module, items: Sequence[Mapping[str, np.ndarray]], input_names: Sequence[str]) -> None:
    """Set the observers' ranges of a fake-quantized ``model`` from ``items`` (batch-1 feeds), in one forward."""
    if not items:
        raise ConfigError("QAT fine-tuning got no calibration items",
                          hint="set quantize.calibration.samples >= 1 (the training split must not be empty)")
    batch = [torch.from_numpy(np.concatenate([np.asarray(it[n]) for it in items])) for n in input_names]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was = model.training
    model.eval()  # BatchNorms left unfolded keep their statistics; FakeQuantize observes in any mode
    with torch.no_grad():
        model(*(b.to(device) for b in batch))
    model.train(was)


def qat_finetune_config(train: TrainConfig, qat: QATConfig) -> TrainConfig:
    return train.model_copy(update={"epochs": qat.finetune_epochs, "warmup_steps": 0,
                                    "lr": train.lr * qat.finetune_lr_scale})


def prepare_finetune(student: nn.Module, qat: QATConfig, calib: Sequence[Mapping[str, np.ndarray]],
                     input_names: Sequence[str]) -> tuple[nn.Module, dict[str, int]]:
    """Steps 1-3 of the module docstring: a calibrated fake-quant copy of ``student`` and the fold counts."""
    from edgekd.distill.fold_bn import fold_batchnorm
    from edgekd.distill.qat import prepare_qat

    model = copy.deepcopy(student).eval()
    folded, left = fold_batchnorm(model)
    prepare_qat(model, per_channel=qat.per_channel, weight_bits=qat.weight_bits, activation=qat.activation)
    calibrate_qat(model, calib, input_names)
    return model, {"bn_folded": folded, "bn_left": left}


def qat_finetune(student: nn.Module, *, qat: QATConfig, train: TrainConfig,
                 calib: Sequence[Mapping[str, np.ndarray]], input_names: Sequence[str], **fit_kwargs: Any) -> FitResult:
    """QAT fine-tuning of ``student`` (module docstring); ``fit_kwargs`` go to :func:`edgekd.distill.loop.fit`
    (train_set, task_loss, teacher, losses, val_fn, out_dir, ...). Returns its FitResult, with the fold
    counts in ``extras``."""
    from edgekd.distill.loop import fit

    model, folds = prepare_finetune(student, qat, calib, input_names)
    res = fit(model.train(), input_names=input_names, cfg=qat_finetune_config(train, qat), qat=True, **fit_kwargs)
    res.extras.update(folds)
    return res
