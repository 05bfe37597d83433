"""Profiler test helpers: tiny ONNX models built with onnx.helper, and a fake session for protocol tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgekd.iospec import TensorSpec
from edgekd.runtime.base import check_feeds


def make_cnn(path: Path, *, channels: int = 8, dynamic_batch: bool = True, hw: tuple[int, int] = (16, 16),
             seed: int = 0, depth: int = 2) -> Path:
    """x[batch,3,H,W] -> (Conv3x3 -> Relu) * depth -> GlobalAveragePool -> Flatten -> Gemm -> y[batch,2]."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    prev, cin = "x", 3
    for i in range(depth):
        w = numpy_helper.from_array(rng.normal(0, 0.1, (channels, cin, 3, 3)).astype(np.float32), f"w{i}")
        b = numpy_helper.from_array(np.zeros(channels, np.float32), f"b{i}")
        inits += [w, b]
        nodes.append(helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"], name=f"/block{i}/conv/Conv",
                                      pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"/block{i}/act/Relu"))
        prev, cin = f"r{i}", channels
    nodes.append(helper.make_node("GlobalAveragePool", [prev], ["g"], name="/pool/GlobalAveragePool"))
    nodes.append(helper.make_node("Flatten", ["g"], ["f"], name="/flatten/Flatten"))
    inits.append(numpy_helper.from_array(rng.normal(0, 0.1, (2, channels)).astype(np.float32), "fcw"))
    inits.append(numpy_helper.from_array(np.zeros(2, np.float32), "fcb"))
    nodes.append(helper.make_node("Gemm", ["f", "fcw", "fcb"], ["y"], name="/fc/Gemm", transB=1))
    b: Any = "batch" if dynamic_batch else 1
    g = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [b, 3, *hw])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [b, 2])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(path))
    return path


class FakeSession:
    """A session whose run() sleeps nothing but burns a fixed number of numpy ops; for protocol tests."""

    def __init__(self, work: int = 200, name: str = "fake") -> None:
        self.work = work
        self.name = name
        self.calls = 0
        self.a = np.ones((work,), np.float32)

    @property
    def inputs(self) -> Sequence[TensorSpec]:
        return [TensorSpec("x", (1, 4), "float32")]

    @property
    def outputs(self) -> Sequence[TensorSpec]:
        return [TensorSpec("y", (1,), "float32")]

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        check_feeds(feeds, self.inputs, self.name) if self.calls == 0 else None
        self.calls += 1
        return [np.asarray([float(self.a.sum())], np.float32)]

    def settings(self) -> dict[str, Any]:
        return {"name": "fake", "version": "0", "threads": 1, "device": "cpu", "precision": "fp32"}
