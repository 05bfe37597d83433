"""The explicit-INT8 ONNX that TensorRT builds: symmetric signed INT8 Q/DQ, made and checked here.

TensorRT 10 deprecated implicit quantization (``IInt8EntropyCalibrator2`` and the other calibrators,
deprecated since 10.1): an INT8 engine comes from a network with QuantizeLinear/DequantizeLinear
nodes (explicit quantization), and the builder needs no calibrator then. TensorRT's quantization
scheme is symmetric ("Working with Quantized Types" in the TensorRT developer guide): quantized
values are signed INT8 and the transformation back is a multiplication by the scale, so every zero
point must be 0 (its ONNX parser rejects others: "zeroPt must be all zeros"), the scales must be
positive constants, and a per-channel scale runs along one axis of the tensor.

:func:`check_explicit_int8` lists every Q/DQ node that breaks these rules; :func:`write_explicit_int8`
makes such a model from an FP32 ONNX with edgekd's PTQ (ONNX Runtime's static QDQ quantizer, int8
activations and weights, ``ActivationSymmetric``/``WeightSymmetric``, FP32 biases) and checks it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ExportError

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


@dataclass(frozen=True)
class QdqProblem:
    """One Q/DQ node TensorRT cannot take as explicit INT8, and why."""

    node: str
    op: str
    problem: str

    def __str__(self) -> str:
        return f"{self.op} {self.node!r}: {self.problem}"


def has_qdq(proto: Any) -> bool:
    """Whether the graph holds any QuantizeLinear/DequantizeLinear node (explicit quantization)."""
    return any(n.op_type in QDQ_OPS for n in proto.graph.node)


def _constants(proto: Any) -> dict[str, np.ndarray]:
    """Initializers and Constant-node outputs as arrays (a Q/DQ's scale and zero point must be one of these)."""
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    for n in proto.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    values[n.output[0]] = numpy_helper.to_array(a.t)
    return values


def _ranks(proto: Any) -> dict[str, list[int | None]]:
    """Known shapes of the graph's tensors (after ONNX shape inference when it succeeds), dims None when dynamic."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # inference is a help for the axis check, not a requirement
        inferred = proto
    shapes: dict[str, list[int | None]] = {}
    for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        t = vi.type.tensor_type
        if t.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    for i in proto.graph.initializer:
        shapes[i.name] = list(i.dims)
    return shapes


def _zero_point_problem(node: Any, consts: Mapping[str, np.ndarray]) -> str | None:
    """What is wrong with the node's zero point, or None. An omitted zero point means uint8 in ONNX (opset < 21)."""
    if len(node.input) < 3 or not node.input[2]:
        return "no zero point (ONNX then means uint8): TensorRT needs an int8 zero point of 0"
    zp = consts.get(node.input[2])
    if zp is None:
        return f"zero point {node.input[2]!r} is computed at run time: TensorRT needs a constant"
    if zp.dtype != np.int8:
        return f"zero point dtype {zp.dtype} (TensorRT's explicit INT8 is signed int8 only)"
    if np.any(zp != 0):
        return f"zero point not all zeros (values {sorted({int(v) for v in zp.ravel()})[:4]}): TensorRT is symmetric"
    return None


def _scale_problems(node: Any, consts: Mapping[str, np.ndarray], shapes: Mapping[str, list[int | None]]
                    ) -> list[str]:
    """Scale constant, finite and positive; a per-channel scale 1-D along a valid axis of the quantized tensor."""
    scale = consts.get(node.input[1]) if len(node.input) > 1 else None
    if scale is None:
        return [f"scale {node.input[1] if len(node.input) > 1 else ''!r} is not a constant: TensorRT needs one"]
    out = []
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        out.append(f"scale not positive and finite (min {float(np.min(scale)):.3g})")
    zp = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if zp is not None and zp.shape != scale.shape:
        out.append(f"zero point shape {list(zp.shape)} differs from the scale's {list(scale.shape)}")
    if scale.ndim > 1:
        out.append(f"scale of rank {scale.ndim} (block quantization): TensorRT's INT8 takes per-tensor or "
                   "per-channel scales")
    elif scale.ndim == 1 and scale.size > 1:
        axis = next((int(a.i) for a in node.attribute if a.name == "axis"), 1)
        shape = shapes.get(node.input[0])
        if shape is not None:
            if not -len(shape) <= axis < len(shape):
                out.append(f"per-channel axis {axis} outside the input's rank {len(shape)}")
            elif shape[axis] is not None and shape[axis] != scale.size:
                out.append(f"per-channel scale has {scale.size} values, the input's axis {axis} has {shape[axis]}")
    return out


def check_explicit_int8(proto: Any) -> list[QdqProblem]:
    """Every Q/DQ node of ``proto`` (an ``onnx.ModelProto``) that TensorRT's explicit INT8 cannot take.

    Rules (TensorRT developer guide, "Working with Quantized Types"; the ONNX parser's Q/DQ importer):
    signed int8 zero points that are all 0 (no uint8, no int32/int16), constant scales that are positive
    and finite, zero point and scale of one shape, and a per-channel axis inside the tensor's rank whose
    length equals the number of scales. An empty list: the model is explicit symmetric INT8.
    """
    consts = _constants(proto)
    shapes = _ranks(proto)
    found = []
    for n in proto.graph.node:
        if n.op_type not in QDQ_OPS:
            continue
        name = n.name or n.output[0]
        zp = _zero_point_problem(n, consts)
        for problem in ([zp] if zp else []) + _scale_problems(n, consts, shapes):
            found.append(QdqProblem(name, n.op_type, problem))
    return found


def refusal_lines(problems: list[QdqProblem], limit: int = 8) -> list[str]:
    """The problems as message lines, the first ``limit`` in full and a count of the rest."""
    lines = [str(p) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more Q/DQ problem(s)")
    return lines


def write_explicit_int8(fp32_onnx: str | Path, out: str | Path, calib: Iterable[Mapping[str, np.ndarray]], *,
                        method: str = "minmax") -> dict[str, Any]:
    """Quantize ``fp32_onnx`` to TensorRT's explicit INT8 at ``out`` and check it; returns the quantizer's settings.

    ONNX Runtime's static QDQ quantizer with int8 activations and weights, both symmetric (every zero
    point 0, scale ``max|x| / 127``), per-channel weights, FP32 biases, and Q/DQ only in front of
    Conv/ConvTranspose/MatMul/Gemm: TensorRT fuses a DequantizeLinear into the layer that consumes it,
    and Q/DQ pairs around cheap elementwise ops would only pin their precision.
    """
    from edgekd.quantize.ort_static import COMPUTE_OPS, quantize_onnx_static

    res = quantize_onnx_static(fp32_onnx, out, calib, method=method, per_channel=True, activation="int8",
                               weight="int8", symmetric=True, quantize_bias=False, op_types=COMPUTE_OPS)
    import onnx

    problems = check_explicit_int8(onnx.load(str(out), load_external_data=False))
    if problems:  # the quantizer was asked for exactly this scheme: a problem here is a bug, not bad input
        raise ExportError(f"{Path(out).name}: the symmetric INT8 model edgekd wrote breaks TensorRT's rules:\n"
                          + "\n".join(f"  - {line}" for line in refusal_lines(problems)))
    if not res.nodes_quantized:
        raise ExportError(f"{Path(fp32_onnx).name}: no Conv/MatMul/Gemm was quantized, so an INT8 engine would "
                          "run in FP16/FP32", hint="build --precision fp16 for this model")
    return {"method": method, "nodes_quantized": len(res.nodes_quantized), "calib_batches": res.calib_batches,
            **res.settings}

