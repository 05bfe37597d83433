"""`edgekd distill`: train (or load) a recipe's teacher and distil its student, with checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgekd.cli._common import SetOption


def register(app: typer.Typer) -> None:
    @app.command("distill")
    def distill_cmd(
        recipe: Annotated[str, typer.Argument(help="recipe name (see `edgekd recipes`) or path to a YAML file")],
        device: Annotated[str, typer.Option("--device", "-d", help="torch device to train on: auto, cpu, cuda, "
                                            "cuda:N (auto = cuda when available)")] = "auto",
        out: Annotated[Path | None, typer.Option("--out", "-o", help="output folder for checkpoints and logs "
                                                 "[default: runs/RECIPE/distill]")] = None,
        preset: Annotated[str | None, typer.Option("--preset", help="recipe preset, e.g. quick or full")] = None,
        set_: SetOption = None,
        resume: Annotated[bool, typer.Option("--resume", help="continue a killed run from OUT/student_kd/"
                                             "last.safetensors (same recipe and --set values)")] = False,
        no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bars")] = False,
    ) -> None:
        """Distil the recipe's teacher into its student; write checkpoints, metrics.jsonl and
        student_kd.safetensors to OUT. Under `torchrun --nproc_per_node N` it trains with DDP.

        Exit codes: 0 success, 2 bad input or environment (including a NaN loss or a resume that
        does not match the checkpoint)."""
        import os
        import sys

        from edgekd.cli._common import console
        from edgekd.tasks.recipe import load_recipe

        r = load_recipe(recipe, overrides=set_ or [], preset=preset)  # validated before anything heavy
        dev = _torch_device(device)
        out_dir = out or Path("runs") / r.name / "distill"
        from edgekd.cli._checks import out_dir as check_out_dir

        check_out_dir("--out", out_dir, run_folders=False)  # its own folder, inside a run's by default

        import torch

        from edgekd.distill.loop import fit
        from edgekd.pipeline.teacher import _val_fn, obtain_teacher
        from edgekd.quantize.fake_quant import is_qat
        from edgekd.tasks import build_task
        from edgekd.weights import save_module_weights

        show = not no_progress and sys.stdout.isatty()
        task = build_task(r.task, r.seed)
        spec = task.io_spec()
        saved = out_dir / "teacher.safetensors"
        if resume and r.teacher.source == "train" and saved.is_file():
            # The killed run's teacher, exactly: retraining could differ and would not match the checkpoint.
            from edgekd.weights import load_module_weights

            teacher = load_module_weights(task.build_teacher(), saved).eval()
            tinfo = {"source": "resumed", "path": str(saved)}
        else:
            torch.manual_seed(r.seed)  # a teacher trained from scratch starts from seeded weights
            teacher, tinfo = obtain_teacher(r, task, out_dir, progress=show)
        if os.environ.get("RANK", "0") == "0":
            console.print(f"teacher: {tinfo['source']}" + (f" ({tinfo['path']})" if "path" in tinfo else ""),
                          highlight=False)
        if isinstance(teacher, torch.nn.Module):
            teacher.to(dev)
        torch.manual_seed(r.seed)  # the student's initial weights depend on the recipe seed only
        student = task.build_student().to(dev)
        qat = r.distill.qat
        if qat is not None and qat.mode == "scratch":
            from edgekd.quantize.fake_quant import prepare_qat

            prepare_qat(student, per_channel=qat.per_channel, weight_bits=qat.weight_bits,
                        activation=qat.activation)
        res = fit(student, train_set=task.dataset("train"), input_names=spec.input_names, cfg=r.train,
                  task_loss=task.task_loss, task_loss_weight=r.distill.task_loss_weight, teacher=teacher,
                  losses=r.distill.losses, val_fn=_val_fn(task), lower_is_better=task.metric.lower_is_better,
                  out_dir=out_dir / "student_kd", resume=resume, seed=r.seed, progress=show, desc="student KD",
                  teacher_cache=out_dir / "teacher_cache" if r.distill.teacher_cache else None,
                  qat=qat is not None and qat.mode == "scratch")
        rank0 = os.environ.get("RANK", "0") == "0"
        if rank0:
            weights = save_module_weights(res.student, out_dir / "student_kd.safetensors",
                                          metadata={"recipe": r.name, "qat": str(is_qat(res.student))})
            metric = "n/a" if res.best_metric is None else f"{res.best_metric:.6g}"
            console.print(f"student KD: best val {task.metric.name} {metric} at epoch {res.best_epoch} "
                          f"({len(res.history)} epochs, {res.seconds:.1f} s)", highlight=False)
            console.print(f"wrote {weights}, checkpoints in {out_dir / 'student_kd'}", highlight=False)
        if qat is not None and qat.mode == "finetune":
            from edgekd.distill.qat_finetune import qat_finetune
            from edgekd.tasks.base import calibration_items

            ft = qat_finetune(res.student, qat=qat, train=r.train,
                              calib=calibration_items(task, r.quantize.calibration.samples),
                              input_names=spec.input_names, train_set=task.dataset("train"),
                              task_loss=task.task_loss, task_loss_weight=r.distill.task_loss_weight,
                              teacher=teacher, losses=r.distill.losses, val_fn=_val_fn(task),
                              lower_is_better=task.metric.lower_is_better, out_dir=out_dir / "student_qat",
                              resume=resume and (out_dir / "student_qat" / "last.safetensors").is_file(),
                              seed=r.seed, progress=show, desc="student QAT fine-tune",
                              teacher_cache=out_dir / "teacher_cache" if r.distill.teacher_cache else None)
            if rank0:
                weights = save_module_weights(ft.student, out_dir / "student_qat.safetensors",
                                              metadata={"recipe": r.name, "qat": "finetune"})
                console.print(f"student QAT fine-tune ({qat.weight_bits}-bit weights, {ft.extras['bn_folded']} "
                              f"BatchNorms folded): best val {task.metric.name} {ft.best_metric} "
                              f"({ft.seconds:.1f} s); wrote {weights}", highlight=False)
        if not rank0:
            return  # under torchrun only rank 0 writes and reports
        console.print(f"next: edgekd distill-and-export {recipe} (export, quantize, profile)", highlight=False)


def _torch_device(name: str) -> Any:
    import torch

    from edgekd.errors import BackendUnavailableError, ConfigError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r} is not a torch device",
                          hint="use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(f"--device {name!r}: CUDA is not available on this machine",
                                      hint="use --device cpu (or auto)")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {name!r}: only cpu and cuda are supported for training",
                          hint="use auto, cpu, cuda or cuda:N")
    return dev
