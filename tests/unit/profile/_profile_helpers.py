"""Test helpers: tiny ONNX models built with onnx.helper, and a private ONNX Runtime adapter used
until (and as a check against) edgekd.runtime.onnxruntime."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgekd.iospec import TensorSpec
from edgekd.runtime.base import SessionOptions, check_feeds


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


def _np_dtype(ort_type: str) -> str:
    return {"tensor(float)": "float32", "tensor(int64)": "int64", "tensor(float16)": "float16",
            "tensor(int32)": "int32", "tensor(uint8)": "uint8"}.get(ort_type, "float32")


class PrivateOrtSession:
    def __init__(self, path: Path, options: SessionOptions) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        if options.threads:
            so.intra_op_num_threads = options.threads
            so.inter_op_num_threads = 1
        self._threads = options.threads
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.path = path

    @property
    def inputs(self) -> Sequence[TensorSpec]:
        return [TensorSpec(i.name, tuple(d if isinstance(d, int) else str(d) for d in i.shape), _np_dtype(i.type))
                for i in self.sess.get_inputs()]

    @property
    def outputs(self) -> Sequence[TensorSpec]:
        return [TensorSpec(o.name, tuple(d if isinstance(d, int) else str(d) for d in o.shape), _np_dtype(o.type))
                for o in self.sess.get_outputs()]

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return self.sess.run(None, dict(feeds))

    def settings(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"name": "onnxruntime", "version": ort.__version__, "threads": self._threads,
                "providers": self.sess.get_providers(), "precision": "fp32", "device": "cpu"}


class PrivateOrtRuntime:
    name = "onnxruntime"

    def available(self) -> tuple[bool, str]:
        import onnxruntime as ort

        return True, ort.__version__

    def load(self, artifact: Path, options: SessionOptions) -> PrivateOrtSession:
        from edgekd.errors import ProfileError

        if not Path(artifact).is_file():
            raise ProfileError(f"{artifact}: no such file")
        try:
            return PrivateOrtSession(Path(artifact), options)
        except Exception as exc:
            raise ProfileError(f"{artifact}: onnxruntime could not load it: {exc}") from None


RUNTIME = PrivateOrtRuntime()


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
