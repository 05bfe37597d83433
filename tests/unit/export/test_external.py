"""ONNX models edgekd did not make: Constant-node weights, dynamic H/W, and `edgekd export` on them."""

from __future__ import annotations

import glob
import importlib.util
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekd.errors import ConfigError
from edgekd.export.external import (
    concrete_feeds,
    constants_to_initializers,
    onnx_io_spec,
    prepare_external_onnx,
)


def constant_weight_model(path: Path) -> Path:
    """x[N,3,H,W] -> Conv(weights in Constant nodes) -> Relu -> Mul(Constant scalar) -> y[N,4,H,W] (paddle2onnx style)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.2, (4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.1, (4,)).astype(np.float32), "b")
    nodes = [
        helper.make_node("Constant", [], ["w"], value=w),
        helper.make_node("Constant", [], ["b"], value=b),
        helper.make_node("Constant", [], ["s"], value_float=0.5),
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Mul", ["r", "s"], ["y"]),
    ]
    g = helper.make_graph(nodes, "ext", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, "h", "w"])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return path


def _run(model: Path | bytes, x: np.ndarray) -> np.ndarray:
    src = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(src, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_constants_become_initializers_and_outputs_stay(tmp_path: Path) -> None:
    path = constant_weight_model(tmp_path / "ext.onnx")
    proto = onnx.load(str(path))
    assert constants_to_initializers(proto) == 3
    assert not any(n.op_type == "Constant" for n in proto.graph.node)
    assert {i.name for i in proto.graph.initializer} == {"w", "b", "s"}
    x = np.random.default_rng(1).uniform(size=(1, 3, 10, 14)).astype(np.float32)
    np.testing.assert_array_equal(_run(proto.SerializeToString(), x), _run(path, x))


def test_io_spec_keeps_dynamic_hw_as_names(tmp_path: Path) -> None:
    spec = onnx_io_spec(onnx.load(str(constant_weight_model(tmp_path / "ext.onnx"))))
    assert spec.inputs[0].shape == ("n", 3, "h", "w") and spec.outputs[0].shape == ("n", 4, "h", "w")
    feeds = concrete_feeds(spec, {"x": (2, 3, 16, 24)})
    assert feeds["x"].shape == (2, 3, 16, 24)
    assert concrete_feeds(spec)["x"].shape == (1, 3, 64, 64)


def test_prepare_folds_and_verifies(tmp_path: Path) -> None:
    em = prepare_external_onnx(constant_weight_model(tmp_path / "ext.onnx"), input_shapes={"x": (1, 3, 16, 16)})
    assert em.constants_converted == 3 and em.folded and not em.notes
    with pytest.raises(ConfigError, match="'image'"):
        prepare_external_onnx(tmp_path / "ext.onnx", input_shapes={"image": (1, 3, 8, 8)})


def test_not_a_model(tmp_path: Path) -> None:
    bad = tmp_path / "x.onnx"
    bad.write_text("hello")
    with pytest.raises(ConfigError, match="not an ONNX model"):
        prepare_external_onnx(bad)


def _ppocr(kind: str) -> Path:
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("rapidocr-onnxruntime is not installed (pip install rapidocr-onnxruntime)")
    found = sorted(glob.glob(str(Path(spec.submodule_search_locations[0]) / "models" / f"*{kind}*.onnx")))
    if not found:
        pytest.skip(f"no {kind} model inside rapidocr-onnxruntime")
    return Path(found[0])


def test_ppocr_classifier_from_rapidocr(tmp_path: Path) -> None:
    src = _ppocr("cls")
    em = prepare_external_onnx(src, input_shapes={"x": (1, 3, 48, 192)})
    assert em.constants_converted > 100 and em.folded
    assert isinstance(em.spec.inputs[0].shape[2], str) and isinstance(em.spec.inputs[0].shape[3], str)
    x = np.random.default_rng(0).uniform(size=(1, 3, 48, 192)).astype(np.float32)
    np.testing.assert_allclose(_run(em.proto.SerializeToString(), x), _run(src, x), atol=1e-5)
