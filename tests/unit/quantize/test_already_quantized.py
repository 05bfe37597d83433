"""Post-training quantization refuses a graph that is already quantized (a QAT student's QDQ
export): quantizing it again stacks a second set of scales and corrupts the outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekd.errors import QuantizationError
from edgekd.quantize.ort_dynamic import quantize_onnx_dynamic
from edgekd.quantize.ort_static import check_not_quantized, quantize_onnx_static


def _model(path: Path, qdq: bool) -> Path:
    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32), "w")
    s = numpy_helper.from_array(np.array(0.02, np.float32), "s")
    z = numpy_helper.from_array(np.array(128, np.uint8), "z")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"])] if qdq else []
    nodes.append(helper.make_node("MatMul", ["xd" if qdq else "x", "w"], ["y"]))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [w, s, z])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_static_and_dynamic_refuse_a_qdq_model(tmp_path: Path) -> None:
    qdq = _model(tmp_path / "qdq.onnx", qdq=True)
    calib = [{"x": np.ones((1, 4), np.float32)}]
    with pytest.raises(QuantizationError, match=r"already quantized \(it holds DequantizeLinear x1, QuantizeLinear x1\)"):
        quantize_onnx_static(qdq, tmp_path / "q.onnx", calib)
    with pytest.raises(QuantizationError, match="already quantized"):
        quantize_onnx_dynamic(qdq, tmp_path / "d.onnx")
    assert not (tmp_path / "q.onnx").exists() and not (tmp_path / "d.onnx").exists()


def test_float_model_passes_the_check(tmp_path: Path) -> None:
    check_not_quantized(_model(tmp_path / "f.onnx", qdq=False))  # raises nothing
    res = quantize_onnx_static(tmp_path / "f.onnx", tmp_path / "q.onnx", [{"x": np.ones((1, 4), np.float32)}])
    with pytest.raises(QuantizationError, match="already quantized"):
        check_not_quantized(res.path)  # and the INT8 it makes is recognised as quantized
