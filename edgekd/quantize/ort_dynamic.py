"""ONNX Runtime dynamic INT8 quantization: weights quantized offline, activations per batch at run time.

Good for transformer / linear-heavy models (MatMul, Gemm, attention), where activation
ranges vary a lot between inputs and no calibration set is needed. On convolutional models
it was 4.5-13x *slower* than FP32 on this CPU (ConvInteger kernels, see RUNTIME-NOTES.md), so
by default only MatMul/Gemm/attention ops are quantized and :func:`conv_heavy` lets the CLI
warn. The range of a tensor ``x`` is computed at run time as ``[min(x, 0), max(x, 0)]`` with
``s = (max - min) / 255`` (uint8 activations).

It also wins on small models bound by per-op overhead: the gaze ConvNeXt student (370 ops at
16x24 and below) ran 0.93x FP32 latency with dynamic MatMuls and 1.45x with a static QDQ graph,
whose Q/DQ pairs around LayerNorm, GELU and GRN cost more than the INT8 kernels save (ONNX Runtime
fuses each dynamic MatMul into one DynamicQuantizeMatMul node; batch 1, 1 thread).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from edgekd.errors import ConfigError, QuantizationError, UnknownNameError
from edgekd.fileio import atomic_path, sha256_file
from edgekd.quantize.ort_static import (
    QuantResult,
    _load,
    _quantized_nodes,
    _quiet,
    check_not_quantized,
    prepare_for_quantization,
)

LINEAR_OPS = ("MatMul", "Gemm", "Attention", "LSTM", "GRU", "EmbedLayerNormalization")
CONV_OPS = ("Conv", "ConvTranspose")


def conv_heavy(model: str | Path) -> bool:
    """True when convolutions outnumber matrix multiplies: dynamic INT8 is then a slowdown."""
    ops = [n.op_type for n in _load(model).graph.node]
    return sum(o in CONV_OPS for o in ops) > sum(o in LINEAR_OPS for o in ops)


def quantize_onnx_dynamic(model: str | Path, out: str | Path, *, op_types: Sequence[str] = LINEAR_OPS,
                          per_channel: bool = False, exclude_nodes: Sequence[str] = (),
                          preprocess: bool = True) -> QuantResult:
    """Dynamic INT8 (weights int8, activations uint8 at run time) of ``model``; ``out`` written atomically.

    ``op_types`` defaults to the linear ops only; pass ``("Conv", ...)`` explicitly to quantize
    convolutions too (measured slower than FP32 on x86 CPUs).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    t0 = time.perf_counter()
    model, out = Path(model), Path(out)
    if not model.is_file():
        raise ConfigError(f"model {str(model)!r} does not exist", hint="give the path of an .onnx file")
    if out.suffix != ".onnx":
        raise ConfigError(f"--out {str(out)!r}: must end in .onnx", hint=f"use --out {out.with_suffix('.onnx')}")
    check_not_quantized(model)
    with tempfile.TemporaryDirectory(prefix="edgekd-dyn-") as tmp_s:
        tmp = Path(tmp_s)
        prepared = tmp / "prepared.onnx"
        steps = prepare_for_quantization(model, prepared) if preprocess else ["no pre-processing"]
        if not preprocess:
            shutil.copyfile(model, prepared)
        names = [n.name for n in _load(prepared).graph.node]
        for n in exclude_nodes:
            if n not in names:
                raise UnknownNameError("node to exclude", n, names)
        q = tmp / "q.onnx"
        try:
            with _quiet():
                quantize_dynamic(str(prepared), str(q), op_types_to_quantize=list(op_types), per_channel=per_channel,
                                 weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude_nodes))
        except Exception as exc:
            raise QuantizationError(f"ONNX Runtime could not dynamically quantize {str(model)!r}: "
                                    f"{type(exc).__name__}: {exc}", hint="try static INT8 (--method minmax)") from exc
        quantized = [n.name for n in _load(q).graph.node
                     if n.op_type in ("MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul", "QAttention",
                                      "DynamicQuantizeLSTM")]
        _, fp32 = _quantized_nodes(q)
        with atomic_path(out) as dst:
            shutil.copyfile(q, dst)
    return QuantResult(path=out, sha256=sha256_file(out), runtime="onnxruntime", precision="int8-dynamic",
                       method="dynamic", seconds=time.perf_counter() - t0, calib_batches=0,
                       nodes_quantized=quantized, nodes_excluded=list(exclude_nodes), compute_nodes_fp32=fp32,
                       settings={"op_types": list(op_types), "per_channel": per_channel, "weight": "int8",
                                 "activation": "uint8 (dynamic)"}, prepare_steps=steps)
