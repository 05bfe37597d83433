"""task.kind: custom: the factory is found relative to the recipe, called as build(args, seed), and
checked; every bad factory is a ConfigError (exit 2) that names the problem, the file and the line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from edgekd.cli import main
from edgekd.errors import ConfigError
from edgekd.tasks import Task, build_task
from edgekd.tasks.custom import CustomTaskConfig
from edgekd.tasks.recipe import load_recipe

GOOD = '''
from edgekd.tasks.custom.example_task import build as _example


def build(args, seed):
    return _example(args, seed)
'''


def _project(folder: Path, factory: str, code: str | None = None, name: str = "my_task.py",
             args: str = "{train_size: 16, val_size: 8, test_size: 8, teacher_width: 4, student_width: 2}") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if code is not None:
        (folder / name).write_text(textwrap.dedent(code))
    recipe = folder / "recipe.yaml"
    recipe.write_text(f"name: custom_test\npreset: null\ntask: {{kind: custom, factory: \"{factory}\", args: {args}}}\n")
    return recipe


def _build(recipe: Path) -> Task:
    r = load_recipe(recipe)
    return build_task(r.task, r.seed)


def test_a_relative_factory_is_resolved_against_the_recipe_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    recipe = _project(tmp_path / "proj", "my_task.py:build", GOOD)
    monkeypatch.chdir(tmp_path)  # not the recipe's folder
    r = load_recipe(recipe)
    assert isinstance(r.task, CustomTaskConfig)
    assert r.task.factory == f"{(tmp_path / 'proj' / 'my_task.py').resolve()}:build"
    assert r.task.factory_sha256 is not None and len(r.task.factory_sha256) == 64
    task = build_task(r.task, r.seed)
    assert isinstance(task, Task)
    assert task.config is r.task  # the loader hands the object its recipe section
    assert len(task.dataset("train")) == 16  # type: ignore[arg-type]


def test_the_resolved_recipe_rebuilds_from_its_dump(tmp_path: Path) -> None:
    # a run's manifest holds the resolved recipe; it must rebuild the same task from anywhere
    from edgekd.tasks.recipe import recipe_model

    r = load_recipe(_project(tmp_path, "my_task.py:build", GOOD))
    again = recipe_model().model_validate(r.model_dump(mode="json"))
    assert again.task == r.task
    assert isinstance(build_task(again.task, 0), Task)


def test_a_module_factory(tmp_path: Path) -> None:
    task = _build(_project(tmp_path, "edgekd.tasks.custom.example_task:build"))
    assert task.metric.name == "accuracy"


def test_a_missing_file_is_reported_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.py does not exist") as e:
        load_recipe(_project(tmp_path, "nope.py:build"))
    assert str(tmp_path) in str(e.value)  # where it looked


@pytest.mark.parametrize("code, line, words", [
    ("x = 1\ndef build(args, seed)\n    return None\n", 2, "SyntaxError"),
    ("import numpy\n\ndef helper():\n    raise RuntimeError('no data here')\n\nVALUE = helper()\n", 4,
     "RuntimeError: no data here"),
    ("import not_a_module_anywhere\n", 1, "ModuleNotFoundError"),
])
def test_an_import_error_names_the_file_and_line(tmp_path: Path, code: str, line: int, words: str) -> None:
    recipe = _project(tmp_path, "my_task.py:build", code)
    with pytest.raises(ConfigError) as e:
        _build(recipe)
    msg = str(e.value)
    assert words in msg
    assert f"{tmp_path / 'my_task.py'}:{line}" in msg
    assert "edgekd/tasks" not in msg.replace(str(tmp_path), "")  # no traceback of edgekd


def test_an_exception_in_the_factory_names_the_file_and_line(tmp_path: Path) -> None:
    code = "def build(args, seed):\n    sizes = {}\n    return sizes['train']\n"
    with pytest.raises(ConfigError, match=r"the factory raised: KeyError") as e:
        _build(_project(tmp_path, "my_task.py:build", code))
    assert f"{tmp_path / 'my_task.py'}:3 (in build)" in str(e.value)


@pytest.mark.parametrize("factory, code, words", [
    ("my_task.py:nothere", "def make(args, seed):\n    return None\n", "has no attribute 'nothere' (its callables: make)"),
    ("my_task.py:build", "build = 3\n", "build is of type int, not callable"),
    ("my_task.py:build", "def build(args):\n    return None\n", "cannot be called as build(args, seed)"),
    ("not_a_package_xyz.tasks:build", None, "no module named 'not_a_package_xyz'"),
])
def test_bad_factories(tmp_path: Path, factory: str, code: str | None, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        _build(_project(tmp_path, factory, code))
    assert words in str(e.value)


def test_an_object_missing_members_lists_them_all(tmp_path: Path) -> None:
    code = """
    from edgekd.tasks import MetricSpec

    class Half:
        metric = MetricSpec("mae", lower_is_better=True)
        def dataset(self, split):
            return []
        def build_student(self):
            return None

    def build(args, seed):
        return Half()
    """
    with pytest.raises(ConfigError) as e:
        _build(_project(tmp_path, "my_task.py:build", code))
    problems = e.value.problems
    for name in ("io_spec", "build_teacher", "task_loss", "evaluate", "eval_splits", "pretrain_teacher",
                 "teacher_task_loss", "teacher_input_names", "parity_compare", "parity_min_agreement"):
        assert any(p.startswith(f"{name}:") for p in problems), f"{name} missing from {problems}"
    assert any(p.startswith("build_student") and "init" in p for p in problems)
    assert len(problems) == 11


@pytest.mark.parametrize("factory", ["my_task.py", "my_task.py:", "my task.py:bu ild", "a-b.c:build"])
def test_a_malformed_factory_fails_validation(tmp_path: Path, factory: str) -> None:
    with pytest.raises(ConfigError, match="task"):
        load_recipe(_project(tmp_path, factory, GOOD))


def test_cli_exits_2_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = "class Nothing:\n    pass\n\ndef build(args, seed):\n    return Nothing()\n"
    recipe = _project(tmp_path / "p", "my_task.py:build", code)
    out = tmp_path / "run"
    assert main(["distill-and-export", str(recipe), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "does not implement edgekd.tasks.Task" in err and "Traceback" not in err
    assert not (out / "train").exists()  # nothing trained


def test_a_task_file_edited_after_resolution_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                             ) -> None:
    r = load_recipe(_project(tmp_path, "my_task.py:build", GOOD))
    (tmp_path / "my_task.py").write_text(GOOD + "\n# edited\n")
    with caplog.at_level("WARNING"):
        build_task(r.task, 0)
    assert "changed since this recipe was resolved" in caplog.text
