"""Stage ``optimize`` of ``distill-and-export`` (recipe ``optimize.enabled``): the ``edgekd optimize`` search
on the run's FP32 student, for the run's device.

Calibration inputs are the first ``optimize.calib_samples`` training items; judging uses the first
``optimize.eval_samples`` items of the task's validation split, which calibration never sees. The search
judges candidates by agreement with ONNX Runtime FP32; the task's own metric is used where the search has a
counterpart (:data:`TASK_METRIC_COUNTERPART`), otherwise the metric that fits each output (``auto``), and the
report says which. Everything it writes lies under ``RUN/optimize/`` and is listed in the manifest.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekd.pipeline.context import RunContext

#: The task metric -> the held-out agreement metric of the search that judges the same decision.
TASK_METRIC_COUNTERPART: dict[str, tuple[str, str]] = {
    "accuracy": ("argmax", "class decisions: arg-max agreement with FP32"),
    "top5_accuracy": ("argmax", "class decisions: arg-max agreement with FP32"),
    "click_accuracy": ("sequence", "the decoded action tokens: sequence agreement with FP32"),
    "angular_error_deg": ("sqnr", "a regression error: SQNR of the continuous outputs against FP32"),
    "mae": ("sqnr", "a regression error: SQNR of the continuous outputs against FP32"),
}
FOLDER = "optimize"


def optimize_metric(requested: str | None, task_metric: str) -> tuple[str, str]:
    """The search's metric for a run and the sentence the report gives for it."""
    if requested is not None:
        return requested, f"optimize.metric={requested} (set in the recipe)"
    if task_metric in TASK_METRIC_COUNTERPART:
        metric, why = TASK_METRIC_COUNTERPART[task_metric]
        return metric, f"the task's metric {task_metric!r} judged by its counterpart {metric!r} ({why})"
    return "auto", (f"the task's metric {task_metric!r} has no counterpart among the search's held-out metrics "
                    "(argmax, iou, sequence, sqnr): judged by the metric that fits each output (auto)")


def _inputs(ctx: RunContext, split: str, n: int) -> list[dict[str, np.ndarray]]:
    """The first ``n`` items of ``split`` as model inputs, batch 1 each."""
    from edgekd.runtime.predict import iterate_numpy

    items: list[dict[str, np.ndarray]] = []
    for batch, _ in iterate_numpy(ctx.task.dataset(split), ctx.spec.input_names, batch_size=1):
        items.append(batch)
        if len(items) >= n:
            break
    return items


def run_optimize(ctx: RunContext) -> dict[str, Any] | None:
    """Run the search when the recipe asks for it; report.json's ``optimize`` section (None when off)."""
    cfg = ctx.recipe.optimize
    if not cfg.enabled:
        return None
    fp32 = ctx.artifacts.fp32
    if fp32 is None or not fp32.path(ctx.out_dir).is_file():
        return {"enabled": True, "picked": None, "skipped": "no FP32 student.onnx in this run (distill.qat.mode="
                "scratch exports the INT8 model only): nothing to search from", "candidates": []}
    from edgekd.pipeline.optimize import OptimizeRequest, optimize
    from edgekd.profile.protocol import MeasureConfig

    metric, metric_source = optimize_metric(cfg.metric, ctx.task.metric.name)
    p = ctx.recipe.profile
    with ctx.rec.stage("optimize") as r:
        calib, evals = _inputs(ctx, "train", cfg.calib_samples), _inputs(ctx, "val", cfg.eval_samples)
        req = OptimizeRequest(
            model=fp32.path(ctx.out_dir), out_dir=ctx.out_dir / FOLDER, device=ctx.device.name,
            device_config=ctx.device, metric=metric, max_drop=cfg.max_drop, min_sqnr_db=cfg.min_sqnr_db,
            threads=p.threads or ctx.device.default_threads, only=cfg.candidates, only_exact=True,
            accuracy_control=cfg.accuracy_control, progress=ctx.progress, calib_feeds=calib, eval_feeds=evals,
            data_note=f"calibrated on the first {len(calib)} training inputs, judged on the first {len(evals)} "
                      "inputs of the validation split (held out from calibration)",
            measure=MeasureConfig(warmup_s=p.warmup_s, warmup_iters=p.warmup_iters, sessions=p.sessions,
                                  iterations=p.iterations, min_duration_s=p.min_duration_s))
        rep = optimize(req)
        r.update(picked=rep.picked, candidates=len(rep.candidates))
    return section(ctx, rep, metric_source)


def section(ctx: RunContext, rep: Any, metric_source: str) -> dict[str, Any]:
    """report.json's ``optimize`` section from an :class:`~edgekd.pipeline.optimize.OptimizeReport`."""
    from pathlib import Path

    def rel(path: str | None) -> str | None:
        if path is None:
            return None
        p = Path(path).resolve()
        root = ctx.out_dir.resolve()
        return str(p.relative_to(root)) if p.is_relative_to(root) else str(path)

    pick = next((c for c in rep.candidates if c.name == rep.picked), None)
    keep = ("name", "runtime", "precision", "accuracy", "latency_p50_ms", "ratio_to_ort_fp32", "pareto", "status",
            "why")
    return {
        "enabled": True, "picked": rep.picked,
        "picked_artifact": rel(pick.artifact) if pick else None, "picked_runtime": pick.runtime if pick else None,
        "picked_precision": pick.precision if pick else None,
        "metric": dict(rep.metrics), "metric_source": metric_source, "data": rep.data, "budget": dict(rep.budget),
        "threads": rep.threads, "timed_on": rep.timed_on,
        "report": f"{FOLDER}/optimize.json", "table": f"{FOLDER}/optimize.md", "plot": f"{FOLDER}/optimize.png",
        "candidates": [{k: getattr(c, k) for k in keep} | {"artifact": rel(c.artifact)} for c in rep.candidates],
        "notes": list(rep.notes),
    }
