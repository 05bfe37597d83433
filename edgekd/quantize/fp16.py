"""FP16 conversion of an ONNX model for GPU runtimes (ORT CUDA/TensorRT EPs, OpenVINO GPU).

Weights and internal tensors become float16; the model's inputs and outputs stay float32
(Cast nodes at the boundary), so callers, parity checks and metric code do not change.
Ops whose float inputs must stay float32 by the ONNX spec or by kernel availability (e.g.
Resize scales, Range, random ops) are kept in float32 by onnxconverter-common's block list.
FP16 keeps 10 mantissa bits (relative precision 2^-11 ~ 4.9e-4) and overflows above 65504,
so outputs typically match FP32 to ~1e-3 relative, and activations beyond 65504 become inf:
``convert_fp16`` checks the converted weights for that.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from edgekd.errors import ConfigError, DependencyMissingError, QuantizationError
from edgekd.fileio import atomic_path, sha256_file
from edgekd.quantize.ort_static import QuantResult, _load, constants_to_initializers

FP16_MAX = 65504.0


def convert_fp16(model: str | Path, out: str | Path, *, keep_io_types: bool = True,
                 op_block_list: Sequence[str] | None = None, node_block_list: Sequence[str] = ()) -> QuantResult:
    """Write an FP16 copy of ``model`` to ``out`` (atomically); IO stays FP32 by default."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    try:
        from onnxconverter_common import float16
    except ImportError as exc:
        raise DependencyMissingError("onnxconverter-common", "fp16", "FP16 conversion of ONNX models") from exc
    t0 = time.perf_counter()
    model, out = Path(model), Path(out)
    if not model.is_file():
        raise ConfigError(f"model {str(model)!r} does not exist", hint="give the path of an .onnx file")
    if out.suffix != ".onnx":
        raise ConfigError(f"--out {str(out)!r}: must end in .onnx", hint=f"use --out {out.with_suffix('.onnx')}")
    m = _load(model)
    constants_to_initializers(m)
    big = [i.name for i in m.graph.initializer  # type: ignore[attr-defined]
           if i.data_type == onnx.TensorProto.FLOAT and i.dims and
           float(np.max(np.abs(numpy_helper.to_array(i)), initial=0.0)) > FP16_MAX]
    if big:
        raise QuantizationError(f"{str(model)!r}: weights {big[:5]} exceed the FP16 range (|w| > {FP16_MAX:g})",
                                hint="keep those nodes in FP32 (node_block_list) or stay in FP32")
    kw = {"keep_io_types": keep_io_types, "node_block_list": list(node_block_list)}
    if op_block_list is not None:
        kw["op_block_list"] = list(op_block_list)
    try:
        m16 = float16.convert_float_to_float16(m, **kw)
    except Exception as exc:
        raise QuantizationError(f"FP16 conversion of {str(model)!r} failed: {type(exc).__name__}: {exc}") from exc
    with atomic_path(out) as dst:
        onnx.save(m16, str(dst))
    n16 = sum(1 for i in m16.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16)
    return QuantResult(path=out, sha256=sha256_file(out), runtime="onnxruntime", precision="fp16", method="cast",
                       seconds=time.perf_counter() - t0, calib_batches=0, nodes_excluded=list(node_block_list),
                       settings={"keep_io_types": keep_io_types, "fp16_initializers": n16})
