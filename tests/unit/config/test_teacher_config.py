"""teacher: section: each source's required fields, fields of another source refused, files checked at load,
feature losses refused with an ONNX teacher (exit 2, before anything is built)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from edgekd.cli import main
from edgekd.config.recipe import TeacherConfig
from edgekd.errors import ConfigError
from edgekd.tasks.recipe import load_recipe


def _fake_onnx(tmp_path: Path) -> Path:
    p = tmp_path / "teacher.onnx"
    p.write_bytes(b"not read at load")
    return p


@pytest.mark.parametrize(("source", "field"), [("checkpoint", "checkpoint"), ("module", "factory"),
                                               ("onnx", "path")])
def test_each_source_names_its_missing_field(source: str, field: str) -> None:
    with pytest.raises(ValidationError, match=f"teacher.source is '{source}' but teacher.{field} is not set"):
        TeacherConfig(source=source)


def test_a_field_of_another_source_is_refused_not_ignored(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="teacher.path is set but teacher.source is 'train'.*source 'onnx'"):
        TeacherConfig(source="train", path=_fake_onnx(tmp_path))
    with pytest.raises(ValidationError, match="teacher.weights is set but teacher.source is 'onnx'"):
        TeacherConfig(source="onnx", path=_fake_onnx(tmp_path), weights=tmp_path / "w.safetensors")


def test_missing_files_are_named_at_load(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ValidationError, match=f"teacher.path='{missing}'.*no such file"):
        TeacherConfig(source="onnx", path=missing)
    with pytest.raises(ValidationError, match="teacher.weights=.*no such file"):
        TeacherConfig(source="module", factory="torch.nn:Identity", weights=tmp_path / "w.safetensors")
    assert TeacherConfig(source="onnx", path=_fake_onnx(tmp_path)).resolved_path() == _fake_onnx(tmp_path)


def test_path_inside_an_installed_package() -> None:
    import edgekd

    cfg = TeacherConfig(source="onnx", path=Path("py.typed"), package="edgekd")
    assert cfg.resolved_path() == Path(edgekd.__file__).parent / "py.typed"
    with pytest.raises(ValidationError, match="no installed Python package named 'no_such_pkg_xyz'"):
        TeacherConfig(source="onnx", path=Path("m.onnx"), package="no_such_pkg_xyz")
    with pytest.raises(ValidationError, match="inside package 'edgekd': no such file"):
        TeacherConfig(source="onnx", path=Path("models/absent.onnx"), package="edgekd")


@pytest.mark.parametrize(("factory", "message"), [
    ("no_colon_here", "is not 'package.module:function'"),
    ("missing_file.py:build", "the file 'missing_file.py' does not exist"),
    ("no_such_module_xyz.sub:build", "no importable Python module 'no_such_module_xyz'"),
])
def test_bad_factory_references(factory: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TeacherConfig(source="module", factory=factory)


def test_feature_loss_with_onnx_teacher_is_refused_at_load(tmp_path: Path) -> None:
    onnx = _fake_onnx(tmp_path)
    # the gaze recipe has a regression (outputs) loss and an mae_feature loss tapping teacher stages
    with pytest.raises(ConfigError) as err:
        load_recipe("gaze", ["teacher.source=onnx", f"teacher.path={onnx}"])
    text = str(err.value) + " ".join(err.value.problems)
    assert "distill.losses.1 (kind 'mae_feature', teacher: stages.2, stages.3)" in text
    assert "feature losses need a torch teacher" in text
    assert "distill.losses.0" not in text  # the output loss is fine
    # outputs-only losses are accepted
    r = load_recipe("gaze", ["teacher.source=onnx", f"teacher.path={onnx}", "distill.losses=[{kind: regression}]"])
    assert r.teacher.source == "onnx"


def test_cli_exits_2_on_feature_loss_with_onnx_teacher(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["distill-and-export", "gaze", "--out", str(tmp_path / "run"), "--set", "teacher.source=onnx",
               "--set", f"teacher.path={_fake_onnx(tmp_path)}"])
    assert rc == 2
    assert "feature losses need a torch teacher" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before anything ran
