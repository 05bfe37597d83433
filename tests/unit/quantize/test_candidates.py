"""Which candidates `edgekd optimize` lists for a model and a device, and why the others are skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekd.quantize.candidates import HostFloatSupport, build_candidate, candidate_specs

HOST = {"onnxruntime": ["fp32", "int8"], "openvino": ["fp32", "bf16", "int8"]}
F32_CPU = HostFloatSupport("f32", ("FP32", "INT8"))
BF16_CPU = HostFloatSupport("bf16", ("FP32", "BF16", "INT8"))


def _by(specs):  # type: ignore[no-untyped-def]
    return {s.name: s for s in specs}


def test_cnn_on_f32_cpu(tiny_onnx: Path) -> None:
    by = _by(candidate_specs(tiny_onnx, HOST, gpu=False, host=F32_CPU))
    assert by["ov-default(f32)"].runtime_precision == "fp32" and by["ov-default(f32)"].skip is None
    assert "no FP16" in (by["ov-fp16"].skip or "")
    assert "CNN" in (by["ort-int8-dynamic"].skip or "")
    assert "GPU" in (by["trt-fp16"].skip or "") and "GPU" in (by["ort-fp16"].skip or "")
    static = [s for s in by.values() if s.kind == "ort-static"]
    assert len(static) == 8 and all(s.skip is None for s in static)
    assert {(s.build["per_channel"], s.build["activation"], s.build["op_types"] is None) for s in static} == {
        (pc, a, allops) for pc in (True, False) for a in ("uint8", "int8") for allops in (True, False)}


def test_bf16_cpu_default_candidate_runs_bf16(tiny_onnx: Path) -> None:
    by = _by(candidate_specs(tiny_onnx, HOST, gpu=False, host=BF16_CPU))
    assert by["ov-default(bf16)"].runtime_precision == "bf16" and by["ov-default(bf16)"].skip is None


def test_device_without_openvino_skips_it(tiny_onnx: Path) -> None:
    by = _by(candidate_specs(tiny_onnx, {"onnxruntime": ["fp32", "int8"]}, gpu=False, host=F32_CPU))
    assert "does not list runtime 'openvino'" in (by["ov-fp32"].skip or "")
    assert by["ort-int8-U8S8-pc-all"].skip is None


def test_without_openvino_installed(tiny_onnx: Path) -> None:
    by = _by(candidate_specs(tiny_onnx, HOST, gpu=False, host=None))
    assert "not installed" in (by["ov-fp32"].skip or "") and "ov-default" not in " ".join(by)


def test_build_failure_is_recorded_not_raised(tiny_onnx: Path, tmp_path: Path) -> None:
    spec = _by(candidate_specs(tiny_onnx, HOST, gpu=False, host=F32_CPU))["ort-int8-U8S8-pc-all"]
    built = build_candidate(spec, tiny_onnx, tmp_path, calib=[])
    assert built.path is None and built.error and "calib" in built.error.lower()


def test_static_build_records_settings(tiny_onnx: Path, tmp_path: Path) -> None:
    spec = _by(candidate_specs(tiny_onnx, HOST, gpu=False, host=F32_CPU))["ort-int8-S8S8-pt-conv-matmul"]
    built = build_candidate(spec, tiny_onnx, tmp_path, calib=[{"x": np.random.default_rng(i).uniform(0, 1, (1, 3, 16, 16)).astype(np.float32)}
                                                                   for i in range(2)])
    assert built.error is None and built.path is not None and built.path.is_file()
    assert built.settings["activation"] == "int8" and built.settings["per_channel"] is False
    assert built.settings["op_types"] == ["Conv", "ConvTranspose", "MatMul", "Gemm"]


@pytest.mark.parametrize("name", ["ov-int8-nncf-ac"])
def test_accuracy_control_can_be_turned_off(tiny_onnx: Path, name: str) -> None:
    by = _by(candidate_specs(tiny_onnx, HOST, gpu=False, host=F32_CPU, accuracy_control=False))
    assert "turned off" in (by[name].skip or "")


def test_tensorrt_on_a_gpu_without_tensorrt(tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "tensorrt" else real(n, *a))
    gpu_dev = {"onnxruntime": ["fp32", "fp16", "int8"], "tensorrt": ["fp16"]}
    by = _by(candidate_specs(tiny_onnx, gpu_dev, gpu=True, host=F32_CPU))
    assert "not installed" in (by["trt-fp16"].skip or "")
    assert by["ort-fp16"].skip is None  # FP16 for ORT is a GPU candidate


@pytest.mark.parametrize("host", [F32_CPU, BF16_CPU])
def test_the_recipe_vocabulary_is_exactly_what_is_built(tiny_onnx: Path, host: HostFloatSupport) -> None:
    """``optimize.candidates`` (config layer) names exactly the candidates this module builds."""
    from edgekd.config.optimize import CANDIDATE_NAMES, candidate_key

    names = [candidate_key(s.name) for s in candidate_specs(tiny_onnx, HOST, gpu=True, host=host)]
    assert sorted(names) == sorted(CANDIDATE_NAMES)
