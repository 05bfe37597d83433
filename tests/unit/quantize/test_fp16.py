"""FP16 conversion keeps FP32 IO and matches FP32 to FP16 precision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

pytest.importorskip("onnxconverter_common", reason="onnxconverter-common (edgekd[fp16]) is not installed")

from edgekd.quantize.compare import compare_outputs  # noqa: E402
from edgekd.quantize.fp16 import convert_fp16  # noqa: E402
from edgekd.runtime.predict import onnx_predict


def test_fp16_io_fp32_and_close(tiny_onnx: Path, tmp_path: Path) -> None:
    res = convert_fp16(tiny_onnx, tmp_path / "fp16.onnx")
    m = onnx.load(str(res.path))
    assert {i.type.tensor_type.elem_type for i in m.graph.input} == {onnx.TensorProto.FLOAT}
    assert {o.type.tensor_type.elem_type for o in m.graph.output} == {onnx.TensorProto.FLOAT}
    assert res.settings["fp16_initializers"] >= 5
    feeds = [{"x": np.random.default_rng(3).uniform(0, 1, (2, 3, 16, 16)).astype(np.float32)}]
    rows = compare_outputs(onnx_predict(str(tiny_onnx)), onnx_predict(str(res.path)), feeds, ["map", "logits"])
    # ~11 bits of mantissa: well above INT8 quality, but not bit-exact.
    assert all(45.0 < r.sqnr_db < 200.0 for r in rows)
