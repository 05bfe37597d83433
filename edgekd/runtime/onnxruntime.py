"""ONNX Runtime backend: one InferenceSession per artifact, set up for measurable latency.

Threads: ``SessionOptions.threads`` -> ``intra_op_num_threads``; ``inter_op_num_threads`` is 1 and the
execution mode sequential, so a model's operators run one after the other on one pool (the
setting trtexec-like latency measurements assume; parallel mode only helps graphs with wide
independent branches).

Execution providers come from ``options.providers`` (ORT names or the short aliases ``cpu``,
``cuda``, ``tensorrt``, ``openvino``, ``dml``, ``coreml``), else from ``options.device``. A provider
that is not in this onnxruntime build raises BackendUnavailableError listing those that are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import BackendUnavailableError, ConfigError, ProfileError
from edgekd.iospec import TensorSpec
from edgekd.runtime._feedcheck import FeedChecker
from edgekd.runtime.base import SessionIO, SessionOptions

_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}

# ORT element type strings -> numpy dtype names
_ORT_TYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16", "tensor(int8)": "int8",
    "tensor(uint8)": "uint8", "tensor(uint16)": "uint16", "tensor(bool)": "bool",
}

_OPT_LEVELS = ("disable", "basic", "extended", "all")
_EXTRA_KEYS = {"graph_optimization_level": f"one of {list(_OPT_LEVELS)} (default 'all')",
               "provider_options": "a list with one dict of options per provider"}

_QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
              "MatMulInteger", "DynamicQuantizeLinear", "QGemm", "QLinearAdd"}


def _numpy_dtype(ort_type: str, where: str) -> str:
    try:
        return _ORT_TYPES[ort_type]
    except KeyError:
        raise BackendUnavailableError(
            f"{where}: element type {ort_type} is not supported by edgekd's onnxruntime backend",
            hint=f"supported: {sorted(_ORT_TYPES)}") from None


def _tensor_specs(nodes: Sequence[Any], where: str) -> tuple[TensorSpec, ...]:
    specs = []
    for n in nodes:
        shape: list[int | str] = []
        for i, d in enumerate(n.shape):
            # ORT reports a named dynamic dim as its name, an unnamed one as None (or a negative int).
            if isinstance(d, int) and d > 0:
                shape.append(d)
            elif isinstance(d, str) and d:
                shape.append(d)
            else:
                shape.append(f"{n.name}_dim{i}")
        specs.append(TensorSpec(n.name, tuple(shape), _numpy_dtype(n.type, f"{where}: tensor {n.name!r}")))
    return tuple(specs)


def resolve_providers(options: SessionOptions, available: Sequence[str]) -> list[str]:
    """The ORT provider list for ``options``, checked against this build's ``available`` providers."""
    requested = list(options.providers)
    if not requested:
        dev = options.device.split(":")[0].lower()
        if dev == "cpu":
            requested = ["cpu"]
        elif dev in ("cuda", "gpu"):
            requested = ["cuda", "cpu"]
        elif dev in _ALIASES:
            requested = [dev, "cpu"]
        else:
            raise ConfigError(f"device {options.device!r} is not one ONNX Runtime can target",
                              hint="use cpu or cuda, or name execution providers explicitly "
                                   f"(aliases {sorted(_ALIASES)})")
    names = [_ALIASES.get(p.lower(), p) for p in requested]
    missing = [p for p in names if p not in available]
    if missing:
        raise BackendUnavailableError(
            f"onnxruntime execution provider(s) {missing} are not available in this onnxruntime build; "
            f"available: {list(available)}",
            hint="install the matching build (onnxruntime-gpu for CUDA/TensorRT) or pick an available provider")
    return names


def _unsupported_op(message: str) -> str | None:
    """The operator name in an ORT load error about an op it cannot run, else None."""
    for pat in (r"Could not find an implementation for (\w+)\(",
                r"(?:[\w.]*:)?(\w+)\(-?\d+\) is not a registered function/op",
                r"No Op registered for (\w+) with domain",
                r"Unrecognized op(?:erator)?[: ]+'?(\w+)"):
        m = re.search(pat, message)
        if m:
            return m.group(1)
    return None


