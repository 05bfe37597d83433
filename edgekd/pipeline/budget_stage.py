"""The device budget verdict at the end of ``edgekd distill-and-export``.

The checks themselves live in :mod:`edgekd.gate.budget_checks` (one implementation for the pipeline and for
``edgekd gate``). What this module decides is *which* checks are meaningful where the pipeline ran:
latency and peak memory describe the machine that measured them, so they are judged only when that
machine is the device named (``host-cpu``); for a board profile they are reported as "not measured
here" with the command that measures them on the board. Metric and artifact-size budgets do not
depend on the machine and are judged everywhere.
"""

from __future__ import annotations

from typing import Any

from edgekd.config.device import DeviceConfig
from edgekd.gate.budget_checks import VARIANT_FOR_PRECISION, check_budgets
from edgekd.gate.verdict import Check, outcome

#: device profiles that describe the machine edgekd itself runs on
HOST_DEVICES = frozenset({"host-cpu"})


def _profile_doc(p: dict[str, Any]) -> dict[str, Any]:
    """The pipeline keeps a summary per profiled artifact; rebuild the part of an ``edgekd.profile/1``
    document that the budget checks read."""
    return {"valid": bool(p.get("valid")), "invalid_reasons": list(p.get("invalid_reasons") or []),
            "results": {"latency_ms": p.get("latency_ms") or {}, "peak_rss_mb": p.get("peak_rss_mb")}}


def judge_budget(ctx: Any, report: dict[str, Any], profiles: dict[str, Any]) -> tuple[dict[str, Any], bool | None]:
    """Stage 5: the device's budget for the run (``ctx`` is its RunContext). An INT8 budget judges the run's
    INT8 artifact, whichever runtime it was made for (``student.int8.onnx`` or the OpenVINO IR)."""
    int8 = ctx.artifacts.int8
    variants = {"int8": int8.variant} if int8 is not None and int8.variant else {}
    section, passed = check_pipeline_budget(report, ctx.device, ctx.recipe.name, profiles, variants=variants)
    note = pick_note(report.get("optimize"), section, ctx.device.name, ctx.recipe.name)
    if note:
        section["notes"] = [*section.get("notes", []), note]
    return section, passed


def pick_note(optimize: dict[str, Any] | None, section: dict[str, Any], device: str, recipe: str) -> str | None:
    """The budget judges the variant of its precision (e.g. the recipe's INT8 artifact), not what the
    optimize search told the user to ship; when those differ, say so and give the commands that judge the
    pick (a profile in its own process, then the same budget through ``edgekd gate``)."""
    opt = optimize or {}
    art, judged = opt.get("picked_artifact"), section.get("variant")
    if not art or judged is None:
        return None  # nothing picked, or no budget for this recipe: nothing to contrast
    from edgekd.pipeline.artifacts import pick_runtime_flags

    return (f"the budget judged {judged}; the optimize search picked {opt.get('picked')} ({art}), which the "
            f"budget did not judge: `edgekd profile RUN/{art}{pick_runtime_flags(opt)} --device {device} --out "
            f"pick.json` then `edgekd gate pick.json --device {device} --recipe {recipe}`")


def _contended_latency(check: Check, prof: dict[str, Any] | None) -> Check:
    """A latency FAIL measured while other processes competed for the CPUs says more about them than
    about the model: INCONCLUSIVE (exit 3), re-measure on a quiet machine. A PASS under contention stands
    (contention only slows a model down)."""
    if check.name != "latency_p90_ucb99" or check.verdict != "FAIL" or not (prof or {}).get("contended"):
        return check
    cont = (prof or {}).get("cpu_contention") or {}
    load = (f"{cont['runnable_threads_mean']:.1f} runnable threads on average on {cont['cpus']} CPUs"
            if "runnable_threads_mean" in cont and "cpus" in cont else "more runnable threads than CPUs")
    return Check(check.name, "INCONCLUSIVE", f"{check.message}, but measured while the CPUs were contended "
                 f"({load}): re-run on a quiet machine", model=check.model, device=check.device,
                 value=check.value, limit=check.limit, unit=check.unit, details={**check.details, "contended": True})


def _notes(budget: Any, device: str, recipe: str, on_device: bool) -> list[str]:
    """What this run cannot judge, and the commands that judge it."""
    notes: list[str] = []
    if budget.peak_rss_mb is not None and on_device:
        notes.append(f"peak_rss_mb ({budget.peak_rss_mb:g} MB) is not judged here (this process also holds the "
                     "training data); judge it with `edgekd profile ARTIFACT --out p.json` then "
                     f"`edgekd gate p.json --device {device} --recipe {recipe}`")
    if not on_device and (budget.latency_p90_ms is not None or budget.peak_rss_mb is not None):
        notes.append(f"latency/memory budgets describe {device}, not this machine: measure them there with "
                     f"`edgekd profile ARTIFACT --device {device} --host USER@BOARD --out board.json` and "
                     f"`edgekd gate board.json --device {device} --recipe {recipe}`")
    return notes


