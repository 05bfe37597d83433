"""ONNX Runtime backend: the shared conformance tests, plus providers, options and unsupported ops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from support import runtime_conformance as C

from edgekd.errors import BackendUnavailableError, ConfigError, ProfileError
from edgekd.runtime import SessionOptions, get_runtime


class TestOnnxRuntime(C.RuntimeConformance):
    runtime = "onnxruntime"

    def test_settings_name_providers_and_sequential(self, session) -> None:  # type: ignore[no-untyped-def]
        s = session.settings()
        assert s["providers"] == ["CPUExecutionProvider"]
        assert s["inter_op_threads"] == 1
        assert s["execution_mode"] == "sequential"
        assert s["graph_optimization_level"] == "all"
        assert s["precision"] == "fp32"


def _custom_op_model(path: Path) -> Path:
    node = helper.make_node("FancyUnknownOp", ["x"], ["y"], domain="com.example")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def test_unsupported_op_names_op_and_runtime(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError) as ei:
        get_runtime("onnxruntime").load(_custom_op_model(tmp_path / "c.onnx"), SessionOptions())
    msg = str(ei.value)
    assert "FancyUnknownOp" in msg and "onnxruntime" in msg


def test_missing_provider_lists_available(tmp_path: Path) -> None:
    path = C.export_fixture_onnx(tmp_path / "m.onnx")
    with pytest.raises(BackendUnavailableError) as ei:
        get_runtime("onnxruntime").load(path, SessionOptions(providers=("NoSuchExecutionProvider",)))
    assert "CPUExecutionProvider" in str(ei.value) and "NoSuchExecutionProvider" in str(ei.value)


def test_cuda_request_on_cpu_build_is_backend_unavailable(tmp_path: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime build has CUDA; the refusal path cannot be exercised")
    path = C.export_fixture_onnx(tmp_path / "m.onnx")
    with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider"):
        get_runtime("onnxruntime").load(path, SessionOptions(device="cuda"))


def test_not_a_model_is_profile_error(tmp_path: Path) -> None:
    bad = tmp_path / "junk.onnx"
    bad.write_bytes(b"this is not protobuf")
    with pytest.raises(ProfileError, match="junk.onnx"):
        get_runtime("onnxruntime").load(bad, SessionOptions())


@pytest.mark.parametrize("extra, needle", [({"graph_optimization_level": "max"}, "graph_optimization_level"),
                                           ({"optimisation": "all"}, "optimisation")])
def test_bad_session_options(tmp_path: Path, extra: dict, needle: str) -> None:  # type: ignore[type-arg]
    path = C.export_fixture_onnx(tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match=needle):
        get_runtime("onnxruntime").load(path, SessionOptions(extra=extra))


def test_default_threads_and_unnamed_dynamic_dims(tmp_path: Path) -> None:
    # an unnamed dynamic dim (dim_value unset) gets a name, so check_feeds treats it as dynamic
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    m = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "r.onnx"))
    s = get_runtime("onnxruntime").load(tmp_path / "r.onnx", SessionOptions())
    assert isinstance(s.inputs[0].shape[0], str)
    assert str(s.settings()["threads"]).startswith("default")
    out = s.run({"x": np.array([[-1, 2, -3, 4]] * 3, np.float32)})
    np.testing.assert_array_equal(out[0], [[0, 2, 0, 4]] * 3)
