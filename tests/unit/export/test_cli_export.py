"""`edgekd export` and `edgekd build-engine` as users call them: run folders and external ONNX, exit codes."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekd.cli import main
from edgekd.export.tensorrt import BuildPlan
from edgekd.fileio import sha256_file


def _external_model():  # type: ignore[no-untyped-def]
    name = "edgekd_tests_export_external"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("test_external.py"))
        mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = mod
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return sys.modules[name].constant_weight_model


constant_weight_model = _external_model()
HAS_OV = importlib.util.find_spec("openvino") is not None


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run as the pipeline leaves it: student weights + manifest with the resolved recipe."""
    from edgekd.tasks import build_task
    from edgekd.tasks.recipe import recipe_model
    from edgekd.weights import save_module_weights

    recipe = recipe_model().model_validate({
        "name": "tiny-gaze", "task": {"kind": "gaze", "height": 32, "width": 48, "train_size": 8, "val_size": 8,
                                      "test_size": 8},
        "export": {"exporter": "torchscript"}})
    run = tmp_path_factory.mktemp("run")
    w = save_module_weights(build_task(recipe.task, 0).build_student(), run / "student_kd.safetensors")
    (run / "manifest.json").write_text(json.dumps({"recipe_config": recipe.model_dump(mode="json"), "artifacts": [
        {"path": "student_kd.safetensors", "sha256": sha256_file(w)}]}))
    return run


def test_weights_that_differ_from_the_manifest_are_refused(run_dir: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 20: export never checked the weights' sha256 against the run's manifest."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    w = run / "student_kd.safetensors"
    w.write_bytes(w.read_bytes()[:-1] + bytes([w.read_bytes()[-1] ^ 1]))
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "s.onnx")]) == 2
    assert "differs from the run's manifest" in capsys.readouterr().err
    assert not (tmp_path / "s.onnx").exists()


def test_export_into_the_run_folder_is_refused(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = sorted(p.name for p in run_dir.iterdir())
    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(run_dir)]) == 2
    assert "run folder" in capsys.readouterr().err
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_run_folder_to_onnx_matches_the_torch_runtime(run_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from edgekd.runtime import SessionOptions, get_runtime

    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(tmp_path / "s.onnx")]) == 0
    assert "parity vs torch: passed" in capsys.readouterr().out
    # the torch runtime loads the same run folder; its outputs match the exported ONNX
    ref = get_runtime("torch").load(run_dir, SessionOptions(threads=1))
    cand = get_runtime("onnxruntime").load(tmp_path / "s.onnx", SessionOptions(threads=1))
    x = {"image": np.random.default_rng(0).uniform(size=(3, 1, 32, 48)).astype(np.float32)}
    np.testing.assert_allclose(cand.run(x)[0], ref.run(x)[0], atol=1e-4, rtol=1e-3)


@pytest.mark.skipif(not HAS_OV, reason="the openvino extra is not installed")
def test_run_folder_to_openvino(run_dir: Path, tmp_path: Path) -> None:
    assert main(["export", str(run_dir), "--format", "openvino", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "student.xml").is_file() and (tmp_path / "student.bin").is_file()


def test_run_folder_to_tensorrt_plan(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(run_dir), "--format", "tensorrt", "--out", str(tmp_path), "--max-batch", "4"]) == 0
    plan = BuildPlan.read(tmp_path / "student.plan.json")
    assert plan.profiles[0]["image"] == {"min": [1, 1, 32, 48], "opt": [1, 1, 32, 48], "max": [4, 1, 32, 48]}
    assert "edgekd build-engine" in capsys.readouterr().out


def test_external_onnx_to_onnx_and_openvino(tmp_path: Path) -> None:
    import onnx

    src = constant_weight_model(tmp_path / "ext.onnx")
    assert main(["export", str(src), "--format", "onnx", "--out", str(tmp_path / "o" / "ext.onnx"),
                 "--input", "x=1x3x16x24"]) == 0
    out = onnx.load(str(tmp_path / "o" / "ext.onnx"))
    assert not any(n.op_type == "Constant" for n in out.graph.node) and len(out.graph.initializer) >= 2
    if HAS_OV:
        assert main(["export", str(src), "--format", "openvino", "--out", str(tmp_path / "ext.xml")]) == 0


