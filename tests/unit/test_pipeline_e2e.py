"""Every shipped recipe runs end to end through the CLI on its tiny `smoke` preset:
train teacher, students, export, INT8, evaluate, profile, report, manifest."""

import json
import math
from pathlib import Path

import pytest

from edgekd.cli import main
from edgekd.paths import recipes_dir
from edgekd.tasks.recipe import load_recipe

RECIPES = sorted(p.stem for p in recipes_dir().glob("*.yaml"))
VARIANTS = ("teacher", "student_alone", "student_kd", "onnx_fp32", "onnx_int8")


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_has_a_smoke_preset(recipe: str) -> None:
    r = load_recipe(recipe, preset="smoke")
    assert r.preset == "smoke"


# gaze's smoke run trains an MAE-pretrained teacher (~60 s): slow; the other three stay in the default suite
@pytest.mark.parametrize("recipe", [pytest.param(r, marks=pytest.mark.slow) if r == "gaze" else r for r in RECIPES])
def test_distill_and_export_smoke(recipe: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(["distill-and-export", recipe, "--preset", "smoke", "--out", str(out), "--no-progress",
                 "--set", "teacher.cache=false"])
    assert code in (0, 1, 3), "0 (budget passed), 1 (failed), 3 (inconclusive: contended CPUs): a completed run"
    report = json.loads((out / "report.json").read_text())
    assert report["recipe"] == recipe
    assert set(report["metric"]) >= {"name", "lower_is_better"}
    assert set(report["variants"]) >= set(VARIANTS)
    for v in VARIANTS:
        assert isinstance(report["variants"][v]["metric"], float)
    for v in ("teacher", "student_alone", "student_kd"):
        if report["variants"][v].get("params") is not None:
            assert report["variants"][v]["params"] > 0
    for v in ("onnx_fp32", "onnx_int8"):
        art = report["variants"][v]
        assert (out / art["path"]).is_file()
        assert len(art["sha256"]) == 64
        assert set(art["latency_ms"]) >= {"p50", "p90", "p99"}
        assert art["latency_ms"]["p50"] > 0
    shipped = load_recipe(recipe).export.formats
    assert sorted(report["exports"]) == sorted(f for f in shipped if f != "onnx")
    import onnx

    # the shipped quantize.mode decides which INT8 graph is written: QDQ (static) or run-time quantized MatMuls
    ops = {n.op_type for n in onnx.load(str(out / report["variants"]["onnx_int8"]["path"])).graph.node}
    if load_recipe(recipe).quantize.mode == "dynamic":
        assert "DynamicQuantizeLinear" in ops and "QuantizeLinear" not in ops
    else:
        assert "QuantizeLinear" in ops and "DynamicQuantizeLinear" not in ops
    manifest = json.loads((out / "manifest.json").read_text())
    from edgekd.fileio import sha256_file

    for a in manifest["artifacts"]:
        assert sha256_file(out / a["path"]) == a["sha256"], a["path"]
    assert manifest["recipe_hash"] == report["recipe_hash"]
    assert (out / "report.md").read_text().startswith("# edgekd report")
    assert not list(out.rglob("*.tmp*")), "no half-written files"


def test_bad_override_exits_2_naming_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["distill-and-export", "--set", "train.epochs=oops"])
    assert code == 2
    err = capsys.readouterr().err
    assert "train.epochs" in err and "oops" in err


def test_dynamic_int8_on_another_runtime_exits_2_naming_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["distill-and-export", "gaze", "--set", "quantize.mode=dynamic", "--set", "quantize.runtime=openvino",
                 "--set", "quantize.max_metric_drop=0.5"])
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "quantize.runtime='openvino'" in err and "quantize.max_metric_drop" in err
    assert "quantize.mode=static" in err  # the fix is named
    assert main(["distill-and-export", "gaze", "--set", "quantize.mode=dynamc"]) == 2
    err = capsys.readouterr().err
    assert "quantize.mode" in err and "dynamc" in err


