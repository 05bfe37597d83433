"""Post-training INT8 of the FP32 ONNX export, as ``quantize`` says: ONNX Runtime static or dynamic,
ONNX Runtime with the accuracy-aware fallback (``quantize.max_metric_drop``), or NNCF for OpenVINO
(written as the IR ``student.int8.xml``/``.bin``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekd.pipeline.context import RunContext
from edgekd.pipeline.produce import artifact_predict, public


def quantize_int8(ctx: RunContext, onnx_path: Path) -> dict[str, Any]:
    """Write ``ctx.artifacts.int8`` from ``onnx_path``; returns the quantizer's details for the manifest."""
    q = ctx.recipe.quantize
    int8 = ctx.artifacts.int8
    if int8 is None:  # the caller quantizes only when the plan has a PTQ INT8 artifact
        raise RuntimeError("quantize_int8 called for a plan without an INT8 artifact")
    int8_path = int8.path(ctx.out_dir)
    if q.runtime == "onnxruntime" and q.max_metric_drop is not None:
        return _with_fallback(ctx, onnx_path, int8_path, ctx.calibration(), q.max_metric_drop)
    if q.mode == "dynamic":
        from edgekd.quantize.ort_dynamic import quantize_onnx_dynamic

        # no calibration: MatMul/Gemm weights are INT8 offline, activations are quantized per call
        return public(quantize_onnx_dynamic(onnx_path, int8_path, per_channel=q.per_channel))
    if q.runtime == "onnxruntime":
        from edgekd.quantize.ort_static import quantize_onnx_static

        return public(quantize_onnx_static(onnx_path, int8_path, ctx.calibration(), method=q.calibration.method,
                                           per_channel=q.per_channel, percentile=q.calibration.percentile))
    from edgekd.quantize.nncf_ov import quantize_openvino

    return public(quantize_openvino(onnx_path, int8_path, ctx.calibration(), subset_size=q.calibration.samples))


def _with_fallback(ctx: RunContext, onnx_path: Path, int8_path: Path, calib: list[dict[str, np.ndarray]],
                   max_drop: float) -> dict[str, Any]:
    """``quantize.max_metric_drop``: quantize everything, then return the most sensitive layers to FP32
    until the metric on the VALIDATION split (never the test split, which reports the result) drops by at
    most that much (edgekd.quantize.fallback). A model that cannot get there is kept at its best and
    flagged in the report, not silently shipped as within tolerance."""
    import tempfile

    from edgekd.quantize.fallback import OrtQuantizer, accuracy_aware_fallback

    q, task, onnx_art = ctx.recipe.quantize, ctx.task, ctx.artifacts.ONNX_INT8

    def val_metric(path: Path) -> float:
        return float(task.evaluate(artifact_predict(onnx_art, path), split="val").metric)

    with tempfile.TemporaryDirectory(prefix="edgekd-quant-") as work:
        quantizer = OrtQuantizer(onnx_path, calib, Path(work), method=q.calibration.method,
                                 per_channel=q.per_channel, percentile=q.calibration.percentile)
        res = accuracy_aware_fallback(onnx_path, int8_path, quantizer, val_metric,
                                      lower_is_better=task.metric.lower_is_better, max_drop=max_drop)
    return {"fallback": True, "split": "val", "max_metric_drop": res.max_drop, "metric_fp32": res.metric_fp32,
            "metric_int8_all": res.metric_int8_all, "metric_final": res.metric_final,
            "fp32_layers": res.fallback_layers, "within_tolerance": res.within_tolerance,
            "evaluations": res.evaluations}
