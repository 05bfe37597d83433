"""The Python API: distill(teacher, student, losses=[...], train_set=..., input_names=[...])."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

import edgekd.distill as ed
from edgekd.distill import EnsembleTeacher, distill, load_student
from edgekd.errors import ConfigError

_spec = importlib.util.spec_from_file_location("_engine_helpers", Path(__file__).with_name("_engine_helpers.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)  # type: ignore[union-attr]


def test_readme_snippet_distills_an_ensemble_into_a_student(tmp_path: Path) -> None:
    ds = H.RandomRegression(n=64)
    teachers = [H.TinyMLP(hidden=16), H.TinyMLP(hidden=16)]
    for t in teachers:
        distill(None, t, train_set=ds, input_names=["x"], task_loss=H.mse_task_loss, epochs=4, lr=3e-2,
                batch_size=8, progress=False)
    student = H.TinyMLP(hidden=8)
    before = H.val_mse(ds)(student)
    result = distill(EnsembleTeacher(teachers, weights=[0.5, 0.5]), student,
                     losses=[ed.RegressionConfig(loss="l2", weight=1.0)],
                     train_set=DataLoader(ds, batch_size=8), input_names=["x"], task_loss=H.mse_task_loss,
                     val_fn=H.val_mse(ds), epochs=3, lr=3e-2, out_dir=tmp_path, progress=False)
    assert result.best_metric < before and "train_regression" in result.history[0]
    fresh = load_student(H.TinyMLP(hidden=8), tmp_path / "best.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), result.student.state_dict().values(),
                                                  strict=True))


def test_bad_setting_names_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        distill(None, H.TinyMLP(), train_set=H.RandomRegression(n=16), input_names=["x"],
                task_loss=H.mse_task_loss, epochs=0, optimiser="adam", progress=False)
    msg = str(err.value)
    assert "epochs=0" in msg and "optimiser='adam'" in msg and "optimizer" in msg
