"""Stage 1, train the students: the teacher (trained, cached, loaded or analytic), the student alone
(no teacher: the baseline), the distilled student and, for ``distill.qat.mode: finetune``, its QAT
fine-tune. ``edgekd distill-and-export`` and ``edgekd distill`` both run this stage and write the same
files (``teacher.safetensors``, ``student_alone.safetensors``, ``student_kd.safetensors``,
``student_qat.safetensors``, checkpoints under ``train/<arm>/``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from edgekd.distill.loop import FitResult
from edgekd.pipeline.artifacts import Artifact
from edgekd.pipeline.context import RunContext


@dataclass
class TrainedModels:
    teacher: Any  # an nn.Module, or the task's analytic controller
    teacher_info: dict[str, Any]  # where the teacher came from (its training history under "history")
    kd: FitResult
    alone: FitResult | None = None  # None when the baseline arm was not asked for
    qat: FitResult | None = None  # distill.qat.mode=finetune only
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def student(self) -> nn.Module:
        return self.kd.student

    @property
    def int8_student(self) -> nn.Module:
        """The torch model the INT8 artifact is checked against: the QAT fine-tune when there is one."""
        return self.qat.student if self.qat is not None else self.kd.student


def _is_main() -> bool:
    return os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 writes


def _save(ctx: RunContext, model: nn.Module, artifact: Artifact) -> None:
    from edgekd.weights import save_module_weights

    if _is_main():
        save_module_weights(model, artifact.path(ctx.out_dir))


def train_students(ctx: RunContext, *, baseline: bool = True, resume: bool = False,
                   device: Any = None) -> TrainedModels:
    """Train every arm the recipe asks for. ``baseline=False`` skips the student alone (``edgekd distill``);
    the KD student then starts from weights seeded by the recipe seed alone. ``resume`` continues each
    arm from its ``train/<arm>/last.safetensors`` (and reuses the run's own teacher). ``device``: the torch
    device to train the students on (default: CPU)."""
    teacher, tinfo = _teacher_stage(ctx, resume)
    if device is not None and isinstance(teacher, nn.Module):
        teacher.to(device)
    common = _fit_kwargs(ctx)
    alone = _alone_stage(ctx, common) if baseline else None
    if not baseline:
        import torch

        torch.manual_seed(ctx.recipe.seed)  # the student's initial weights depend on the recipe seed only
    kd = _kd_stage(ctx, common, teacher, resume, device)
    qat = _qat_stage(ctx, common, teacher, kd.student, resume) if ctx.artifacts.qat.finetune_arm else None
    return TrainedModels(teacher, tinfo, kd, alone, qat)


def _teacher_stage(ctx: RunContext, resume: bool) -> tuple[Any, dict[str, Any]]:
    from edgekd.pipeline.teacher_source import obtain_teacher

    saved = ctx.artifacts.TEACHER.path(ctx.out_dir)
    with ctx.rec.stage("teacher") as r:
        if resume and ctx.recipe.teacher.source == "train" and saved.is_file():
            # The killed run's teacher, exactly: retraining could differ and would not match the checkpoint.
            from edgekd.weights import load_module_weights

            teacher, tinfo = load_module_weights(ctx.task.build_teacher(), saved).eval(), {
                "source": "resumed", "path": str(saved)}
        else:
            teacher, tinfo = obtain_teacher(ctx.recipe, ctx.task, ctx.out_dir, progress=ctx.progress, spec=ctx.spec)
        r.update({k: v for k, v in tinfo.items() if k != "history"})
    return teacher, tinfo


def _fit_kwargs(ctx: RunContext) -> dict[str, Any]:
    """What every student arm trains on: the train split, the task loss, the validation metric."""
    from edgekd.pipeline.teacher_source import val_fn

    t = ctx.task
    return dict(train_set=t.dataset("train"), input_names=ctx.spec.input_names, task_loss=t.task_loss,
                val_fn=val_fn(t, ctx.spec), lower_is_better=t.metric.lower_is_better, seed=ctx.recipe.seed,
                progress=ctx.progress)


def _alone_stage(ctx: RunContext, common: dict[str, Any]) -> FitResult:
    from edgekd.distill.loop import fit

    with ctx.rec.stage("student_alone"):
        alone = fit(ctx.task.build_student(init="scratch"), out_dir=ctx.out_dir / "train" / "student_alone",
                    desc="student alone", cfg=ctx.recipe.train, **common)
        _save(ctx, alone.student, ctx.artifacts.STUDENT_ALONE)
    return alone


def _kd_stage(ctx: RunContext, common: dict[str, Any], teacher: Any, resume: bool, device: Any) -> FitResult:
    from edgekd.distill.loop import fit

    r, qat_from_scratch = ctx.recipe, ctx.artifacts.qat.kd_student_is_qat
    with ctx.rec.stage("student_kd", losses=[lc.kind for lc in r.distill.losses]):
        student = ctx.task.build_student()
        if device is not None:
            student.to(device)
        if qat_from_scratch and r.distill.qat is not None:
            from edgekd.quantize.fake_quant import prepare_qat

            q = r.distill.qat
            prepare_qat(student, per_channel=q.per_channel, weight_bits=q.weight_bits, activation=q.activation)
        out = ctx.out_dir / "train" / "student_kd"
        # killed before the first checkpoint: nothing to resume, so the student starts from scratch
        kd = fit(student, teacher=teacher, losses=r.distill.losses, task_loss_weight=r.distill.task_loss_weight,
                 out_dir=out, desc="student KD", teacher_cache=ctx.teacher_cache, qat=qat_from_scratch,
                 cfg=r.train, resume=resume and (out / "last.safetensors").is_file(), **common)
        _save(ctx, kd.student, ctx.artifacts.STUDENT_KD)
    return kd


def _qat_stage(ctx: RunContext, common: dict[str, Any], teacher: Any, student: nn.Module,
               resume: bool) -> FitResult:
    from edgekd.distill.qat_finetune import qat_finetune

    r = ctx.recipe
    q = r.distill.qat
    if q is None:  # finetune_arm implies a QAT config; a caller that gets here without one is a bug
        raise RuntimeError("QAT fine-tune stage without a distill.qat section")
    out = ctx.out_dir / "train" / "student_qat"
    with ctx.rec.stage("qat_finetune", weight_bits=q.weight_bits, per_channel=q.per_channel,
                       epochs=q.finetune_epochs) as rec:
        ft = qat_finetune(student, qat=q, train=r.train, calib=ctx.calibration(), teacher=teacher,
                          losses=r.distill.losses, task_loss_weight=r.distill.task_loss_weight, out_dir=out,
                          desc="student QAT fine-tune", teacher_cache=ctx.teacher_cache,
                          resume=resume and (out / "last.safetensors").is_file(), **common)
        _save(ctx, ft.student, ctx.artifacts.STUDENT_QAT)
        rec.update({**ft.extras, "best_val": ft.best_metric, "seconds_train": round(ft.seconds, 1)})
    return ft
