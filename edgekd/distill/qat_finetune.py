"""Quantization-aware fine-tuning of a trained FP32 student, with the teacher still in the loss.

Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference" (CVPR 2018) start QAT from trained float weights; Krishnamoorthi (arXiv:1806.08342,
sec. 3.2) folds BatchNorm first and fine-tunes briefly at a small learning rate. Steps:

1. copy the student and fold each Conv + BatchNorm (:mod:`edgekd.distill.fold_bn`): the tensors
   fake-quantized in training are then the ones the integer runtime will hold;
2. :func:`edgekd.quantize.fake_quant.prepare_qat` at the section's weight bits and granularity;
3. calibrate: eval-mode forwards of the float model over the calibration items, the observers set to
   the min/max over all of them, as post-training min/max calibration does;
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


def calibrate_qat(model: nn.Module, items: Sequence[Mapping[str, np.ndarray]], input_names: Sequence[str], *,
                  chunk: int = 64) -> None:
    """Set the observers' ranges of a fake-quantized ``model`` to the min/max over all ``items`` (batch-1
    feeds), as post-training min/max calibration would, forwarding ``chunk`` items at a time (memory)."""
    from torch.ao.quantization import FakeQuantize

    if not items:
        raise ConfigError("QAT fine-tuning got no calibration items",
                          hint="set quantize.calibration.samples >= 1 (the training split must not be empty)")
    if chunk < 1:
        raise ConfigError(f"chunk={chunk}: must be >= 1", hint="e.g. chunk=64")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    fqs = [m for m in model.modules() if isinstance(m, FakeQuantize) and bool(m.observer_enabled[0])]
    # observe the float activations, as post-training calibration does (and so chunking changes nothing)
    fake_on = {fq: bool(fq.fake_quant_enabled[0]) for fq in fqs}
    for fq in fqs:
        fq.disable_fake_quant()
    # each chunk's own range (averaging constant 1), combined here into the min/max over all chunks
    saved = {fq: fq.activation_post_process.averaging_constant for fq in fqs
             if hasattr(fq.activation_post_process, "averaging_constant")}
    for fq in saved:
        fq.activation_post_process.averaging_constant = 1.0
    lo: dict[FakeQuantize, torch.Tensor] = {}
    hi: dict[FakeQuantize, torch.Tensor] = {}
    was = model.training
    model.eval()  # BatchNorms left unfolded keep their statistics; FakeQuantize observes in any mode
    try:
        with torch.no_grad():
            for start in range(0, len(items), chunk):
                part = items[start:start + chunk]
                model(*(torch.from_numpy(np.concatenate([np.asarray(it[n]) for it in part])).to(device)
                        for n in input_names))
                for fq in fqs:
                    obs = fq.activation_post_process
                    lo[fq] = torch.minimum(lo[fq], obs.min_val) if fq in lo else obs.min_val.clone()
                    hi[fq] = torch.maximum(hi[fq], obs.max_val) if fq in hi else obs.max_val.clone()
            for fq in fqs:
                obs = fq.activation_post_process
                obs.min_val.copy_(lo[fq])
                obs.max_val.copy_(hi[fq])
                scale, zero_point = fq.calculate_qparams()
                fq.scale.resize_(scale.shape).copy_(scale)
                fq.zero_point.resize_(zero_point.shape).copy_(zero_point)
    finally:
        for fq, c in saved.items():
            fq.activation_post_process.averaging_constant = c
        for fq, on in fake_on.items():
            fq.enable_fake_quant(on)
        model.train(was)


def qat_finetune_config(train: TrainConfig, qat: QATConfig) -> TrainConfig:
    return train.model_copy(update={"epochs": qat.finetune_epochs, "warmup_steps": 0,
                                    "lr": train.lr * qat.finetune_lr_scale})


def prepare_finetune(student: nn.Module, qat: QATConfig, calib: Sequence[Mapping[str, np.ndarray]],
                     input_names: Sequence[str]) -> tuple[nn.Module, dict[str, int]]:
    """Steps 1-3 of the module docstring: a calibrated fake-quant copy of ``student`` and the fold counts."""
    from edgekd.distill.fold_bn import fold_batchnorm
    from edgekd.quantize.fake_quant import prepare_qat

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
