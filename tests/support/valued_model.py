"""A tiny ONNX model whose outputs depend on input *values*, not only shapes (issue 21): a rank-0 int64
``sr`` selects a branch (``Where(Greater(sr, 12000), h*2, h)``) and an int64 ``idx`` indexes a constant
table through Gather, so a random float cast to int (or a shape-[1] ``sr``) is caught."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TABLE_ROWS = 5


def valued_model(path: Path, *, dynamic_batch: bool = False) -> Path:
    """x float32 [1,4] -> MatMul(W) -> h; y = sr > 12000 ? 2h : h (sr: rank-0 int64);
    e = Gather(table[5,4], idx[1,3] int64, axis 0) -> [1,3,4]. Opset 17."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 4)).astype(np.float32)
    table = np.arange(TABLE_ROWS * 4, dtype=np.float32).reshape(TABLE_ROWS, 4)
    batch: int | str = "batch" if dynamic_batch else 1
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(table, "table"),
             numpy_helper.from_array(np.array(12000, np.int64), "thr"),
             numpy_helper.from_array(np.array(2.0, np.float32), "two")]
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]),
             helper.make_node("Mul", ["h", "two"], ["h2"]),
             helper.make_node("Greater", ["sr", "thr"], ["hi"]),
             helper.make_node("Where", ["hi", "h2", "h"], ["y"]),
             helper.make_node("Gather", ["table", "idx"], ["e"], axis=0)]
    graph = helper.make_graph(
        nodes, "valued",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4]),
         helper.make_tensor_value_info("sr", TensorProto.INT64, []),
         helper.make_tensor_value_info("idx", TensorProto.INT64, [batch, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4]),
         helper.make_tensor_value_info("e", TensorProto.FLOAT, [batch, 3, 4])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
