"""Per-layer time, in a SEPARATE run from the timed one (profilers add overhead per kernel).

Sources: ONNX Runtime's profiler (``enable_profiling``: a Chrome-trace JSON with one ``Node`` event per
kernel per run), OpenVINO's performance counters (``PERF_COUNT``: ``profiling_info`` per request), and
TensorRT's ``IProfiler`` (per-layer milliseconds per enqueue).

Runtimes fuse and rename kernels, so each kernel name is mapped back to a node of the source ONNX graph:
ORT names kernels ``<node>_kernel_time``, appends ``_token_<n>`` to nodes it rewrote (QDQ -> QLinearConv)
and names NCHWc-transformed convolutions after their *output tensor* (``<tensor>_nchwc``); OpenVINO
appends ``/WithoutBiases`` and names fused nodes after output tensors. So: strip those suffixes, then
(1) an exact node name, (2) a tensor name -> the node producing it, walking up through fused
activations to the node whose op the kernel runs, (3) the longest node name the kernel name starts
with. Kernels with no source node (layout reorders the runtime inserted) are kept as "(inserted)".

``coverage_pct`` = sum of per-layer means / mean end-to-end run time of the same profiling run.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import DependencyMissingError, ProfileError
from edgekd.runtime.base import SessionOptions

_ACTIVATIONS = {"Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "Tanh", "Add", "Mul",
                "BatchNormalization", "QuantizeLinear", "DequantizeLinear"}


@dataclass
class GraphIndex:
    nodes: dict[str, str]  # node name -> op type
    producer: dict[str, str]  # tensor name -> node name
    inputs: dict[str, list[str]]  # node name -> input tensors

    @classmethod
    def from_onnx(cls, path: str | Path | None) -> GraphIndex:
        if path is None or Path(path).suffix != ".onnx" or not Path(path).is_file():
            return cls({}, {}, {})
        import onnx

        g = onnx.load(str(path), load_external_data=False).graph
        nodes, producer, inputs = {}, {}, {}
        for i, n in enumerate(g.node):
            name = n.name or f"{n.op_type}_{i}"
            nodes[name] = n.op_type
            inputs[name] = list(n.input)
            for o in n.output:
                producer[o] = name
        return cls(nodes, producer, inputs)

    def map(self, kernel: str, op: str | None = None) -> str | None:
        base = re.sub(r"_kernel_time$", "", kernel)
        base = re.sub(r"(_token_\d+)+$", "", base)
        base = re.sub(r"/WithoutBiases$", "", base)
        if base in self.nodes:
            return base
        tensor = base[:-6] if base.endswith("_nchwc") else base
        if tensor in self.producer:
            node = self.producer[tensor]
            # Walk up through fused activations to the node whose op the kernel runs (Conv in Conv+Relu).
            seen = 0
            cur = node
            while op and self.nodes.get(cur) != op and self.nodes.get(cur) in _ACTIVATIONS and seen < 4:
                ins = [t for t in self.inputs.get(cur, []) if t in self.producer]
                if not ins:
                    break
                cur = self.producer[ins[0]]
                seen += 1
            return cur if op and self.nodes.get(cur) == op else node
        best = None
        for n in self.nodes:
            if base.startswith(n) and (len(base) == len(n) or not base[len(n)].isalnum()):
                if best is None or len(n) > len(best):
                    best = n
        return best


def _aggregate(per_kernel: list[tuple[str, str, float]], runs: int, e2e_ms: float, index: GraphIndex,
               source: str) -> dict[str, Any]:
    """per_kernel: (kernel name, op, total ms over ``runs`` runs)."""
    nodes: dict[str, dict[str, Any]] = {}
    for kernel, op, ms in per_kernel:
        inserted = kernel.startswith("(inserted) ")
        src = None if inserted else index.map(kernel, op)
        key = src or (kernel if inserted else f"(inserted) {kernel}")
        d = nodes.setdefault(key, {"node": key, "op": index.nodes.get(src, op) if src else op, "ms": 0.0,
                                   "kernels": [], "mapped": src is not None})
        d["ms"] += ms / runs
        if kernel not in d["kernels"]:
            d["kernels"].append(kernel)
    total = sum(d["ms"] for d in nodes.values())
    rows = sorted(nodes.values(), key=lambda d: -d["ms"])
    for d in rows:
        d["pct"] = 100.0 * d["ms"] / total if total > 0 else 0.0
    return {"source": source, "runs": runs, "end_to_end_ms": e2e_ms, "sum_ms": total,
            "coverage_pct": 100.0 * total / e2e_ms if e2e_ms > 0 else None,
            "source_graph_mapped": bool(index.nodes), "nodes": rows}


def ort_layers(artifact: Path, options: SessionOptions, feeds: Mapping[str, np.ndarray], *, runs: int = 30,
               warmup: int = 5) -> dict[str, Any]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    if options.threads:
        so.intra_op_num_threads = options.threads
    so.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="edgekd-ortprof-") as tmp:
        so.profile_file_prefix = str(Path(tmp) / "ort")
        providers = list(options.providers) or ["CPUExecutionProvider"]
        sess = ort.InferenceSession(str(artifact), so, providers=providers)
        for _ in range(warmup + runs):
            sess.run(None, dict(feeds))
        trace = json.loads(Path(sess.end_profiling()).read_text(encoding="utf-8"))
    runs_ev = sorted((e for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"),
                     key=lambda e: e["ts"])[warmup:]
    if not runs_ev:
        raise ProfileError(f"{artifact}: ONNX Runtime's profiler recorded no runs")
    windows = [(e["ts"], e["ts"] + e["dur"]) for e in runs_ev]
    lo = windows[0][0]
    per: dict[tuple[str, str], float] = {}
    for e in trace:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < lo:
            continue
        if not any(a <= e["ts"] <= b for a, b in windows):
            continue
        key = (e["name"], (e.get("args") or {}).get("op_name", "?"))
        per[key] = per.get(key, 0.0) + e["dur"] / 1000.0
    e2e = float(np.mean([e["dur"] for e in runs_ev])) / 1000.0
    return _aggregate([(k, op, ms) for (k, op), ms in per.items()], len(runs_ev), e2e,
                      GraphIndex.from_onnx(artifact), "onnxruntime profiler")


def openvino_layers(artifact: Path, options: SessionOptions, feeds: Mapping[str, np.ndarray], *,
                    runs: int = 30, warmup: int = 5, source_onnx: Path | None = None) -> dict[str, Any]:
    try:
        import openvino as ov
    except ImportError:
        raise DependencyMissingError("openvino", "openvino", "OpenVINO per-layer counters") from None
    core = ov.Core()
    dev = options.device.upper() if options.device != "cpu" else "CPU"
    cfg: dict[str, Any] = {"PERF_COUNT": True}
    if dev == "CPU":
        cfg["INFERENCE_PRECISION_HINT"] = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}.get(options.precision, "f32")
        if options.threads:
            cfg["INFERENCE_NUM_THREADS"] = options.threads
    model = core.read_model(str(artifact))
    # Static shapes: with a dynamic batch the CPU plugin re-prepares kernels on every call and the
    # counters then include that preparation (FullyConnected read 10x its static time).
    model.reshape({k: list(v.shape) for k, v in feeds.items()})
    compiled = core.compile_model(model, dev, cfg)
    req = compiled.create_infer_request()
    inputs = {k: v for k, v in feeds.items()}
    for _ in range(warmup):
        req.infer(inputs)
    per: dict[tuple[str, str], float] = {}
    e2e = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        req.infer(inputs)
        e2e.append((time.perf_counter_ns() - t0) / 1e6)
        for p in req.profiling_info:
            if str(p.status).endswith("EXECUTED") and not str(p.status).endswith("NOT_EXECUTED"):
                key = (p.node_name, p.node_type)
                per[key] = per.get(key, 0.0) + p.real_time.total_seconds() * 1000.0
    index = GraphIndex.from_onnx(source_onnx or artifact)
    rows = [((f"(inserted) {k}" if op == "Reorder" else k), op, ms) for (k, op), ms in per.items()]
    return _aggregate(rows, runs, float(np.median(e2e)), index, "openvino PERF_COUNT")


def tensorrt_layers(artifact: Path, options: SessionOptions, feeds: Mapping[str, np.ndarray], *,
                    runs: int = 30, warmup: int = 5, source_onnx: Path | None = None) -> dict[str, Any]:
    """TensorRT IProfiler on a serialized engine (GPU). Untested on the CPU-only CI host."""
    try:
        import tensorrt as trt  # type: ignore[import-not-found]
    except ImportError:
        raise DependencyMissingError("tensorrt", "tensorrt", "TensorRT per-layer profiling") from None
    from edgekd.runtime import get_runtime

    times: dict[str, float] = {}

    class _Prof(trt.IProfiler):  # type: ignore[misc]
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)
            self.active = False

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            if self.active:
                times[layer_name] = times.get(layer_name, 0.0) + ms

    sess: Any = get_runtime("tensorrt").load(artifact, options)
    ctx = getattr(sess, "context", None)
    if ctx is None:
        raise ProfileError("the tensorrt session does not expose its execution context for IProfiler")
    prof = _Prof()
    ctx.profiler = prof
    for _ in range(warmup):
        sess.run(feeds)
    prof.active = True
    e2e = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        sess.run(feeds)
        e2e.append((time.perf_counter_ns() - t0) / 1e6)
    return _aggregate([(k, "?", ms) for k, ms in times.items()], runs, float(np.median(e2e)),
                      GraphIndex.from_onnx(source_onnx), "tensorrt IProfiler")


def layer_breakdown(artifact: Path, runtime: str, options: SessionOptions, feeds: Mapping[str, np.ndarray], *,
                    runs: int = 30, warmup: int = 5, source_onnx: Path | None = None) -> dict[str, Any]:
    fn = {"onnxruntime": ort_layers, "openvino": openvino_layers, "tensorrt": tensorrt_layers}.get(runtime)
    if fn is None:
        raise ProfileError(f"--layers: no per-layer profiler for runtime {runtime!r}",
                           hint="per-layer breakdowns exist for onnxruntime, openvino and tensorrt")
    if fn is ort_layers:
        return ort_layers(artifact, options, feeds, runs=runs, warmup=warmup)
    return fn(artifact, options, feeds, runs=runs, warmup=warmup, source_onnx=source_onnx)  # type: ignore[operator,call-arg]
