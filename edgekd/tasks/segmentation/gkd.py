"""GKD-style two-stage training of the segmentation student.

After "Generalizable Knowledge Distillation from Vision Foundation Models for Semantic
Segmentation" (GKD): distilling task-agnostic features first and learning the task afterwards,
with the encoder frozen, transfers the teacher's representation intact and generalises better
out of domain than one-stage KD. Here:

1. feature distillation without labels: the student's ASPP feature, through a 1x1 regressor r,
   matches the teacher's: L_1 = mean (r(F_S) - F_T)^2 (FitNets; Romero et al. 2015), no task loss;
2. task learning on a frozen encoder: ``features`` (the MobileNetV2 backbone) is frozen and in
   eval mode (BatchNorm statistics too), the head (``aspp`` + ``classifier``) is trained by
   pixel-wise cross-entropy: L_2 = CE(f_head(f_enc(x)), y).

The epochs of the training config are split between the stages (stage 1 gets
``stage1_fraction`` of them, at least one each).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from edgekd.config.recipe import TrainConfig
from edgekd.errors import ConfigError
from edgekd.tasks.base import Task


class _FrozenEncoder(nn.Module):
    """Keeps ``features`` in eval mode whatever ``train()`` is called with (frozen BatchNorm)."""

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.student = student

    def train(self, mode: bool = True) -> _FrozenEncoder:
        super().train(mode)
        features = self.student.features
        if isinstance(features, nn.Module):
            features.eval()
        return self

    def forward(self, *args: Any) -> Any:
        return self.student(*args)


def two_stage_fit(task: Task, teacher: nn.Module, cfg: TrainConfig, *, seed: int = 0,
                  val_fn: Callable[[nn.Module], float] | None = None, stage1_fraction: float = 0.5,
                  feature: str = "aspp") -> nn.Module:
    """Train ``task.build_student()`` in the two GKD stages; returns the student (eval mode)."""
    from edgekd.distill.loop import fit
    from edgekd.distill.losses.fitnet import FitNetConfig

    if not 0.0 < stage1_fraction < 1.0:
        raise ConfigError(f"stage1_fraction={stage1_fraction}: must be in (0, 1)",
                          hint="e.g. 0.5 gives half of train.epochs to feature distillation")
    student = task.build_student()
    features = getattr(student, "features", None)
    if not isinstance(features, nn.Module):
        raise ConfigError("GKD two-stage training freezes the student's 'features' encoder, which this student "
                          "lacks", hint="use the MobileNetV2-style student of the segmentation task")
    e1 = max(1, round(cfg.epochs * stage1_fraction))
    e2 = max(1, cfg.epochs - e1)
    spec = task.io_spec()
    common = dict(train_set=task.dataset("train"), input_names=spec.input_names, seed=seed, progress=False,
                  lower_is_better=False)
    # stage 1: labels unused (task_loss_weight 0), features only
    fit(student, cfg=cfg.model_copy(update={"epochs": e1}), teacher=teacher, task_loss=None,
        task_loss_weight=0.0, losses=[FitNetConfig(student=feature, teacher=feature)], **common)  # type: ignore[arg-type, call-arg]
    for p in features.parameters():
        p.requires_grad_(False)
    wrapped = _FrozenEncoder(student)
    fit(wrapped, cfg=cfg.model_copy(update={"epochs": e2}), task_loss=task.task_loss, val_fn=val_fn,
        **common)  # type: ignore[arg-type]
    for p in features.parameters():
        p.requires_grad_(True)
    return student.eval()
