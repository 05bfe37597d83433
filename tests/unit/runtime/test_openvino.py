"""OpenVINO backend: the shared conformance tests on an .onnx file and on an IR, precision reporting."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper
from support import runtime_conformance as C

from edgekd.errors import BackendUnavailableError, ConfigError, ProfileError
from edgekd.runtime import SessionOptions, get_runtime

pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install 'edgekd[openvino]')")
pytestmark = pytest.mark.openvino



class TestOpenVinoOnnx(C.RuntimeConformance):
    runtime = "openvino"

    def test_fp32_is_forced_and_reported(self, session) -> None:  # type: ignore[no-untyped-def]
        s = session.settings()
        assert s["inference_precision"] == "f32"
        assert s["performance_hint"] == "LATENCY"
        assert s["device"] == "CPU"


class TestOpenVinoIR(C.RuntimeConformance):
    runtime = "openvino"

    def make_artifact(self, folder: Path, model):  # type: ignore[no-untyped-def]
        import openvino as ov

        onnx_path = C.export_fixture_onnx(folder / "fixture.onnx", model)
        ov.save_model(ov.convert_model(str(onnx_path)), str(folder / "fixture.xml"), compress_to_fp16=False)
        return folder / "fixture.xml"

    def missing_artifact(self, folder: Path) -> Path:
        return folder / "nothing.xml"


def test_ir_without_bin_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "m.xml").write_text("<net/>")
    with pytest.raises(ProfileError, match="m.bin"):
        get_runtime("openvino").load(tmp_path / "m.xml", SessionOptions())


def test_unsupported_op_names_op_and_runtime(tmp_path: Path) -> None:
    node = helper.make_node("FancyUnknownOp", ["x"], ["y"], domain="com.example")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "c.onnx"))
    with pytest.raises(BackendUnavailableError) as ei:
        get_runtime("openvino").load(tmp_path / "c.onnx", SessionOptions())
    assert "FancyUnknownOp" in str(ei.value) and "openvino" in str(ei.value)


def test_unavailable_device_and_bad_options(tmp_path: Path) -> None:
    import openvino as ov

    path = C.export_fixture_onnx(tmp_path / "m.onnx")
    if "NPU" not in ov.Core().available_devices:
        with pytest.raises(BackendUnavailableError, match="NPU"):
            get_runtime("openvino").load(path, SessionOptions(device="npu"))
    with pytest.raises(ConfigError) as ei:
        get_runtime("openvino").load(path, SessionOptions(precision="fp8", hint="fast"))
    assert "precision 'fp8'" in str(ei.value) and "hint 'fast'" in str(ei.value)