def _size_check(size_bytes: int | None, limit_mb: float, variant: str, device: str) -> Check:
    if size_bytes is None:
        return Check("artifact_mb", "INVALID", f"{variant} has no artifact size in the report",
                     model=variant, device=device, limit=limit_mb, unit="MB")
    mb = size_bytes / 1e6
    ok = mb <= limit_mb
    return Check("artifact_mb", "PASS" if ok else "FAIL",
                 f"artifact size {mb:.3g} MB {'<=' if ok else '>'} budget {limit_mb:g} MB",
                 model=variant, device=device, value=mb, limit=limit_mb, unit="MB")


def check_pipeline_budget(report: dict[str, Any], device: DeviceConfig, recipe_name: str,
                          profiles: dict[str, Any], *, variants: dict[str, str] | None = None
                          ) -> tuple[dict[str, Any], bool | None]:
    """Return ``(budget section of report.json, passed)``; ``passed`` is None when the device has no
    budget for this recipe or no check could be judged here. ``variants`` overrides the report variant
    judged for a precision (default: ``edgekd.gate.budget_checks.VARIANT_FOR_PRECISION``)."""
    budget = device.budgets.get(recipe_name)
    if budget is None:
        return ({"device": device.name, "recipe": recipe_name, "verdict": None,
                 "note": f"device {device.name!r} sets no budget for recipe {recipe_name!r} "
                         f"(budgets for: {', '.join(sorted(device.budgets)) or 'none'})"}, None)
    variant = (variants or {}).get(budget.precision) or VARIANT_FOR_PRECISION[budget.precision]
    if variant not in report.get("variants", {}):
        # e.g. quantize.enabled: false against an INT8 budget: nothing of the kind the budget is for exists
        return ({"device": device.name, "recipe": recipe_name, "variant": variant, "verdict": None,
                 "note": f"the {budget.precision} budget of {device.name!r} judges {variant}, which this run did not "
                         f"make (variants: {', '.join(sorted(report.get('variants', {})))}): not judged"}, None)
    variant_info = report["variants"][variant]
    on_device = device.name in HOST_DEVICES
    # The pipeline profiles in its own process, whose high-water RSS includes the training data and both
    # models: it says nothing about the artifact's footprint. Memory budgets are judged by `edgekd profile`
    # (a fresh process per artifact) and `edgekd gate`.
    local = budget.model_copy(update={"latency_p90_ms": None if not on_device else budget.latency_p90_ms,
                                      "peak_rss_mb": None})
    notes = _notes(budget, device.name, recipe_name, on_device)
    prof = profiles.get(variant)
    if on_device and prof is None and budget.latency_p90_ms is not None:
        checks: list[Check] = [Check("latency_p90_ucb99", "INVALID",
                                     f"{variant} was not profiled (profile.enabled is false or the artifact "
                                     "is missing)", model=variant, device=device.name)]
        local = local.model_copy(update={"latency_p90_ms": None})
    else:
        checks = []
    size_mb = variant_info.get("bytes")
    checks += [_contended_latency(c, prof) for c in check_budgets(
        local.model_copy(update={"artifact_mb": None}),
        profile=_profile_doc(prof) if (prof is not None and on_device) else None,
        pipeline_report=report, variant=variant, model=variant, device=device.name)]
    if budget.artifact_mb is not None:
        checks.append(_size_check(size_mb, budget.artifact_mb, variant, device.name))
    if not checks:
        return ({"device": device.name, "recipe": recipe_name, "variant": variant, "verdict": None,
                 "checks": [], "notes": notes}, None)
    out = outcome(checks)
    # FAIL fails the run; PASS passes it; INVALID/INCONCLUSIVE (e.g. too few samples for the p90 bound, a
    # throttled or contended run) is "not judged": reported as such, never as a pass. `edgekd gate` decides
    # in CI; the CLI exits 3 on INCONCLUSIVE.
    passed = {"PASS": True, "FAIL": False}.get(out.verdict)
    return ({"device": device.name, "recipe": recipe_name, "variant": variant, "verdict": out.verdict,
             "judged_on_this_machine": on_device, "checks": [c.to_json() for c in checks], "notes": notes},
            passed)