def test_run_folder_to_an_explicit_int8_tensorrt_plan(run_dir: Path, tmp_path: Path) -> None:
    """A run's INT8 plan: its FP32 student quantized to symmetric INT8 Q/DQ on the task's training inputs, with the
    task's INT8 parity comparison (measured, not judged)."""
    from edgekd.tasks.run_student import load_run_student

    assert main(["export", str(run_dir), "--format", "tensorrt", "--precision", "int8", "--calib-count", "4",
                 "--out", str(tmp_path)]) == 0
    plan = BuildPlan.read(tmp_path / "student.plan.json")
    task = load_run_student(run_dir).task
    assert plan.onnx == "student.qdq.onnx" and plan.quantized_by and plan.quantized_by["calib_batches"] == 4
    assert plan.parity["compare"] == task.parity_compare and plan.parity["judged"] is False


def test_external_onnx_to_tensorrt_needs_a_profile_for_dynamic_hw(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    src = constant_weight_model(tmp_path / "ext.onnx")
    assert main(["export", str(src), "--format", "tensorrt", "--out", str(tmp_path / "t")]) == 2
    assert "--profile x=" in capsys.readouterr().err
    assert main(["export", str(src), "--format", "tensorrt", "--out", str(tmp_path / "t"),
                 "--profile", "x=1x3x32x32:1x3x64x64:2x3x128x128"]) == 0
    plan = BuildPlan.read(tmp_path / "t" / "ext.plan.json")
    assert plan.profiles[0]["x"]["max"] == [2, 3, 128, 128]


def test_external_onnx_to_an_explicit_int8_tensorrt_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--precision int8 from an FP32 ONNX: without --calib the error says what it is for; with it, edgekd writes
    the symmetric INT8 Q/DQ model the plan builds (TensorRT 10 explicit quantization, no calibrator)."""
    import onnx

    from edgekd.export.trt_qdq import check_explicit_int8

    src = constant_weight_model(tmp_path / "ext.onnx")
    args = ["export", str(src), "--format", "tensorrt", "--precision", "int8", "--input", "x=1x3x16x16"]
    assert main([*args, "--out", str(tmp_path / "t0")]) == 2
    assert "--calib DIR" in capsys.readouterr().err
    cal = tmp_path / "cal"
    cal.mkdir()
    for i in range(4):
        np.save(cal / f"{i}.npy", np.random.default_rng(i).random((1, 3, 16, 16), dtype=np.float32))
    assert main([*args, "--calib", str(cal), "--out", str(tmp_path / "t")]) == 0
    plan = BuildPlan.read(tmp_path / "t" / "ext.plan.json")
    assert plan.onnx == "ext.qdq.onnx" and plan.explicit_quantization and plan.precision == "int8"
    assert check_explicit_int8(onnx.load(str(tmp_path / "t" / "ext.qdq.onnx"))) == []


@pytest.mark.parametrize("args, needle", [
    (["export", "{tmp}/nothing.onnx", "--format", "onnx", "--out", "{tmp}/o.onnx"], "does not exist"),
    (["export", "{tmp}/junk.onnx", "--format", "onnx", "--out", "{tmp}/o.onnx"], "not an ONNX model"),
    (["export", "{tmp}/ext.onnx", "--format", "onnxx", "--out", "{tmp}/o.onnx"], "Did you mean 'onnx'"),
    (["export", "{tmp}", "--format", "onnx", "--out", "{tmp}/o.onnx"], "manifest.json"),
    (["export", "{tmp}/ext.onnx", "--format", "onnx", "--out", "{tmp}/o.onnx", "--profile", "x=1x3"], "--profile"),
    (["build-engine", "{tmp}/none.plan.json"], "does not exist"),
])
def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                                needle: str) -> None:
    constant_weight_model(tmp_path / "ext.onnx")
    (tmp_path / "junk.onnx").write_text("not a model")
    assert main([a.format(tmp=tmp_path) for a in args]) == 2
    assert needle in capsys.readouterr().err
