"""TensorRT build plans (written anywhere) and engine builds (GPU host only)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.errors import ConfigError, DependencyMissingError
from edgekd.export.onnx import export_onnx
from edgekd.export.tensorrt import (
    BuildPlan,
    builder_settings,
    load_npz_batches,
    profile_shapes,
    write_build_plan,
)
from edgekd.export.trt_qdq import check_explicit_int8
from edgekd.fileio import sha256_file
from edgekd.iospec import IOSpec, TensorSpec
from edgekd.quantize.calibration import ModelInput

SPEC = IOSpec((TensorSpec("image", ("batch", 3, 8, 8)),), (TensorSpec("y", ("batch", 2)),))
HAS_TRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    return export_onnx(m, SPEC, tmp_path_factory.mktemp("trt") / "m.onnx", exporter="torchscript").path


def test_profile_for_dynamic_batch_and_fixed_dims() -> None:
    prof = profile_shapes([ModelInput("x", ("batch", 3, 8, 8), "float32")], max_batch=4)
    assert prof == {"x": {"min": [1, 3, 8, 8], "opt": [1, 3, 8, 8], "max": [4, 3, 8, 8]}}


def test_dynamic_hw_needs_a_range_and_the_error_says_how() -> None:
    inp = [ModelInput("x", ("n", 3, "h", "w"), "float32")]
    with pytest.raises(ConfigError) as ei:
        profile_shapes(inp)
    assert "--profile x=" in str(ei.value)
    prof = profile_shapes(inp, ranges={"x": ([1, 3, 32, 32], [1, 3, 64, 96], [2, 3, 128, 256])})
    assert prof["x"]["opt"] == [1, 3, 64, 96]
    assert profile_shapes(inp, shapes={"x": (1, 3, 48, 48)})["x"] == {"min": [1, 3, 48, 48], "opt": [1, 3, 48, 48],
                                                                       "max": [1, 3, 48, 48]}


@pytest.mark.parametrize("ranges, needle", [
    ({"x": ([1, 3, 64, 64], [1, 3, 32, 32], [1, 3, 128, 128])}, "min <= opt <= max"),
    ({"x": ([1, 3, 64], [1, 3, 64], [1, 3, 64])}, "4 dims"),
    ({"z": ([1], [1], [1])}, "'z', which is not an input"),
])
def test_bad_profiles(ranges: dict, needle: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=needle):
        profile_shapes([ModelInput("x", ("n", 3, "h", "w"), "float32")], ranges=ranges)


def test_plan_is_written_with_hash_profile_and_parity_inputs(onnx_model: Path, tmp_path: Path) -> None:
    feeds = [SPEC.dummy_inputs({"batch": 1}, seed=3)]
    path = write_build_plan(onnx_model, tmp_path / "out", precision="fp16", max_batch=8, workspace_mb=512,
                            parity_feeds=feeds)
    plan = BuildPlan.read(path)
    assert plan.onnx == "m.onnx" and plan.onnx_sha256 == sha256_file(tmp_path / "out" / "m.onnx")
    assert plan.profiles == [{"image": {"min": [1, 3, 8, 8], "opt": [1, 3, 8, 8], "max": [8, 3, 8, 8]}}]
    assert (plan.precision, plan.workspace_mb, plan.engine) == ("fp16", 512, "m.fp16.engine")
    assert plan.timing_cache == "m.timing.cache" and not plan.explicit_quantization
    assert plan.parity["compare"] == "allclose" and plan.parity["atol"] >= 1e-2  # FP16 tolerance
    back = load_npz_batches(tmp_path / "out" / plan.parity_feeds)  # type: ignore[operator]
    np.testing.assert_array_equal(back[0]["image"], feeds[0]["image"])


def test_int8_plan_from_fp32_writes_a_symmetric_int8_qdq_model(onnx_model: Path, tmp_path: Path) -> None:
    """INT8 from an FP32 model: edgekd's PTQ writes m.qdq.onnx (int8 zero points, all 0), which passes the checker;
    the plan builds it with INT8 (+FP16 fallback) and no calibrator (TensorRT 10 explicit quantization)."""
    import onnx
    from onnx import numpy_helper

    calib = [SPEC.dummy_inputs({"batch": 1}, seed=s) for s in range(3)]
    plan = BuildPlan.read(write_build_plan(onnx_model, tmp_path, precision="int8", calib=calib))
    assert plan.onnx == "m.qdq.onnx" and plan.explicit_quantization and plan.engine == "m.int8.engine"
    assert plan.quantized_by is not None and plan.quantized_by["symmetric"] is True
    assert plan.quantized_by["calib_batches"] == 3 and plan.quantized_by["nodes_quantized"] >= 2
    proto = onnx.load(str(tmp_path / "m.qdq.onnx"))
    assert check_explicit_int8(proto) == []
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    zps = [inits[n.input[2]] for n in proto.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(zps) >= 6 and all(z.dtype == np.int8 and not z.any() for z in zps)
    settings = builder_settings(plan)
    assert settings.flags == ["INT8", "FP16"] and settings.calibrator is None
    assert settings.workspace_bytes == 1024 << 20 and settings.profiles == plan.profiles
    assert not any(k.startswith("calibration") for k in plan.to_json())
    # measured, not judged, with the task's comparison (here the default allclose)
    assert plan.parity["judged"] is False and plan.parity["compare"] == "allclose"
    # numerics: symmetric int8 gives up one bit of the activations' range (about 6 dB of SQNR) against ONNX
    # Runtime's default asymmetric uint8 activations, and no more
    import onnxruntime as ort

    from edgekd.quantize.ort_static import quantize_onnx_static

    quantize_onnx_static(onnx_model, tmp_path / "u8.onnx", calib)
    x = {"image": np.concatenate([SPEC.dummy_inputs({"batch": 1}, seed=100 + s)["image"] for s in range(32)])}

    def sqnr(path: Path) -> float:
        y = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, x)[0]
        return float(10 * np.log10((ref ** 2).sum() / ((y - ref) ** 2).sum()))

    ref = ort.InferenceSession(str(onnx_model), providers=["CPUExecutionProvider"]).run(None, x)[0]
    sym, u8 = sqnr(tmp_path / "m.qdq.onnx"), sqnr(tmp_path / "u8.onnx")
    assert sym > 3.0 and sym >= u8 - 6.02, (sym, u8)


def test_int8_from_fp32_without_calibration_inputs_says_how(onnx_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--calib DIR") as info:
        write_build_plan(onnx_model, tmp_path / "w", precision="int8")
    assert "Q/DQ" in str(info.value)


@pytest.mark.parametrize("precision, flags", [("fp32", []), ("fp16", ["FP16"])])
def test_fp32_and_fp16_builds_keep_their_flags(onnx_model: Path, tmp_path: Path, precision: str,
                                               flags: list[str]) -> None:
    plan = BuildPlan.read(write_build_plan(onnx_model, tmp_path, precision=precision))
    assert builder_settings(plan).flags == flags and plan.onnx == "m.onnx"
    assert plan.parity["judged"] is True and plan.parity["compare"] == "allclose"


def test_an_int8_plan_without_qdq_is_refused_before_tensorrt(onnx_model: Path, tmp_path: Path) -> None:
    """A plan edited to INT8 over the FP32 model would need the deprecated implicit calibration: refused."""
    from edgekd.export.tensorrt import build_engine

    path = write_build_plan(onnx_model, tmp_path)
    data = json.loads(path.read_text())
    data["precision"] = "int8"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="explicit quantization"):
        build_engine(path)


def test_a_plan_from_the_calibrator_era_is_refused_with_the_fix(tmp_path: Path) -> None:
    old = tmp_path / "old.plan.json"
    old.write_text(json.dumps({"schema": "edgekd.trt-plan/1", "calibration_cache": "m.calib.cache"}))
    with pytest.raises(ConfigError, match="implicit calibration") as info:
        BuildPlan.read(old)
    assert "edgekd export" in str(info.value)


def test_bad_plans_are_config_errors(tmp_path: Path, onnx_model: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        BuildPlan.read(tmp_path / "none.plan.json")
    bad = tmp_path / "bad.plan.json"
    bad.write_text(json.dumps({"schema": "other"}))
    with pytest.raises(ConfigError, match="schema"):
        BuildPlan.read(bad)
    path = write_build_plan(onnx_model, tmp_path / "p")
    data = json.loads(path.read_text())
    data["precison"] = "fp16"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="precison"):
        BuildPlan.read(path)
    with pytest.raises(ConfigError, match="--precision 'int4'"):
        write_build_plan(onnx_model, tmp_path / "q", precision="int4")


@pytest.mark.parametrize("field, value", [
    ("onnx", "../model.onnx"), ("onnx", "/etc/passwd"), ("engine", "../../x.engine"), ("engine", "/tmp/x.engine"),
    ("timing_cache", "sub/timing.cache"), ("parity_feeds", ".."), ("parity_feeds", "..\\feeds.npz"),
    ("parity_feeds", ""), ("engine", 7), ("onnx", None)])
def test_plan_file_names_stay_in_the_plan_folder(tmp_path: Path, onnx_model: Path, field: str, value: object) -> None:
    """Issue 20: build-engine joined plan-supplied names onto the plan folder without containment."""
    path = write_build_plan(onnx_model, tmp_path / "p")
    data = json.loads(path.read_text())
    data[field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=f"{field} .*plain file name"):
        BuildPlan.read(path)


def test_dynamic_int8_onnx_is_refused_before_anything_is_written(tmp_path: Path, onnx_model: Path) -> None:
    """quantize.mode=dynamic writes MatMulInteger/DynamicQuantizeLinear, which TensorRT cannot parse: the plan step
    says so on this host instead of the build failing on the board."""
    import onnx
    from onnx import TensorProto, helper

    from edgekd.quantize.ort_dynamic import quantize_onnx_dynamic

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 4], [0.1 * i for i in range(32)])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "mm", [x], [y], [w])
    fp32 = tmp_path / "mm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(fp32))
    dyn = tmp_path / "mm.int8.onnx"
    quantize_onnx_dynamic(fp32, dyn, preprocess=False)
    with pytest.raises(ConfigError, match="TensorRT cannot parse") as info:
        write_build_plan(dyn, tmp_path / "plan", precision="int8")
    assert "MatMulInteger" in str(info.value) and "student.onnx" in str(info.value)
    assert not (tmp_path / "plan").exists()
    write_build_plan(fp32, tmp_path / "plan32", precision="fp16")  # the FP32 model is fine


def test_build_refuses_a_changed_onnx(tmp_path: Path, onnx_model: Path) -> None:
    from edgekd.export.tensorrt import build_engine

    path = write_build_plan(onnx_model, tmp_path / "p")
    (tmp_path / "p" / "m.onnx").write_bytes(b"changed")
    with pytest.raises(ConfigError, match="SHA-256"):
        build_engine(path)


@pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed: the missing-dependency path cannot be exercised")
def test_build_without_tensorrt_names_the_extra(tmp_path: Path, onnx_model: Path) -> None:
    from edgekd.export.tensorrt import build_engine

    with pytest.raises(DependencyMissingError) as ei:
        build_engine(write_build_plan(onnx_model, tmp_path / "p"))
    assert "edgekd[tensorrt]" in str(ei.value)


@pytest.mark.gpu
@pytest.mark.skipif(not (HAS_TRT and torch.cuda.is_available()),
                    reason="needs tensorrt and an NVIDIA GPU (the Jetson/GPU host); absent here")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_engine_builds_with_timing_cache_and_passes_parity(tmp_path: Path, onnx_model: Path, precision: str) -> None:
    from edgekd.export.tensorrt import build_engine

    calib = [SPEC.dummy_inputs({"batch": 1}, seed=s) for s in range(8)] if precision == "int8" else None
    plan = write_build_plan(onnx_model, tmp_path, precision=precision, calib=calib,
                            parity_feeds=[SPEC.dummy_inputs({"batch": 1}, seed=1)])
    res = build_engine(plan)  # INT8: the symmetric Q/DQ model, no calibrator
    assert res.engine.is_file() and res.timing_cache.is_file() and res.parity is not None
    assert res.parity["judged"] is (precision != "int8")
    if precision != "int8":
        assert res.parity["passed"]
    again = build_engine(plan)  # the timing cache is reused
    assert again.engine.is_file()




def test_uint8_qdq_is_refused_and_symmetric_int8_qat_qdq_is_planned(tmp_path: Path, onnx_model: Path) -> None:
    """TensorRT parses only symmetric signed INT8 Q/DQ: ONNX Runtime's default static QDQ (uint8 activations)
    and a QAT model with uint8 activations are refused on this host, naming the node and the fix; a QAT model
    trained with distill.qat.activation=int8 exports zero points of 0 only and gets its plan."""
    import onnx

    from edgekd.quantize.fake_quant import prepare_qat
    from edgekd.quantize.ort_static import quantize_onnx_static

    rng = np.random.default_rng(0)
    calib = [{"image": rng.random((1, 3, 8, 8), dtype=np.float32)} for _ in range(4)]
    ptq = tmp_path / "ptq.onnx"
    quantize_onnx_static(onnx_model, ptq, calib, preprocess=False)
    with pytest.raises(ConfigError, match="zero point dtype uint8") as info:
        write_build_plan(ptq, tmp_path / "p1", precision="int8")
    assert "QuantizeLinear 'image_QuantizeLinear'" in str(info.value)
    assert "distill.qat.activation=int8" in str(info.value) and not (tmp_path / "p1").exists()
    problems = check_explicit_int8(onnx.load(str(ptq)))
    assert {p.node for p in problems} >= {"image_QuantizeLinear", "image_DequantizeLinear"}
    assert any("int32" in p.problem for p in problems)  # ORT's quantized biases: int32 DequantizeLinear

    def qat_export(activation: str) -> Path:
        torch.manual_seed(0)
        m = prepare_qat(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)),
                        activation=activation).eval()
        with torch.no_grad():
            m(torch.rand(4, 3, 8, 8))  # observers set the ranges
        return export_onnx(m, SPEC, tmp_path / f"qat_{activation}.onnx").path

    assert check_explicit_int8(onnx.load(str(qat_export("uint8"))))  # quint8 activations: refused
    sym = qat_export("int8")
    assert check_explicit_int8(onnx.load(str(sym))) == []
    plan = write_build_plan(sym, tmp_path / "p2", precision="int8")
    read = BuildPlan.read(plan)
    assert read.onnx == "qat_int8.onnx" and read.quantized_by is None and builder_settings(read).calibrator is None
    with pytest.raises(ConfigError, match="--precision int8"):  # Q/DQ builds as INT8 only: not silently
        write_build_plan(sym, tmp_path / "p3", precision="fp16")
    import onnxruntime as ort  # the symmetric model runs in ONNX Runtime too

    x = rng.random((2, 3, 8, 8), dtype=np.float32)
    y = ort.InferenceSession(str(sym), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    assert y.shape == (2, 2) and np.isfinite(y).all()
    with pytest.raises(ConfigError, match="activation='fp8'"):
        prepare_qat(nn.Linear(2, 2), activation="fp8")


@pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed: the missing-dependency path cannot be exercised")
def test_an_int8_plan_passes_every_check_before_tensorrt_and_a_swapped_model_does_not(
        tmp_path: Path, onnx_model: Path) -> None:
    """build-engine re-checks the Q/DQ model on the target: the plan edgekd wrote gets as far as importing
    TensorRT; an asymmetric model swapped in (its SHA-256 updated too) is refused naming the node."""
    from edgekd.export.tensorrt import build_engine
    from edgekd.quantize.ort_static import quantize_onnx_static

    calib = [SPEC.dummy_inputs({"batch": 1}, seed=s) for s in range(3)]
    plan = write_build_plan(onnx_model, tmp_path / "p", precision="int8", calib=calib)
    with pytest.raises(DependencyMissingError, match=r"edgekd\[tensorrt\]"):
        build_engine(plan)
    quantize_onnx_static(onnx_model, tmp_path / "p" / "m.qdq.onnx", calib)  # ORT's default: uint8 activations
    data = json.loads(plan.read_text())
    data["onnx_sha256"] = sha256_file(tmp_path / "p" / "m.qdq.onnx")
    plan.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="not symmetric INT8 Q/DQ") as info:
        build_engine(plan)
    assert "QuantizeLinear 'image_QuantizeLinear'" in str(info.value)
