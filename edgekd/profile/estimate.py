"""Latency estimate for a device that is not at hand: a roofline over the operators of an ONNX graph.

The machine model is the roofline model (Williams, Waterman & Patterson, "Roofline: an insightful visual
performance model for multicore architectures", CACM 2009) plus a fixed cost per kernel launch. For each
kernel ``i`` the runtime would execute, with ``F_i`` its arithmetic operations (a multiply-add counts 2),
``B_i`` the bytes it reads and writes, ``P_p`` the device's peak rate at the kernel's precision ``p``
(GFLOP/s) and ``W`` its memory bandwidth (GB/s)::

    t_i = max(F_i / P_p, B_i / W) + o          T = sum_i t_i

where ``o`` is the per-operator overhead (dispatch, thread wake-up, kernel launch on a GPU). The figures
come from ``devices/<name>.yaml: characteristics`` (datasheet values) or, better, from a calibration file
written by ``edgekd calibrate`` (see :mod:`edgekd.profile.calibrate`), fitted on real profile reports.

A single number would pretend to a precision the model does not have, so the estimate is an interval
``[T * band_lo, T * band_hi]``: from a calibration, the band is the spread of its leave-one-out errors;
from datasheet figures, which real kernels rarely reach (RUNTIME-NOTES: 24% to 100% of peak on this
CPU), it is :data:`DATASHEET_BAND`.

What becomes a kernel follows what every edge runtime does (ONNX Runtime, OpenVINO and TensorRT alike),
so that the overhead is not charged for work that never runs on its own:

- constant folding: a node whose inputs are all constants (initializers, ``Constant``, a ``Shape`` of a
  tensor whose shape is fixed) is computed at load time and costs nothing;
- views: ``Reshape``, ``Flatten``, ``Squeeze``, ``Unsqueeze``, ``Identity``, ``Dropout`` move no data;
- fusion: an activation, batch norm, bias/residual ``Add``/``Mul`` or ``QuantizeLinear`` that is the only
  consumer of a Conv/Gemm/MatMul's output is fused into it (its arithmetic is added, its memory traffic
  is not), and a ``DequantizeLinear`` feeding a compute op is absorbed into it, which then runs in INT8
  (the QDQ format: the runtime executes ``DQ -> Conv -> Q`` as one integer convolution).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekd.errors import ConfigError, ProfileError

SCHEMA = "edgekd.estimate/1"
# Real kernels reach 24%..100% of datasheet peak on the CPU measured in RUNTIME-NOTES, and per-op
# overhead is a guess: without a calibration the true time is taken to lie within 0.8x..4x.
DATASHEET_BAND = (0.8, 4.0)

COMPUTE_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "QLinearConv", "QLinearMatMul", "ConvInteger",
               "MatMulInteger", "QGemm"}
_INT8_OPS = {"QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "QGemm"}
_FUSABLE = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu",
            "BatchNormalization", "Add", "Mul", "QuantizeLinear", "PRelu"}
# Ops that runtimes run directly on quantized tensors (ORT's QLinear* kernels, TensorRT's explicit
# quantization): a Q/DQ pair in front of them costs nothing.
_QDQ_AWARE = COMPUTE_OPS | {"Add", "Mul", "Concat", "GlobalAveragePool", "AveragePool", "MaxPool", "Sigmoid",
                            "LeakyRelu", "Softmax", "Resize", "Reshape", "Transpose", "Squeeze", "Unsqueeze",
                            "Flatten", "Gather", "Split", "Relu", "Clip"}
_VIEWS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"}
_SHAPE_ONLY = {"Shape", "Size"}  # their output depends on the input's shape only
# Arithmetic per output element of elementwise/normalising ops (transcendentals cost a few operations).
_PER_ELEMENT = {"Sigmoid": 4, "Tanh": 4, "Exp": 4, "Log": 4, "Erf": 4, "Gelu": 8, "HardSigmoid": 2,
                "HardSwish": 3, "Softmax": 5, "LogSoftmax": 5, "LayerNormalization": 8, "BatchNormalization": 2,
                "InstanceNormalization": 8, "Pow": 4, "Sqrt": 2, "Div": 1, "Clip": 1}
_DATA_MOVE = {"Concat", "Transpose", "Slice", "Split", "Pad", "Gather", "Tile", "Expand", "Cast",
              "DepthToSpace", "SpaceToDepth", "GatherElements", "ScatterND", "Where"}


@dataclass
class OpWork:
    """One kernel: the source node(s) it runs, its precision, arithmetic and memory traffic."""

    node: str
    op: str
    precision: str
    flops: float
    bytes: float
    fused: list[str] = field(default_factory=list)
    shape_known: bool = True


@dataclass
class GraphWork:
    """The kernels of a graph at fixed input shapes."""

    ops: list[OpWork]
    input_shapes: dict[str, list[int]]
    folded: int  # nodes folded as constants or views
    unknown_shapes: int  # kernels whose tensor shapes could not be inferred (counted with 0 work)

    def flops_by_precision(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for o in self.ops:
            out[o.precision] = out.get(o.precision, 0.0) + o.flops
        return out

    @property
    def total_bytes(self) -> float:
        return float(sum(o.bytes for o in self.ops))


@dataclass(frozen=True)
class Machine:
    """The calibrated (or datasheet) machine model: peaks in GFLOP/s, bandwidth in GB/s, overhead in us."""

    peak_gflops: Mapping[str, float]
    bandwidth_gbs: float | None
    op_overhead_us: float
    source: str = "datasheet"
    band: tuple[float, float] = DATASHEET_BAND

    @classmethod
    def from_characteristics(cls, ch: Any, band: tuple[float, float] | None = None) -> Machine:
        return cls(dict(ch.peak_gflops), ch.bandwidth_gbs, float(ch.op_overhead_us), str(ch.source),
                   band or DATASHEET_BAND)

    def peak(self, precision: str) -> tuple[float, str | None]:
        """Peak for ``precision``; falls back fp16/bf16/int8 -> fp32 (with a note) when not characterised."""
        if precision in self.peak_gflops:
            return float(self.peak_gflops[precision]), None
        if "fp32" in self.peak_gflops:
            return float(self.peak_gflops["fp32"]), f"no {precision} peak: used the fp32 peak"
        raise ConfigError(f"characteristics.peak_gflops has no {precision!r} (nor fp32) entry; it has "
                          f"{sorted(self.peak_gflops)}",
                          hint="add peak_gflops.fp32 to the device file, or run `edgekd calibrate` on reports")


def op_seconds(op: OpWork, m: Machine) -> tuple[float, str]:
    """(seconds, 'compute' | 'memory') of one kernel, overhead excluded."""
    peak, _ = m.peak(op.precision)
    tc = op.flops / (peak * 1e9) if peak > 0 else 0.0
    tm = op.bytes / (m.bandwidth_gbs * 1e9) if m.bandwidth_gbs else 0.0
    return (tc, "compute") if tc >= tm else (tm, "memory")


def predict_ms(work: GraphWork, m: Machine) -> float:
    """T = sum_i max(F_i / P_p, B_i / W) + n_kernels * o, in milliseconds."""
    s = sum(op_seconds(o, m)[0] for o in work.ops)
    return 1000.0 * s + len(work.ops) * m.op_overhead_us / 1000.0


# ---------------------------------------------------------------------------------------------------
# Graph analysis
# ---------------------------------------------------------------------------------------------------
def _fix_input_shapes(model: Any, shapes: Mapping[str, Sequence[int]], where: str) -> dict[str, list[int]]:
    """Set every graph input's dims (dynamic ones from ``shapes``); same rules and messages as profiling."""
    inits = {i.name for i in model.graph.initializer}
    real = [i for i in model.graph.input if i.name not in inits]
    names = [i.name for i in real]
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise ConfigError(f"--input {unknown[0]}=...: the model {where} has no input {unknown[0]!r}; its inputs "
                          f"are {names}")
    problems: list[str] = []
    fixed: dict[str, list[int]] = {}
    for inp in real:
        dims_p = inp.type.tensor_type.shape.dim
        dims: list[int | str] = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else
                                 (d.dim_param or "?") for d in dims_p]
        if inp.name in shapes:
            want = list(shapes[inp.name])
            if len(want) != len(dims):
                problems.append(f"--input {inp.name}={'x'.join(map(str, want))}: rank {len(want)}, the model's "
                                f"input has rank {len(dims)} (dims {dims})")
                continue
            bad = [i for i, (w, d) in enumerate(zip(want, dims, strict=True)) if isinstance(d, int) and w != d]
            if bad:
                problems.append(f"--input {inp.name}={'x'.join(map(str, want))}: dim {bad[0]} must be "
                                f"{dims[bad[0]]} (the model's dims are {dims})")
                continue
        elif any(not isinstance(d, int) for d in dims):
            example = "x".join(str(d) if isinstance(d, int) else "1" for d in dims)
            problems.append(f"input {inp.name!r} has dynamic dims {[d for d in dims if not isinstance(d, int)]} "
                            f"(shape {dims}): give its shape, e.g. --input {inp.name}={example}")
            continue
        else:
            want = [int(d) for d in dims]
        for d, w in zip(dims_p, want, strict=True):
            d.Clear()
            d.dim_value = int(w)
        fixed[inp.name] = want
    if problems:
        raise ProfileError(f"{where}: inputs need a shape:\n" + "\n".join(f"  - {p}" for p in problems))
    return fixed


