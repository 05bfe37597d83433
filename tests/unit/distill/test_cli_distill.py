"""`edgekd distill RECIPE`: teacher trained, student distilled, checkpoints written; --resume;
a resume with another --set value and a bad --device are exit code 2 with a clear message."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import torch

from edgekd.config.recipe import TaskConfigBase
from edgekd.iospec import IOSpec, TensorSpec
from edgekd.tasks import TASKS
from edgekd.tasks.base import EvalResult, MetricSpec, TaskBase, iterate_numpy
from edgekd.tasks.recipe import recipe_model

_spec = importlib.util.spec_from_file_location("_engine_helpers", Path(__file__).with_name("_engine_helpers.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)  # type: ignore[union-attr]


class EngineToyTaskConfig(TaskConfigBase):
    kind: Literal["engine_toy"] = "engine_toy"
    n: int = 64


class ToyTask(TaskBase):
    metric = MetricSpec("mse", lower_is_better=True)

    def __init__(self, config: EngineToyTaskConfig, seed: int) -> None:
        self.config = config
        self.data = {s: H.RandomRegression(n=config.n, seed=0) for s in ("train", "val", "test")}

    def io_spec(self) -> IOSpec:
        return IOSpec((TensorSpec("x", ("batch", 6)),), (TensorSpec("y", ("batch", 3)),))

    def dataset(self, split: str):  # type: ignore[no-untyped-def]
        return self.data[split]

    def build_teacher(self) -> torch.nn.Module:
        return H.TinyMLP(hidden=24)

    def build_student(self, *, init: str = "teacher") -> torch.nn.Module:
        return H.TinyMLP(hidden=8)

    def task_loss(self, outputs, batch):  # type: ignore[no-untyped-def]
        return H.mse_task_loss(outputs, batch)

    def evaluate(self, predict, split: str = "test", batch_size: int = 64) -> EvalResult:  # type: ignore[no-untyped-def]
        errs = [np.mean((predict(feeds)[0] - b["y"].numpy()) ** 2) for feeds, b in
                iterate_numpy(self.data[split], ["x"], batch_size)]
        return EvalResult(float(np.mean(errs)))

    def eval_splits(self) -> list[str]:
        return []


RECIPE = """
name: engine_toy
task: {kind: engine_toy, n: 64}
preset: null
teacher: {source: train, cache: false, train: {epochs: 2, batch_size: 16, lr: 0.01}}
train: {epochs: 2, batch_size: 16, lr: 0.01, checkpoint_every_steps: 2}
distill:
  task_loss_weight: 0.5
  losses: [{kind: regression, loss: l2}]
"""


@pytest.fixture()
def recipe(tmp_path: Path):
    if "engine_toy" not in TASKS:
        TASKS.register(EngineToyTaskConfig)(ToyTask)
    recipe_model.cache_clear()
    path = tmp_path / "engine_toy.yaml"
    path.write_text(RECIPE)
    yield path
    del TASKS._by_cls[EngineToyTaskConfig]
    del TASKS._by_kind["engine_toy"]
    recipe_model.cache_clear()


def test_distill_command_writes_checkpoints_and_resumes(recipe: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from edgekd.cli import main

    out = tmp_path / "run"
    assert main(["distill", str(recipe), "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "teacher: trained" in text and "student KD: best val mse" in text
    for f in ("student_kd.safetensors", "train/student_kd/last.safetensors", "train/student_kd/best.safetensors",
              "train/student_kd/metrics.jsonl", "teacher.safetensors"):
        assert (out / f).is_file(), f
    # a finished run resumes to the same result; another lr is refused, naming the field
    assert main(["distill", str(recipe), "--out", str(out), "--resume", "--no-progress"]) == 0
    assert main(["distill", str(recipe), "--out", str(out), "--resume", "--set", "train.lr=0.02",
                 "--no-progress"]) == 2
    assert "field train.lr: checkpoint has 0.01, this run has 0.02" in capsys.readouterr().err


def test_bad_device_is_exit_2(recipe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgekd.cli import main

    assert main(["distill", str(recipe), "--device", "tpu:0", "--no-progress"]) == 2
    assert "--device 'tpu:0'" in capsys.readouterr().err


def test_distill_command_qat_finetune_writes_a_low_bit_fake_quant_student(recipe: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from edgekd.cli import main
    from edgekd.quantize.fake_quant import is_qat
    from edgekd.weights import load_module_weights

    out = tmp_path / "run"
    assert main(["distill", str(recipe), "--out", str(out), "--no-progress", "--set", "distill.qat.mode=finetune",
                 "--set", "distill.qat.weight_bits=4", "--set", "distill.qat.per_channel=false",
                 "--set", "quantize.calibration.samples=16"]) == 0
    assert "student QAT fine-tune (4-bit weights" in capsys.readouterr().out
    assert (out / "student_kd.safetensors").is_file() and (out / "train" / "student_qat" / "last.safetensors").is_file()
    from edgekd.quantize.fake_quant import prepare_qat

    student = prepare_qat(H.TinyMLP(hidden=8), per_channel=False, weight_bits=4)
    load_module_weights(student, out / "student_qat.safetensors")  # the fake-quant layout, per-tensor scales
    assert is_qat(student)
    fq = next(m for m in student.modules() if hasattr(m, "weight_fake_quant")).weight_fake_quant
    assert fq.scale.numel() == 1 and (fq.quant_min, fq.quant_max) == (-8, 7)
