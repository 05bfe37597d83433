"""The run's headline figures (distillation gain, INT8 change, speed-ups) and the report.json document
assembled from the stages' outputs."""

from __future__ import annotations

from typing import Any

from edgekd.config.recipe import recipe_hash
from edgekd.pipeline.context import RunContext
from edgekd.pipeline.produce import Produced
from edgekd.pipeline.report import REPORT_SCHEMA
from edgekd.pipeline.train import TrainedModels


def assemble_report(ctx: RunContext, trained: TrainedModels, produced: Produced, variants: dict[str, Any],
                    profiles: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """report.json without its budget and timings (judged and measured last). Adds to ``warnings``."""
    recipe, task = ctx.recipe, ctx.task
    for name, p in profiles.items():
        if name in variants:
            variants[name]["latency_ms"] = {k: p["latency_ms"][k] for k in ("p50", "p90", "p99")}
    summary = summarize(task.metric.lower_is_better, variants, profiles)
    if "int8_relative_change" in summary:
        # the recipe's quantize.relative_tolerance, in the direction that hurts (worse INT8 metric)
        worse = (1.0 if task.metric.lower_is_better else -1.0) * summary["int8_relative_change"]
        summary["int8_within_tolerance"] = worse <= recipe.quantize.relative_tolerance
        if not summary["int8_within_tolerance"]:
            warnings.append(f"INT8 {task.metric.name} is {worse:.1%} worse than FP32, beyond "
                            f"quantize.relative_tolerance={recipe.quantize.relative_tolerance:g}: set "
                            "quantize.max_metric_drop for the accuracy-aware fallback, or ship FP32")
    training = {"student_alone": trained.alone.history if trained.alone else [], "student_kd": trained.kd.history}
    return {
        "schema": REPORT_SCHEMA, "recipe": recipe.name, "recipe_hash": recipe_hash(recipe), "preset": recipe.preset,
        "seed": recipe.seed, "device": ctx.device.name,
        # concrete model input shapes at the profiled batch, for `edgekd profile --input NAME=SHAPE`
        "inputs": concrete_inputs(ctx.spec, recipe.profile.batch),
        "metric": {"name": task.metric.name, "lower_is_better": task.metric.lower_is_better,
                   "unit": task.metric.unit, "beside": list(task.metric.beside)},
        "variants": variants, "summary": summary, "parity": produced.parity, "exports": produced.exports,
        "profiles": profiles, "teacher": {k: v for k, v in trained.teacher_info.items() if k != "history"},
        "training": training, "warnings": warnings,
    }


def summarize(lower_is_better: bool, variants: dict[str, Any], profiles: dict[str, Any]) -> dict[str, Any]:
    """Distillation gain (positive: KD helped), INT8's relative metric change, and p50 speed-ups."""
    s: dict[str, Any] = {}
    m = {k: v.get("metric") for k, v in variants.items()}
    if m.get("student_alone") is not None and m.get("student_kd") is not None:
        gain = m["student_alone"] - m["student_kd"] if lower_is_better else m["student_kd"] - m["student_alone"]
        s["distillation_gain"] = gain
    int8 = next((k for k in ("onnx_int8", "openvino_int8") if m.get(k) is not None), None)
    if int8 is not None and m.get("onnx_fp32"):
        s["int8_relative_change"] = (m[int8] - m["onnx_fp32"]) / abs(m["onnx_fp32"])
    p50 = {k: v["latency_ms"]["p50"] for k, v in profiles.items()}
    if "torch_fp32" in p50:
        for k in ("onnx_fp32", "onnx_int8", "openvino_int8"):
            if k in p50:
                s[f"speedup_{k}_vs_torch_fp32"] = p50["torch_fp32"] / p50[k]
    if "teacher_torch_fp32" in p50 and "torch_fp32" in p50:
        s["latency_ratio_student_vs_teacher_torch"] = p50["torch_fp32"] / p50["teacher_torch_fp32"]
    if "teacher_onnx_fp32" in p50:
        for k in ("onnx_fp32", "onnx_int8"):
            if k in p50:
                s[f"latency_ratio_{k}_vs_teacher_onnx"] = p50[k] / p50["teacher_onnx_fp32"]
    return s


def concrete_inputs(spec: Any, batch: int) -> dict[str, list[int]]:
    """Input shapes at the profiled batch; inputs with other dynamic dims are left out (give them by hand)."""
    from edgekd.errors import EdgekdError

    out: dict[str, list[int]] = {}
    for t in spec.inputs:
        try:
            out[t.name] = list(t.concrete_shape({"batch": batch}))
        except EdgekdError:
            continue
    return out