def _infer(model: Any) -> Any:
    """onnx shape inference with data propagation (shape subgraphs); ORT's symbolic inference if that
    leaves tensors unknown (it understands more ops, e.g. Resize with computed sizes)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    known = {v.name for v in inferred.graph.value_info if _dims(v) is not None}
    produced = {o for n in inferred.graph.node for o in n.output if o}
    outs = {o.name for o in inferred.graph.output if _dims(o) is not None}
    if produced - known - outs:
        try:
            from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

            from edgekd.quantize.scratch import scratch_cwd

            with scratch_cwd():  # a failed inference saves sym_shape_infer_temp.onnx into the cwd
                sym = SymbolicShapeInference.infer_shapes(model, auto_merge=True, guess_output_rank=False)
            if sym is not None:
                return sym
        except Exception:  # noqa: BLE001 - the onnx result stands; unknown shapes are counted and reported
            pass
    return inferred


def _dims(vi: Any) -> list[int] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    out = []
    for d in t.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return None
        out.append(int(d.dim_value))
    return out


def analyze_onnx(path: str | Path, shapes: Mapping[str, Sequence[int]] | None = None) -> GraphWork:
    """Per-kernel FLOPs and bytes of an ONNX model at fixed input shapes (``shapes`` for dynamic dims)."""
    model = _load_for_analysis(Path(path))
    fixed = _fix_input_shapes(model, shapes or {}, str(Path(path)))
    walk = _GraphWalk(_infer(model).graph)
    for idx, n in enumerate(walk.graph.node):
        walk.visit(n, n.name or f"{n.op_type}_{idx}")
    return GraphWork(walk.ops, fixed, walk.folded, walk.unknown)


_MAC_OPS = ("Conv", "ConvInteger", "QLinearConv", "ConvTranspose", "MatMul", "MatMulInteger", "QLinearMatMul",
            "Gemm", "QGemm")


def onnx_macs(path: str | Path, shapes: Mapping[str, Sequence[int]] | None = None) -> int:
    """Multiply-accumulates of the convolutions and matrix products of an ONNX model at fixed input shapes.

    The same per-node arithmetic as :func:`analyze_onnx` (whose kernels also carry the elementwise work
    fused into them), counted over the MAC-bearing nodes alone: the figure benchmarks quote as model size.
    """
    model = _load_for_analysis(Path(path))
    _fix_input_shapes(model, shapes or {}, str(Path(path)))
    walk = _GraphWalk(_infer(model).graph)
    total = 0.0
    for n in walk.graph.node:
        if n.op_type in _MAC_OPS:
            total += _flops(n, [t for t in n.input if t], walk.info, walk.numel) / 2
    return int(round(total))


def _load_for_analysis(p: Path) -> Any:
    import onnx

    if not p.is_file():
        raise ProfileError(f"ARTIFACT {str(p)!r}: no such file", hint="check the path")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's own parse errors
        raise ProfileError(f"ARTIFACT {str(p)!r} is not an ONNX model ({type(exc).__name__}: {str(exc)[:200]})",
                           hint="`edgekd estimate` reads .onnx files; export the model to ONNX first") from None
    if not model.graph.node:
        raise ProfileError(f"ARTIFACT {str(p)!r} is not an ONNX model (no graph nodes)",
                           hint="`edgekd estimate` reads .onnx files; export the model to ONNX first")
    return model


def _elem_size(elem: int) -> int:
    import numpy as np
    import onnx

    try:
        return int(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem)).itemsize)
    except Exception:  # noqa: BLE001 - exotic element types (strings): count 4 bytes
        return 4


class _GraphWalk:
    """One pass over the nodes in graph order, grouping each into the kernel a runtime would run it in.

    Constants and shape-only ops fold away, views pass their producer on, a DequantizeLinear feeding
    compute ops is absorbed into them (QDQ -> INT8 kernel), and elementwise ops fuse into the kernel that
    produced their only-consumed input; every other node is a kernel of its own.
    """

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.info: dict[str, tuple[list[int] | None, int]] = {}  # tensor -> (dims, bytes per element)
        for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
            self.info[vi.name] = (_dims(vi), _elem_size(vi.type.tensor_type.elem_type))
        self.const: set[str] = {""}
        for init in graph.initializer:
            self.info[init.name] = ([int(d) for d in init.dims], _elem_size(init.data_type))
            self.const.add(init.name)
        self.consumers: dict[str, list[Any]] = {}
        for n in graph.node:
            for t in n.input:
                self.consumers.setdefault(t, []).append(n)
        self.graph_outputs = {o.name for o in graph.output}
        self.ops: list[OpWork] = []
        self.group_of: dict[str, OpWork] = {}  # tensor -> the kernel that produced it (fusion candidates)
        self.compute_group: dict[str, OpWork] = {}  # the same, for Conv/Gemm/MatMul kernels only
        self.quantized: set[str] = set()  # outputs of QuantizeLinear (fused or not)
        self.absorbed_dq: dict[str, str] = {}  # DQ output tensor -> its quantized input tensor
        self.folded = 0
        self.unknown = 0

    def numel(self, t: str) -> float | None:
        d = self.info.get(t, (None, 4))[0]
        return None if d is None else float(math.prod(d))

    def nbytes(self, t: str) -> float | None:
        d, es = self.info.get(t, (None, 4))
        return None if d is None else float(math.prod(d)) * es

    def visit(self, n: Any, name: str) -> None:
        ins = [t for t in n.input if t]
        if self._fold(n, ins) or self._view(n, ins) or self._absorb_dq(n, ins) or self._fuse(n, ins, name):
            return
        self._kernel(n, ins, name)

    def _fold(self, n: Any, ins: list[str]) -> bool:
        """Constant folding and shape-only ops."""
        op = n.op_type
        if not (op == "Constant" or all(t in self.const for t in ins)
                or (op in _SHAPE_ONLY and ins and self.info.get(ins[0], (None, 4))[0] is not None)):
            return False
        self.const.update(n.output)
        if op == "DequantizeLinear" and ins:  # a quantized weight: its consumer reads the int8 tensor
            self.absorbed_dq[n.output[0]] = ins[0]
        self.folded += 1
        return True

    def _view(self, n: Any, ins: list[str]) -> bool:
        if n.op_type not in _VIEWS:
            return False
        src, out = ins[0], n.output[0]
        if src in self.group_of and len(self.consumers.get(src, [])) == 1:
            self.group_of[out] = self.group_of[src]
            if src in self.compute_group:
                self.compute_group[out] = self.compute_group[src]
        if src in self.quantized:
            self.quantized.add(out)
        if src in self.absorbed_dq:
            self.absorbed_dq[out] = self.absorbed_dq[src]
        self.folded += 1
        return True

    def _absorb_dq(self, n: Any, ins: list[str]) -> bool:
        # A DequantizeLinear whose every consumer is a compute op is absorbed into them (QDQ -> INT8 kernel);
        # one right after a QuantizeLinear is the other half of a Q/DQ pair the runtime fuses into its
        # neighbours (QLinearAdd, QLinearConcat...) or removes.
        if n.op_type != "DequantizeLinear":
            return False
        cons = self.consumers.get(n.output[0], [])
        if cons and (all(c.op_type in COMPUTE_OPS for c in cons)
                     or (ins[0] in self.quantized and all(c.op_type in _QDQ_AWARE for c in cons))):
            self.absorbed_dq[n.output[0]] = ins[0]
            self.folded += 1
            return True
        return False

    def _fuse(self, n: Any, ins: list[str], name: str) -> bool:
        """Fusion into the producing kernel: QuantizeLinear into any kernel, the others into compute kernels."""
        op = n.op_type
        if op not in _FUSABLE:
            return False
        data_in = [t for t in ins if t not in self.const]
        groups = self.group_of if op == "QuantizeLinear" else self.compute_group
        src = next((t for t in data_in if t in groups and len(self.consumers.get(t, [])) == 1
                    and t not in self.graph_outputs), None)
        if src is None:
            return False
        k = self.group_of[src]
        out = n.output[0]
        nb_in, nb_out, ne = self.nbytes(src), self.nbytes(out), self.numel(out)
        extra = sum(self.nbytes(t) or 0.0 for t in data_in if t != src)  # a residual Add reads its other operand
        if nb_in is not None and nb_out is not None and ne is not None:
            k.bytes += nb_out - nb_in + extra
            k.flops += ne * _PER_ELEMENT.get(op, 1)
        k.fused.append(name)
        self.group_of[out] = k
        if src in self.compute_group:
            self.compute_group[out] = k
        if op == "QuantizeLinear":
            self.quantized.add(out)
        return True

    def _kernel(self, n: Any, ins: list[str], name: str) -> None:
        op = n.op_type
        in_b = [self.nbytes(self.absorbed_dq[t]) if t in self.absorbed_dq else self.nbytes(t) for t in ins]
        out_b = [self.nbytes(t) for t in n.output if t]
        known = all(b is not None for b in in_b + out_b)
        if not known:
            self.unknown += 1
        moved = float(sum(b or 0.0 for b in in_b) + sum(b or 0.0 for b in out_b))
        flops = _flops(n, ins, self.info, self.numel) if known else 0.0
        work = OpWork(name, op, _precision(op, ins, self.info, self.absorbed_dq), flops, moved, shape_known=known)
        self.ops.append(work)
        if n.output:
            self.group_of[n.output[0]] = work
            if op in COMPUTE_OPS:
                self.compute_group[n.output[0]] = work
        if op == "QuantizeLinear":
            self.quantized.update(n.output)


def _precision(op: str, ins: Sequence[str], info: Mapping[str, tuple[list[int] | None, int]],
               absorbed_dq: Mapping[str, str]) -> str:
    if op in _INT8_OPS or any(t in absorbed_dq for t in ins):
        return "int8"
    es = info.get(ins[0], (None, 4))[1] if ins else 4
    return {1: "int8", 2: "fp16"}.get(es, "fp32")


def _attr(n: Any, name: str, default: Any) -> Any:
    import onnx

    for a in n.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _flops(n: Any, ins: Sequence[str], info: Mapping[str, tuple[list[int] | None, int]],
           numel: Any) -> float:
    """Arithmetic operations of one node (a multiply-add is 2)."""
    op = n.op_type
    out = n.output[0]
    ne_out = numel(out) or 0.0

    def dims(t: str) -> list[int]:
        return list(info.get(t, (None, 4))[0] or [])

    if op in ("Conv", "ConvInteger", "QLinearConv"):
        w = dims(ins[3] if op == "QLinearConv" else ins[1])
        return 2.0 * ne_out * math.prod(w[1:]) if w else 0.0
    if op == "ConvTranspose":
        w = dims(ins[1])
        return 2.0 * (numel(ins[0]) or 0.0) * math.prod(w[1:]) if w else 0.0
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
        a = dims(ins[0])
        return 2.0 * ne_out * (a[-1] if a else 0)
    if op in ("Gemm", "QGemm"):
        a = dims(ins[0])
        k = (a[0] if _attr(n, "transA", 0) else a[-1]) if a else 0
        return 2.0 * ne_out * k
    if op in ("MaxPool", "AveragePool", "LpPool"):
        return ne_out * float(math.prod(_attr(n, "kernel_shape", [1])))
    if op.startswith("Global") or op.startswith("Reduce"):
        return numel(ins[0]) or 0.0
    if op in _DATA_MOVE:
        return 0.0
    if op == "Resize":
        mode = _attr(n, "mode", b"nearest")
        return ne_out * (4.0 if mode in (b"linear", "linear", b"cubic", "cubic") else 0.0)
    return ne_out * _PER_ELEMENT.get(op, 1)


# ---------------------------------------------------------------------------------------------------
# The estimate
# ---------------------------------------------------------------------------------------------------
@dataclass
class Estimate:
    artifact: str
    device: str | None
    machine: Machine
    point_ms: float
    low_ms: float
    high_ms: float
    work: GraphWork
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        bound = {"compute": 0, "memory": 0}
        top = []
        for o in self.work.ops:
            s, b = op_seconds(o, self.machine)
            bound[b] += 1
            top.append((s * 1000.0 + self.machine.op_overhead_us / 1000.0, o, b))
        top.sort(key=lambda x: -x[0])
        m = self.machine
        return {
            "schema": SCHEMA, "artifact": self.artifact, "device": self.device,
            "latency_ms": {"estimate": self.point_ms, "low": self.low_ms, "high": self.high_ms},
            "machine": {"peak_gflops": dict(m.peak_gflops), "bandwidth_gbs": m.bandwidth_gbs,
                        "op_overhead_us": m.op_overhead_us, "source": m.source, "band": list(m.band)},
            "work": {"inputs": self.work.input_shapes, "kernels": len(self.work.ops),
                     "folded_nodes": self.work.folded,
                     "fused_nodes": sum(len(o.fused) for o in self.work.ops), "unknown_shape_kernels": self.work.unknown_shapes,
                     "gflops_by_precision": {k: v / 1e9 for k, v in self.work.flops_by_precision().items()},
                     "mbytes_moved": self.work.total_bytes / 1e6,
                     "compute_bound_kernels": bound["compute"], "memory_bound_kernels": bound["memory"]},
            "top_kernels": [{"node": o.node, "op": o.op, "precision": o.precision, "ms": ms,
                             "mflops": o.flops / 1e6, "kbytes": o.bytes / 1e3, "bound": b,
                             "fused": o.fused} for ms, o, b in top[:10]],
            "notes": self.notes,
        }


def estimate(artifact: str | Path, machine: Machine, shapes: Mapping[str, Sequence[int]] | None = None, *,
             device: str | None = None) -> Estimate:
    """Analyze ``artifact`` and predict its latency interval on ``machine``."""
    work = analyze_onnx(artifact, shapes)
    notes = []
    for prec in sorted({o.precision for o in work.ops}):
        _, note = machine.peak(prec)
        if note:
            notes.append(note)
    if not machine.bandwidth_gbs:
        notes.append("no bandwidth_gbs: memory traffic is not charged (compute and overhead only)")
    if work.unknown_shapes:
        notes.append(f"{work.unknown_shapes} kernel(s) with shapes shape inference could not resolve are "
                     "charged the overhead only: the estimate is low")
    point = predict_ms(work, machine)
    lo, hi = machine.band
    return Estimate(str(artifact), device, machine, point, point * lo, point * hi, work, notes)


def machine_dict(m: Machine) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(m).items()}
