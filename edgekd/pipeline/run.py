"""``edgekd distill-and-export``: recipe -> teacher -> students -> artifacts -> metrics -> latency ->
budget -> report and manifest. Each stage is one function with typed input and output (train_students,
produce_artifacts, evaluate_variants, profile_variants, judge_budget); this module composes them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.config.device import DeviceConfig
from edgekd.config.recipe import RecipeBase, recipe_hash
from edgekd.fileio import write_json, write_text
from edgekd.pipeline.artifacts import ArtifactSet
from edgekd.pipeline.context import Recorder, RunContext
from edgekd.pipeline.evaluate import evaluate_variants
from edgekd.pipeline.manifest import write_manifest
from edgekd.pipeline.models import RunReport
from edgekd.pipeline.produce import produce_artifacts
from edgekd.pipeline.profiling import profile_variants
from edgekd.pipeline.report import render_markdown
from edgekd.pipeline.summary import assemble_report
from edgekd.pipeline.train import train_students


@dataclass
class PipelineResult:
    out_dir: Path
    report: dict[str, Any]
    budget_passed: bool | None  # None when no budget applies (or measured off-device)

    @property
    def verdict(self) -> str | None:
        """The budget's verdict: PASS, FAIL, INCONCLUSIVE, INVALID, or None when nothing was judged."""
        return (self.report.get("budget") or {}).get("verdict")


def start_run(recipe: RecipeBase, device: DeviceConfig, out_dir: Path, *, progress: bool = True,
              say: Callable[[str], None] = print) -> RunContext:
    """Seed, build the task and read its io spec (once): the context every stage shares."""
    import torch

    from edgekd.tasks import build_task

    rec = Recorder(say)
    out_dir.mkdir(parents=True, exist_ok=True)
    artifacts = ArtifactSet.of(recipe, out_dir)
    artifacts.remove_stale()  # a re-used --out folder must not report an earlier run's artifact
    # Seed before anything builds weights, so a run is reproducible from (recipe, seed).
    torch.manual_seed(recipe.seed)
    np.random.seed(recipe.seed % (2**32))
    with rec.stage("data", task=recipe.task.kind):
        task = build_task(recipe.task, recipe.seed)
        spec = task.io_spec()
        task.dataset("train")  # built here, so the data stage's time is the data's
    return RunContext(recipe, device, out_dir, task, spec, artifacts, rec, progress)


def run_pipeline(recipe: RecipeBase, device: DeviceConfig, out_dir: Path, *, progress: bool = True,
                 say: Callable[[str], None] = print) -> PipelineResult:
    """Run every stage for ``recipe`` and ``device`` into ``out_dir``; report.json, report.md, the trade-off
    plot and manifest.json are written last (the manifest after everything it lists).

    The folder is guarded (``edgekd.pipeline.runfolder``): locked against a second run, the previous run's
    report and manifest removed before any artifact is touched, a RUN_IN_PROGRESS marker until the manifest
    is written, temp files swept on every exit."""
    from edgekd.pipeline.capability import check_capabilities
    from edgekd.pipeline.runfolder import run_folder

    warnings = check_capabilities(recipe, device)  # a request that cannot work fails before the folder is touched
    with run_folder(out_dir, also_stale=("profile", "optimize")):
        return _run_stages(recipe, device, out_dir, warnings, progress=progress, say=say)


def _run_stages(recipe: RecipeBase, device: DeviceConfig, out_dir: Path, warnings: list[str], *,
                progress: bool, say: Callable[[str], None]) -> PipelineResult:
    from edgekd.pipeline.budget_stage import judge_budget
    from edgekd.pipeline.optimize_stage import run_optimize

    for w in warnings:
        say(f"warning: {w}")
    t_start = time.perf_counter()
    ctx = start_run(recipe, device, out_dir, progress=progress, say=say)
    trained = train_students(ctx)
    produced = produce_artifacts(ctx, trained)
    searched = run_optimize(ctx)  # recipe optimize.enabled: the search on the exported FP32 student
    variants = evaluate_variants(ctx, trained)
    profiles = profile_variants(ctx, trained) if recipe.profile.enabled else {}
    report = assemble_report(ctx, trained, produced, variants, profiles, warnings)
    if searched is not None:
        report["optimize"] = searched
    with ctx.rec.stage("budget"):
        report["budget"], budget_passed = judge_budget(ctx, report, profiles)
    ctx.rec.timings["total"] = round(time.perf_counter() - t_start, 2)
    report["timings_s"] = ctx.rec.timings
    report = write_reports(ctx, report)
    write_manifest(ctx.out_dir, recipe_name=recipe.name, recipe_hash=recipe_hash(recipe),
                   recipe_config=recipe.model_dump(mode="json"), device=device.name, steps=ctx.rec.steps,
                   artifacts=ctx.artifacts.manifest_entries(variants, produced.exports))
    return PipelineResult(out_dir, report, budget_passed)


def write_reports(ctx: RunContext, report: dict[str, Any]) -> dict[str, Any]:
    """Validate the report against its model, then write report.json, report.md and the trade-off plot."""
    from edgekd.pipeline.plot import plot_tradeoff

    report = RunReport.model_validate(report).model_dump(mode="json", by_alias=True, exclude_unset=True)
    write_json(ctx.out_dir / "report.json", report)
    plot = plot_tradeoff(report, ctx.out_dir / "report_tradeoff.png")
    write_text(ctx.out_dir / "report.md", render_markdown(report, plot=plot.name if plot else None))
    return report
