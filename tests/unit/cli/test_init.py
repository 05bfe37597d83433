"""`edgekd init DIR`: writes a custom task and its recipe that validate and run as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgekd.cli import main
from edgekd.tasks import Task, build_task, check_task
from edgekd.tasks.recipe import load_recipe


def test_init_writes_a_task_and_a_recipe_that_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "My Project"
    assert main(["init", str(folder)]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == ["my_task.py", "recipe.yaml"]
    assert f"edgekd distill-and-export {folder / 'recipe.yaml'}" in out
    for preset in (None, "smoke", "full"):
        recipe = load_recipe(folder / "recipe.yaml", preset=preset)
        assert recipe.name == "my_project"
    # stop after validation: the task builds and satisfies the protocol (the slow test runs the pipeline)
    recipe = load_recipe(folder / "recipe.yaml", preset="smoke")
    task = build_task(recipe.task, recipe.seed)
    assert isinstance(task, Task) and check_task(task) == []
    assert len(task.dataset("train")) == 64  # type: ignore[arg-type]


def test_init_into_an_empty_folder_is_fine(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path)]) == 0
    assert (tmp_path / "recipe.yaml").is_file()


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["init", str(tmp_path)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert main(["init", str(tmp_path / "notes.txt")]) == 2


@pytest.mark.slow
def test_init_then_distill_and_export_runs_as_written(tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    assert main(["init", str(folder)]) == 0
    out = tmp_path / "run"
    rc = main(["distill-and-export", str(folder / "recipe.yaml"), "--preset", "smoke", "--device", "host-cpu",
               "--out", str(out), "--no-progress"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    for variant in ("teacher", "student_alone", "student_kd", "onnx_fp32", "onnx_int8"):
        assert variant in json.dumps(report["variants"]), variant
    assert (out / "student.onnx").is_file() and (out / "student.int8.onnx").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recipe_config"]["task"]["factory"] == f"{(folder / 'my_task.py').resolve()}:build"
