"""`edgekd init DIR`: a working task of your own (my_task.py) and its recipe (recipe.yaml), to edit from."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

TASK_FILE = "my_task.py"
RECIPE_FILE = "recipe.yaml"

RECIPE = """\
# The recipe of the task in {task_file}, written by `edgekd init`. Run it with
#   edgekd distill-and-export {recipe_path} --device host-cpu --out runs/{name}
# (about a minute on 2 CPU cores; the teacher is trained once and cached, later runs reuse it).
# Every field is documented in the recipe schema; `--set a.b=value` overrides one for a run.
name: {name}
description: "Quadrant of a bright square in 16x16 toy images (edit {task_file}); metric: accuracy"
seed: 0
preset: null          # or --preset smoke / --preset full
task:
  kind: custom
  factory: "{task_file}:build"   # a file relative to this recipe, or package.module:function
  args:                          # passed to build(args, seed)
    image_size: 16
    train_size: 512
    val_size: 128
    test_size: 256
    teacher_width: 32
    student_width: 8
teacher:
  source: train       # or checkpoint, with teacher.checkpoint: path/to/teacher.safetensors
  cache: true
  train: {{epochs: 6, batch_size: 32, lr: 0.03, warmup_steps: 0}}
train: {{epochs: 6, batch_size: 32, lr: 0.03, warmup_steps: 0}}
distill:
  task_loss_weight: 0.5
  losses:
    # Hinton et al. 2015: KL between the softened class distributions of teacher and student
    - kind: hinton_kd
      temperature: 4.0
      weight: 0.5
export: {{formats: [onnx], opset: 17}}
quantize:
  enabled: true
  runtime: onnxruntime
  precision: int8
  mode: static
  calibration: {{method: minmax, samples: 64}}
profile: {{warmup_iters: 5, sessions: 2, iterations: 50, min_duration_s: 0.2, batch: 1}}
presets:
  # smoke: tiny sizes that check the whole pipeline in seconds (not a meaningful metric)
  smoke:
    task.args: {{image_size: 16, train_size: 64, val_size: 16, test_size: 32, teacher_width: 8, student_width: 4}}
    teacher.train: {{epochs: 1, batch_size: 16, warmup_steps: 0}}
    train: {{epochs: 1, batch_size: 16, warmup_steps: 0}}
    quantize.calibration.samples: 8
    profile: {{warmup_iters: 2, sessions: 1, iterations: 50, min_duration_s: 0.0, batch: 1}}
  # full: more data and epochs
  full:
    task.args.train_size: 4096
    teacher.train.epochs: 20
    train.epochs: 20
"""


def recipe_name(folder: Path) -> str:
    """A recipe name from the folder's name: lower case letters, digits, '_' and '-'."""
    name = re.sub(r"[^a-z0-9_-]+", "_", folder.resolve().name.lower()).strip("_-")
    return name or "my_task"


def write_project(folder: Path) -> list[Path]:
    """Write the example task and its recipe into ``folder`` (created; must be empty or absent)."""
    from importlib.resources import files

    from edgekd.errors import ConfigError
    from edgekd.fileio import write_text

    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(f"{folder} already exists and is not an empty folder; edgekd init does not overwrite",
                          hint="give a new folder name, or empty this one")
    folder.mkdir(parents=True, exist_ok=True)
    source = files("edgekd.tasks.custom").joinpath("example_task.py").read_text(encoding="utf-8")
    task_path, recipe_path = folder / TASK_FILE, folder / RECIPE_FILE
    write_text(task_path, source)
    write_text(recipe_path, RECIPE.format(task_file=TASK_FILE, recipe_path=recipe_path, name=recipe_name(folder)))
    return [task_path, recipe_path]


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        folder: Annotated[Path, typer.Argument(help="new folder for the task file and its recipe")],
    ) -> None:
        """Write a working task of your own (my_task.py: models, toy data, metric) and its recipe.yaml
        into a new FOLDER, ready for `edgekd distill-and-export FOLDER/recipe.yaml`.

        Exit codes: 0 written, 2 FOLDER exists and is not empty."""
        from edgekd.cli._common import console

        written = write_project(folder)
        for p in written:
            console.print(f"wrote {p}", highlight=False)
        console.print(f"next: edgekd distill-and-export {written[1]} --device host-cpu --out runs/"
                      f"{recipe_name(folder)}   (edit {written[0]} for your models and data)", highlight=False)
