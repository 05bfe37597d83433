"""`edgekd quantize` leaves nothing in the current directory but what it was asked to write (issue 21).

ONNX Runtime's symbolic shape inference (run by ``quant_pre_process``) saves ``sym_shape_infer_temp.onnx`` and a
``<uuid>.data`` file into the cwd when it cannot infer every shape without merging symbolic dims; the model
below (``MatMul(x[a,4], W) + z[b,64]``: two batch names that must merge) makes it do so."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edgekd.cli import main


def _unmergeable(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)  # > 1 KB: saved as external data
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "z"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["a", 4]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, ["b", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [numpy_helper.from_array(w, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_symbolic_shape_inference_fails_on_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The premise: ORT itself writes into the cwd on this model (else the next test would prove nothing)."""
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = onnx.load(str(_unmergeable(tmp_path / "m.onnx")))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    with pytest.raises(Exception, match="Incomplete symbolic shape inference"):
        SymbolicShapeInference.infer_shapes(model, auto_merge=False)
    assert "sym_shape_infer_temp.onnx" in os.listdir(cwd)


@pytest.mark.parametrize("precision", ["int8", "int8-dynamic"])
def test_quantize_writes_only_its_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, precision: str) -> None:
    model = _unmergeable(tmp_path / "m.onnx")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    rc = main(["quantize", str(model), "--out", "m.q.onnx", "--precision", precision, "--input", "x=1x4",
               "--input", "z=1x64", "--calib-count", "4"])
    assert rc == 0
    assert sorted(os.listdir(cwd)) == ["m.q.onnx"]
    assert sorted(os.listdir(tmp_path)) == ["cwd", "m.onnx"]


def test_optimize_writes_only_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The static INT8 candidate of `edgekd optimize` runs quant_pre_process too."""
    model = _unmergeable(tmp_path / "m.onnx")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    rc = main(["optimize", str(model), "--out", "opt", "--input", "x=1x4", "--input", "z=1x64", "--candidate",
               "ort-int8-U8S8-pc-all", "--sessions", "2", "--iterations", "5", "--calib-count", "4"])
    assert rc in (0, 1)  # picked, or no candidate within the budget: either way the run finished
    assert sorted(os.listdir(cwd)) == ["opt"]
