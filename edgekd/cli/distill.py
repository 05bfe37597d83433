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
        resume: Annotated[bool, typer.Option("--resume", help="continue a killed run from OUT/train/"
                                             "student_kd/last.safetensors (same recipe and --set values)")] = False,
        no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bars")] = False,
    ) -> None:
        """Distil the recipe's teacher into its student with the same training stage as
        `edgekd distill-and-export` (without the student-alone baseline), writing the same files:
        teacher.safetensors, student_kd.safetensors (student_qat.safetensors for a QAT fine-tune) and
        checkpoints plus metrics.jsonl under OUT/train/<arm>/. Under `torchrun --nproc_per_node N` it
        trains with DDP.

        Exit codes: 0 success, 2 bad input or environment (including a NaN loss or a resume that
        does not match the checkpoint)."""
        import sys

        from edgekd.cli._common import console
        from edgekd.tasks.recipe import load_recipe

        r = load_recipe(recipe, overrides=set_ or [], preset=preset)  # validated before anything heavy
        dev = _torch_device(device)
        out_dir = out or Path("runs") / r.name / "distill"
        from edgekd.cli._checks import out_dir as check_out_dir

        check_out_dir("--out", out_dir, run_folders=False)  # its own folder, inside a run's by default
        res = _train(r, dev, out_dir, resume=resume, progress=not no_progress and sys.stdout.isatty())
        if res is None:
            return  # under torchrun only rank 0 writes and reports
        console.print(res, highlight=False)
        console.print(f"next: edgekd distill-and-export {recipe} (export, quantize, profile)", highlight=False)


def _train(r: Any, dev: Any, out_dir: Path, *, resume: bool, progress: bool) -> str | None:
    """Run the pipeline's training stage on ``dev``; the summary lines to print (None off rank 0)."""
    import os

    from edgekd.cli._common import console
    from edgekd.config import load_device
    from edgekd.pipeline.run import start_run
    from edgekd.pipeline.runfolder import run_folder
    from edgekd.pipeline.train import train_students

    rank0 = os.environ.get("RANK", "0") == "0"
    if resume and rank0 and not (out_dir / "train" / "student_kd" / "last.safetensors").is_file():
        console.print(f"note: --resume: no checkpoint in {out_dir / 'train' / 'student_kd'} yet; starting the "
                      "student from scratch", highlight=False)
    # only rank 0 guards the folder (lock, in-progress marker); the other DDP ranks write nothing
    with run_folder(out_dir, enabled=rank0):
        # the deployment device plays no part in training; the context needs one
        ctx = start_run(r, load_device("host-cpu"), out_dir, progress=progress, say=lambda s: None)
        trained = train_students(ctx, baseline=False, resume=resume, device=dev)
    if not rank0:
        return None
    metric = ctx.task.metric.name
    tinfo = trained.teacher_info
    lines = [f"teacher: {tinfo['source']}" + (f" ({tinfo['path']})" if "path" in tinfo else ""),
             f"student KD: best val {metric} {_g(trained.kd.best_metric)} at epoch {trained.kd.best_epoch} "
             f"({len(trained.kd.history)} epochs, {trained.kd.seconds:.1f} s)"]
    if trained.qat is not None:
        q = r.distill.qat
        lines.append(f"student QAT fine-tune ({q.weight_bits if q else '?'}-bit weights, "
                     f"{trained.qat.extras.get('bn_folded')} BatchNorms folded): best val "
                     f"{metric} {_g(trained.qat.best_metric)} ({trained.qat.seconds:.1f} s)")
    written = [a.name for a in ctx.artifacts.weights() if a.path(out_dir).is_file()]
    lines.append(f"wrote {', '.join(written)} in {out_dir}; checkpoints in {out_dir / 'train'}")
    return "\n".join(lines)


def _g(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.6g}"


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