def test_unknown_recipe_and_device_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["distill-and-export", "gazee"]) == 2
    assert "Did you mean 'gaze'" in capsys.readouterr().err
    assert main(["distill-and-export", "gaze", "--device", "jetson-orin"]) == 2
    assert "Did you mean" in capsys.readouterr().err


@pytest.mark.slow  # a whole pipeline run: 40-400 s on 2 cores
def test_qat_run_ships_its_own_int8_export_and_no_ptq(tmp_path: Path) -> None:
    out = tmp_path / "qat"
    code = main(["distill-and-export", "gaze", "--preset", "smoke", "--out", str(out), "--no-progress",
                 "--set", "teacher.cache=false", "--set", "distill.qat=true", "--set", "distill.qat.export=qdq"])
    assert code in (0, 1, 3)
    report = json.loads((out / "report.json").read_text())
    assert "onnx_int8" in report["variants"] and "onnx_fp32" not in report["variants"]
    assert not (out / "student.onnx").exists()
    steps = [s["step"] for s in json.loads((out / "manifest.json").read_text())["steps"]]
    assert "export_onnx_qat" in steps and "quantize_int8" not in steps
    # uint8 activations and no FP32 export: TensorRT (which parses only symmetric int8 Q/DQ) gets nothing, and says why
    assert "distill.qat.activation=int8" in report["exports"]["tensorrt"]["skipped"]
    import onnx

    ops = {n.op_type for n in onnx.load(str(out / "student.int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


@pytest.mark.slow  # a whole pipeline run: 40-400 s on 2 cores
def test_max_metric_drop_runs_the_accuracy_aware_fallback_on_val(tmp_path: Path) -> None:
    out = tmp_path / "fb"
    # a drop of 0 forces layers back to FP32 until INT8 matches FP32 on the val split (or the best reached)
    code = main(["distill-and-export", "gaze", "--preset", "smoke", "--out", str(out), "--no-progress",
                 "--set", "teacher.cache=false", "--set", "quantize.max_metric_drop=0.0",
                 "--set", "quantize.mode=static",
                 "--set", "profile.enabled=false"])
    assert code in (0, 1, 3)
    steps = json.loads((out / "manifest.json").read_text())["steps"]
    (q,) = [s for s in steps if s["step"] == "quantize_int8"]
    assert q["fallback"] is True and q["split"] == "val" and q["evaluations"] >= 2
    assert q["within_tolerance"] == (q["metric_final"] - q["metric_fp32"] <= 0.0)
    report = json.loads((out / "report.json").read_text())
    assert isinstance(report["summary"]["int8_within_tolerance"], bool)


def test_export_formats_write_openvino_ir_and_a_tensorrt_plan(tmp_path: Path) -> None:
    """export.formats beyond ONNX: an OpenVINO IR checked against torch, and a TensorRT build plan at the
    precision the device's budget asks of TensorRT (a Jetson: INT8, so edgekd writes the symmetric INT8 Q/DQ
    model TensorRT builds: explicit quantization, no calibrator)."""
    out = tmp_path / "fmt"
    code = main(["distill-and-export", "segmentation", "--preset", "smoke", "--device", "jetson-orin-nano",
                 "--out", str(out), "--no-progress", "--set", "teacher.cache=false",
                 "--set", "export.formats=[onnx,openvino,tensorrt]", "--set", "profile.enabled=false"])
    assert code in (0, 1, 3)
    report = json.loads((out / "report.json").read_text())
    ex = report["exports"]
    assert ex["openvino"]["files"] == ["openvino/student.xml", "openvino/student.bin"]
    assert ex["openvino"]["parity_passed"] is True
    assert ex["tensorrt"]["precision"] == "int8"
    assert {"tensorrt/student.qdq.onnx", "tensorrt/student.plan.json"} <= set(ex["tensorrt"]["files"])
    plan = json.loads((out / "tensorrt" / "student.plan.json").read_text())
    assert plan["precision"] == "int8" and plan["explicit_quantization"] is True
    assert plan["onnx"] == "student.qdq.onnx" and plan["quantized_by"]["symmetric"] is True
    # segmentation: the task's INT8 comparison (argmax agreement), measured, not judged
    assert plan["parity"]["compare"] == "argmax" and plan["parity"]["judged"] is False
    import onnx

    from edgekd.export.trt_qdq import check_explicit_int8

    assert check_explicit_int8(onnx.load(str(out / "tensorrt" / "student.qdq.onnx"))) == []
    assert plan["profiles"][0]["image"]["opt"][0] == 1 and plan["profiles"][0]["image"]["max"][0] == 8
    manifest = {a["path"]: a for a in json.loads((out / "manifest.json").read_text())["artifacts"]}
    from edgekd.fileio import sha256_file

    for rel in (*ex["openvino"]["files"], *ex["tensorrt"]["files"]):
        assert manifest[rel]["sha256"] == sha256_file(out / rel)
    assert "## Other formats" in (out / "report.md").read_text()
    # the same folder again without the extra formats: nothing stale is left to be mistaken for this run's
    main(["distill-and-export", "segmentation", "--preset", "smoke", "--out", str(out), "--no-progress",
          "--set", "teacher.cache=false", "--set", "profile.enabled=false", "--set", "export.formats=[onnx]"])
    assert not list((out / "openvino").glob("student.*")) and not list((out / "tensorrt").glob("student.*"))


@pytest.mark.slow  # a whole pipeline run: 40-400 s on 2 cores
def test_qat_finetune_run_keeps_fp32_and_ships_a_4bit_weight_int8_export(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from edgekd.quantize.fake_quant import is_qat
    from edgekd.tasks.run_student import load_run_student

    out = tmp_path / "qatft"
    code = main(["distill-and-export", "gaze", "--preset", "smoke", "--out", str(out), "--no-progress",
                 "--set", "teacher.cache=false", "--set", "distill.qat.mode=finetune",
                 "--set", "distill.qat.weight_bits=4", "--set", "distill.qat.export=qdq"])
    assert code in (0, 1, 3)
    report = json.loads((out / "report.json").read_text())
    assert {"onnx_fp32", "onnx_int8", "student_qat"} <= set(report["variants"])
    steps = [s["step"] for s in json.loads((out / "manifest.json").read_text())["steps"]]
    assert "qat_finetune" in steps and "quantize_int8" not in steps and "parity_fp32" in steps
    assert (out / "student.onnx").is_file() and (out / "student_qat.safetensors").is_file()
    trt = report["exports"]["tensorrt"]  # uint8 QAT activations: TensorRT calibrates the FP32 model instead
    assert "tensorrt/student.onnx" in trt["files"] and "activation=int8" in trt["note"]
    # every quantized weight holds 4-bit levels: round(w / scale) is a multiple of 2^(8-4) within -128..112
    m = onnx.load(str(out / "student.int8.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in m.graph.node if n.op_type == "Constant"}
    values = inits | consts
    checked = 0
    for node in m.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] not in inits or inits[node.input[0]].ndim < 2:
            continue
        w, scale = inits[node.input[0]], values[node.input[1]]
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * w.ndim
        if scale.size > 1:
            shape[axis] = -1
        k = np.round(w / scale.reshape(shape))
        assert np.all(k % 16 == 0) and k.min() >= -128 and k.max() <= 112, node.name
        checked += 1
    assert checked >= 10
    run = load_run_student(out, weights="student_qat.safetensors")  # folded, fake-quant, 4-bit: reloads
    assert is_qat(run.module)
    # and `edgekd export RUN --weights student_qat.safetensors` writes it as QDQ
    assert main(["export", str(out), "--format", "onnx", "--out", str(tmp_path / "qat.onnx"),
                 "--weights", "student_qat.safetensors"]) == 0
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(tmp_path / "qat.onnx")).graph.node)
    assert main(["export", str(out / "student.onnx"), "--format", "onnx", "--out", str(tmp_path / "x.onnx"),
                 "--weights", "student_qat.safetensors"]) == 2  # --weights is for run folders


@pytest.mark.slow  # a whole pipeline run: 40-400 s on 2 cores
def test_qat_requantize_export_is_ort_static_qdq_of_the_qat_weights(tmp_path: Path) -> None:
    import onnx

    out = tmp_path / "qatrq"
    code = main(["distill-and-export", "gaze", "--preset", "smoke", "--out", str(out), "--no-progress",
                 "--set", "teacher.cache=false", "--set", "distill.qat=true"])  # export: auto = requantize (uint8)
    assert code in (0, 1, 3)
    steps = {s["step"]: s for s in json.loads((out / "manifest.json").read_text())["steps"]}
    assert "requantize" in steps["export_onnx_qat"] and "quantize_int8" not in steps
    assert (out / "train" / "student_qat.float.onnx").is_file()
    report = json.loads((out / "report.json").read_text())
    assert math.isfinite(report["variants"]["onnx_int8"]["metric"])
    # ONNX Runtime's own QDQ layout (uint8 activations, every quantizable op), not the fake-quant graph
    from edgekd.export.trt_qdq import check_explicit_int8

    m = onnx.load(str(out / "student.int8.onnx"))
    assert check_explicit_int8(m) and any(n.op_type == "QuantizeLinear" for n in m.graph.node)


@pytest.mark.slow
@pytest.mark.openvino
def test_openvino_int8_ir_is_checked_evaluated_profiled_and_listed(tmp_path: Path) -> None:
    """quantize.runtime=openvino writes student.int8.xml/.bin; the run treats it as its INT8 artifact."""
    pytest.importorskip("openvino", reason="needs the openvino extra")
    pytest.importorskip("nncf", reason="needs nncf for OpenVINO post-training INT8")
    out = tmp_path / "ov"
    code = main(["distill-and-export", "gaze", "--preset", "smoke", "--out", str(out), "--no-progress",
                 "--set", "teacher.cache=false", "--set", "quantize.runtime=openvino", "--set", "quantize.mode=static",
                 "--set", "export.formats=[onnx]"])
    assert code in (0, 1, 3)
    report = json.loads((out / "report.json").read_text())
    ov = report["variants"]["openvino_int8"]
    assert ov["runtime"] == "openvino" and ov["precision"] == "int8" and ov["path"] == "student.int8.xml"
    assert math.isfinite(ov["metric"]) and "openvino_int8" in report["parity"]
    assert "openvino_int8" in report["profiles"] and (out / "profile" / "openvino_int8.json").is_file()
    assert report["budget"]["variant"] == "openvino_int8"
    listed = {a["path"] for a in json.loads((out / "manifest.json").read_text())["artifacts"]}
    assert {"student.onnx", "student.int8.xml", "student.int8.bin", "report_tradeoff.png"} <= listed
    assert not (out / "student.int8.onnx").exists()


def test_a_contended_budget_exits_3_inconclusive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import edgekd.pipeline as pipeline_pkg
    from edgekd.pipeline.run import PipelineResult

    report = {"inputs": {}, "budget": {"verdict": "INCONCLUSIVE"}}
    monkeypatch.setattr(pipeline_pkg, "run_pipeline", lambda *a, **k: PipelineResult(tmp_path, report, None))
    monkeypatch.setattr("edgekd.pipeline.report.render_markdown", lambda rep, **k: "")
    assert main(["distill-and-export", "gaze", "--out", str(tmp_path), "--no-progress"]) == 3
    assert "INCONCLUSIVE" in capsys.readouterr().out
