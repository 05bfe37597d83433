"""Rebuild the student of a finished run from its manifest, for export, profiling and personalisation."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekd.errors import ConfigError
from edgekd.iospec import IOSpec
from edgekd.runtime.torch_eager import set_run_loader
from edgekd.tasks import build_task
from edgekd.tasks.base import Task
from edgekd.tasks.recipe import recipe_model
from edgekd.weights import load_module_weights

RUN_WEIGHTS = ("student_kd.safetensors", "student.safetensors")


@dataclass
class RunStudent:
    module: Any  # torch.nn.Module in eval mode, weights loaded
    spec: IOSpec
    task: Task
    recipe: Any
    run_dir: Path
    weights: Path


def load_run_student(run_dir: str | os.PathLike[str], *, weights: str | None = None) -> RunStudent:
    """Rebuild the student of a finished run from its manifest's resolved recipe and load its weights."""

    run = Path(run_dir)
    manifest = run / "manifest.json"
    if not manifest.is_file():
        raise ConfigError(f"{run}: not an edgekd run folder (no manifest.json)",
                          hint="pass the output folder of `edgekd distill-and-export`, or an .onnx file")
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{manifest}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("recipe_config"), dict):
        raise ConfigError(f"{manifest}: has no 'recipe_config' object",
                          hint="the run was made by an older edgekd, or the manifest was edited; re-run it")
    from pydantic import ValidationError

    try:
        recipe = recipe_model().model_validate(data["recipe_config"])
    except ValidationError as exc:
        raise ConfigError(f"{manifest}: its recipe_config does not validate with this edgekd",
                          [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()]) from None
    if weights is not None:
        wpath = run / weights
    else:
        found = [run / w for w in RUN_WEIGHTS if (run / w).is_file()]
        if not found:
            raise ConfigError(f"{run}: no student weights ({' or '.join(RUN_WEIGHTS)})",
                              hint="the run did not finish training; re-run it")
        wpath = found[0]
    task = build_task(recipe.task, getattr(recipe, "seed", 0))
    module = task.build_student()
    distill_cfg = getattr(recipe, "distill", None)
    qat = getattr(distill_cfg, "qat", None)
    if qat is not None and (qat.mode == "scratch" or wpath.name == "student_qat.safetensors"):
        # A quantization-aware run saved fake-quant scales with the weights: rebuild the same
        # fake-quant student so they load (export_onnx then writes it as QDQ INT8). A fine-tuned one
        # (student_qat.safetensors) was BatchNorm-folded before fake quantization: fold the fresh one too.
        from edgekd.distill.fold_bn import fold_batchnorm
        from edgekd.quantize.fake_quant import prepare_qat

        if qat.mode == "finetune":
            fold_batchnorm(module.eval())
        prepare_qat(module, per_channel=qat.per_channel, weight_bits=qat.weight_bits, activation=qat.activation)
    load_module_weights(module, wpath)
    module.eval()
    return RunStudent(module, task.io_spec(), task, recipe, run, wpath)


def _runtime_loader(run_dir: Path, weights: str | None) -> tuple[Any, IOSpec, Path]:
    run = load_run_student(run_dir, weights=weights)
    return run.module, run.spec, run.weights


set_run_loader(_runtime_loader)