def _model_precision(path: Path) -> str:
    """fp32 / fp16 / int8 as stored in the graph (ORT has no precision switch of its own)."""
    import onnx

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception:
        return "unknown"
    ops = {n.op_type for n in m.graph.node}
    if ops & _QUANT_OPS:
        return "int8"
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in m.graph.initializer):
        return "fp16"
    return "fp32"


class OrtSession(SessionIO):
    """An InferenceSession behind the edgekd Session protocol."""

    def __init__(self, sess: Any, path: Path, options: SessionOptions, opt_level: str) -> None:
        self.sess = sess
        self.path = path
        self.options = options
        self._opt_level = opt_level
        where = path.name
        self._inputs = _tensor_specs(sess.get_inputs(), where)
        self._outputs = _tensor_specs(sess.get_outputs(), where)
        self._check_cached = FeedChecker(self._inputs, path.name)
        self._output_names = [o.name for o in self._outputs]
        self._precision = _model_precision(path)


    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        self._check_cached(feeds)
        try:
            return list(self.sess.run(self._output_names, dict(feeds)))
        except Exception as exc:  # ORT's own error types are not importable as a stable API
            raise ProfileError(f"{self.path.name}: onnxruntime failed to run: {type(exc).__name__}: {exc}",
                               hint="check the input shapes against the model's inputs") from None

    def settings(self) -> dict[str, Any]:
        import onnxruntime as ort

        so = self.sess.get_session_options()
        return {
            "name": "onnxruntime",
            "version": ort.__version__,
            "providers": list(self.sess.get_providers()),
            "device": "cuda" if any(p != "CPUExecutionProvider" for p in self.sess.get_providers()) else "cpu",
            "threads": self.options.threads if self.options.threads else f"default ({so.intra_op_num_threads})",
            "inter_op_threads": so.inter_op_num_threads,
            "execution_mode": "sequential",
            "graph_optimization_level": self._opt_level,
            "precision": self._precision,
        }


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def available(self) -> tuple[bool, str]:
        try:
            import onnxruntime as ort
        except ImportError:
            return False, "the Python package 'onnxruntime' is not installed (pip install onnxruntime)"
        return True, ort.__version__

    def load(self, artifact: Path, options: SessionOptions) -> OrtSession:
        import onnxruntime as ort

        path = Path(artifact)
        if not path.is_file():
            raise ProfileError(f"model file {str(path)!r} does not exist",
                               hint="check the path; export one with `edgekd export`")
        unknown = sorted(set(options.extra) - set(_EXTRA_KEYS))
        if unknown:
            raise ConfigError(f"onnxruntime: unknown session option(s) {unknown}",
                              [f"{k}: {v}" for k, v in _EXTRA_KEYS.items()])
        level = str(options.extra.get("graph_optimization_level", "all"))
        if level not in _OPT_LEVELS:
            raise ConfigError(f"onnxruntime: graph_optimization_level {level!r} is not allowed",
                              hint=f"use one of {list(_OPT_LEVELS)}")
        if options.threads is not None and options.threads < 1:
            raise ConfigError(f"threads={options.threads}: must be >= 1 (or unset for the runtime default)")
        providers = resolve_providers(options, ort.get_available_providers())

        so = ort.SessionOptions()
        if options.threads:
            so.intra_op_num_threads = int(options.threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[level]
        so.log_severity_level = 3  # errors only: warnings about unused initializers etc. are noise here
        kwargs: dict[str, Any] = {"providers": providers}
        if "provider_options" in options.extra:
            kwargs["provider_options"] = list(options.extra["provider_options"])
        try:
            sess = ort.InferenceSession(str(path), so, **kwargs)
        except Exception as exc:
            msg = str(exc)
            op = _unsupported_op(msg)
            if op is not None:
                raise BackendUnavailableError(
                    f"{path.name}: operator {op!r} is not supported by onnxruntime {ort.__version__} "
                    f"(providers {providers})",
                    hint="re-export with another opset, replace the op in the model, or use a runtime that "
                         "implements it") from None
            raise ProfileError(f"{path.name}: onnxruntime could not load it: {msg.strip()[:500]}",
                               hint="check that the file is a complete ONNX model (and its .data file is beside "
                                    "it when it uses external data)") from None
        return OrtSession(sess, path, options, level)


RUNTIME = OnnxRuntimeBackend()
