"""Small ONNX CNNs with a tunable amount of extra work, to check a gate on a real machine (A/A and
known slowdowns) without training anything. Used by the gate tests and ``benchmarks/gate_real.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd.fileio import atomic_path


def tiny_cnn(path: Path, *, channels: int = 32, size: int = 64, extra_ops: int = 0, seed: int = 0) -> Path:
    """Conv(3->C,3x3)-Relu-Conv(C->C,3x3)-Relu-GlobalAvgPool-Gemm(C->10) on 1x3xSxS, plus ``extra_ops``
    cheap elementwise ops (alternating Mul by ~1 and Add of ~0, per-channel constants, on the first
    feature map) inserted after the first Relu: each costs one pass over C*S*S floats."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    c = channels
    inits = [
        numpy_helper.from_array((rng.standard_normal((c, 3, 3, 3)) * 0.1).astype(np.float32), "w1"),
        numpy_helper.from_array(np.zeros(c, np.float32), "b1"),
        numpy_helper.from_array((rng.standard_normal((c, c, 3, 3)) * 0.1).astype(np.float32), "w2"),
        numpy_helper.from_array(np.zeros(c, np.float32), "b2"),
        numpy_helper.from_array((rng.standard_normal((10, c)) * 0.1).astype(np.float32), "w3"),
        numpy_helper.from_array(np.zeros(10, np.float32), "b3"),
        # per-channel (not scalar) constants, so the ops are not trivially removable
        numpy_helper.from_array((1.0 + 1e-3 * rng.standard_normal((1, c, 1, 1))).astype(np.float32), "k_mul"),
        numpy_helper.from_array((1e-3 * rng.standard_normal((1, c, 1, 1))).astype(np.float32), "k_add"),
    ]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"])]
    cur = "r1"
    for i in range(extra_ops):
        op, k = ("Mul", "k_mul") if i % 2 == 0 else ("Add", "k_add")
        nodes.append(helper.make_node(op, [cur, k], [f"e{i}"]))
        cur = f"e{i}"
    nodes += [helper.make_node("Conv", [cur, "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["c2"], ["r2"]),
              helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
              helper.make_node("Flatten", ["g"], ["f"]),
              helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "tiny_cnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgekd.gate")
    model.ir_version = 8
    onnx.checker.check_model(model)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return Path(path)
