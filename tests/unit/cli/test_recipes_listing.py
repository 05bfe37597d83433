"""`edgekd recipes` lists every readable recipe and marks an unreadable one with its one-line error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgekd.cli import main
from edgekd.paths import recipes_dir


def test_one_bad_recipe_does_not_break_the_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(recipes_dir() / "gaze.yaml", tmp_path / "gaze.yaml")
    (tmp_path / "broken.yaml").write_text("name: broken\n  task: [\n")
    (tmp_path / "latin1.yaml").write_bytes(b"name: x\ndescription: caf\xe9\n")
    monkeypatch.setenv("EDGEKD_RECIPES", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["recipes"]) == 0
    out, err = capsys.readouterr()
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 4}
    assert set(rows) == {"gaze", "broken", "latin1"}, out
    assert "quick, full, smoke" in rows["gaze"]
    assert "error: not valid YAML: line 2, column 7: mapping values are not allowed here" in rows["broken"]
    assert "error: not UTF-8 text" in rows["latin1"]
    assert "2 recipe file(s) could not be read: broken, latin1" in err
    assert "Traceback" not in out + err


def test_methods_lists_each_recipes_losses_and_points_to_the_table(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["recipes", "--methods"]) == 0
    out, err = capsys.readouterr()
    rows = {line.split("│")[1].strip(): line.split("│")[3].strip() for line in out.splitlines()
            if line.count("│") >= 4}
    assert rows["gui_agent"] == "ppl_ce, dbild, token_kd, visual_switch, cosine_embed", out
    assert rows["segmentation"] == "cwd" and rows["gaze"] == "regression, mae_feature"
    assert "hinton_kd, jsd, lad, mae_feature, mgd" in out  # every registered loss kind
    assert "docs/results.md#methods" in out and "docs/methods.md" in out and err == ""
    # the pointer is also under the plain listing
    assert main(["recipes"]) == 0
    assert "docs/results.md#methods" in capsys.readouterr().out


def test_methods_marks_an_unreadable_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.yaml").write_text("name: broken\n  task: [\n")
    (tmp_path / "plain.yaml").write_text("name: plain\ntask: {kind: gaze}\n")
    monkeypatch.setenv("EDGEKD_RECIPES", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["recipes", "--methods"]) == 0
    out, err = capsys.readouterr()
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 4}
    assert "error: not valid YAML" in rows["broken"] and "│ -" in rows["plain"]
    assert "1 recipe file(s) could not be read: broken" in err
