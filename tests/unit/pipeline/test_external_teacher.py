"""obtain_teacher for teachers from outside the task: a torch module from a factory (file or import path,
optional safetensors weights) and an ONNX model (outputs checked against the student's before training)."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.config.recipe import RecipeBase, TaskConfigBase, TeacherConfig
from edgekd.errors import ConfigError
from edgekd.iospec import IOSpec, TensorSpec
from edgekd.pipeline.evaluate import model_predict, param_count
from edgekd.pipeline.teacher_source import obtain_teacher

_HERE = Path(__file__).resolve().parents[1] / "distill" / "test_onnx_teacher.py"
_spec = importlib.util.spec_from_file_location("onnx_teacher_helpers", _HERE)
assert _spec is not None and _spec.loader is not None
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
export_tiny = _helpers.export_tiny


class TinyTask:
    """Just enough of the Task protocol for the teacher stage: 3x8x8 images -> a 1x8x8 map."""

    def __init__(self, out_channels: int = 1) -> None:
        self.out_channels = out_channels
        self.metric = SimpleNamespace(lower_is_better=True)
        self.built_teacher = False

    def io_spec(self) -> IOSpec:
        return IOSpec((TensorSpec("image", ("batch", 3, 8, 8)),), (TensorSpec("prob", ("batch", 1, 8, 8)),))

    def dataset(self, split: str) -> list[dict[str, torch.Tensor]]:
        g = torch.Generator().manual_seed(0)
        return [{"image": torch.rand(3, 8, 8, generator=g)} for _ in range(4)]

    def build_student(self) -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, self.out_channels, 1), nn.Sigmoid())

    def build_teacher(self) -> nn.Module:
        self.built_teacher = True
        return nn.Identity()


def _recipe(**teacher: Any) -> RecipeBase:
    return RecipeBase(name="t", task=TaskConfigBase(kind="tiny"), teacher=TeacherConfig(**teacher))


def test_onnx_teacher_is_run_scored_and_recorded(tmp_path: Path) -> None:
    net = export_tiny(tmp_path / "t.onnx")
    task = TinyTask()
    teacher, info = obtain_teacher(_recipe(source="onnx", path=tmp_path / "t.onnx"), task, tmp_path / "run")
    from edgekd.fileio import sha256_file

    assert info["source"] == "onnx" and info["sha256"] == sha256_file(tmp_path / "t.onnx")
    assert info["params"] == param_count(teacher) == 117
    assert not task.built_teacher  # the task's own teacher architecture is not built
    x = torch.rand(2, 3, 8, 8)
    (out,) = model_predict(teacher, task.io_spec())({"image": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), net(x).detach(), atol=1e-5, rtol=1e-4)


def test_onnx_teacher_with_other_outputs_than_the_student_is_refused(tmp_path: Path) -> None:
    export_tiny(tmp_path / "t2.onnx", out_channels=2)
    with pytest.raises(ConfigError) as err:
        obtain_teacher(_recipe(source="onnx", path=tmp_path / "t2.onnx"), TinyTask(), tmp_path / "run")
    msg = str(err.value)
    assert "returns 1 output(s) of shape(s) [(2, 2, 8, 8)]" in msg
    assert "the student returns 1 of shape(s) [(2, 1, 8, 8)]" in msg


def _write_factory(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "my_teacher.py"
    f.write_text(textwrap.dedent(body))
    return f


_NET = """
    from torch import nn

    def build():
        return nn.Sequential(nn.Conv2d(3, 1, 1), nn.Sigmoid())
"""


def test_module_teacher_from_a_file_with_weights(tmp_path: Path) -> None:
    from edgekd.weights import save_module_weights

    f = _write_factory(tmp_path, _NET)
    torch.manual_seed(3)
    trained = nn.Sequential(nn.Conv2d(3, 1, 1), nn.Sigmoid())
    save_module_weights(trained, tmp_path / "w.safetensors")
    teacher, info = obtain_teacher(_recipe(source="module", factory=f"{f}:build", weights=tmp_path / "w.safetensors"),
                                   TinyTask(), tmp_path / "run")
    assert info["source"] == "module" and len(info["sha256"]) == 64
    assert isinstance(teacher, nn.Module) and not any(p.requires_grad for p in teacher.parameters())
    torch.testing.assert_close(teacher[0].weight, trained[0].weight)
    assert (tmp_path / "run" / "teacher.safetensors").is_file()


def test_module_teacher_from_an_import_path(tmp_path: Path) -> None:
    teacher, info = obtain_teacher(_recipe(source="module", factory="torch.nn:Identity"), TinyTask(), tmp_path)
    assert isinstance(teacher, nn.Identity) and info["factory"] == "torch.nn:Identity"


@pytest.mark.parametrize(("body", "message"), [
    ("import torch\nx = 1 / 0\n", r"importing .* failed: ZeroDivisionError: division by zero \(at .*my_teacher.py:2\)"),
    ("def build(:\n", r"SyntaxError.*\(at .*my_teacher.py:1\)"),
    ("def other():\n    return 1\n", r"has no function 'build'(.|\n)*callables there: other"),
    ("def build():\n    return 42\n", "returned a int, not a torch nn.Module"),
    ("def build():\n    raise RuntimeError('no weights here')\n",
     r"raised RuntimeError: no weights here \(at .*my_teacher.py:2\)"),
])
def test_factory_errors_name_the_file_and_line(tmp_path: Path, body: str, message: str) -> None:
    f = _write_factory(tmp_path, body)
    with pytest.raises(ConfigError, match=message):
        obtain_teacher(_recipe(source="module", factory=f"{f}:build"), TinyTask(), tmp_path / "run")


def test_module_teacher_serves_feature_losses(tmp_path: Path) -> None:
    """A torch teacher from a factory keeps what an ONNX one cannot: its inner layers can be tapped."""
    from edgekd.config.recipe import TrainConfig
    from edgekd.distill.loop import fit
    from edgekd.distill.losses.fitnet import FitNetConfig

    f = _write_factory(tmp_path, """
        from torch import nn

        def build():
            return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 1, 1), nn.Sigmoid())
    """)
    teacher, _ = obtain_teacher(_recipe(source="module", factory=f"{f}:build"), TinyTask(), tmp_path / "run")
    student = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 1), nn.Sigmoid())
    res = fit(student, train_set=TinyTask().dataset("train"), input_names=["image"],
              cfg=TrainConfig(epochs=1, batch_size=2), teacher=teacher,
              losses=[FitNetConfig(kind="fitnet", student="1", teacher="1")], progress=False)
    assert res.history and np.isfinite(res.history[-1]["train_loss"])
