"""Absolute budgets of ``devices/*.yaml`` ``budgets[recipe]`` (:class:`edgekd.config.device.Budget`).

* latency: the profile report's ``p90_ucb99`` (the 99% upper confidence bound of the p90), not the
  point p90: a budget should fail only when we are confident it is exceeded... and pass only when we
  are confident it is met, so the bound is compared, never the noisy point;
* peak RSS (``results.peak_rss_mb``), judged only when the report says it covers one artifact in its own
  process (``results.peak_rss_scope == "process"``): a peak taken with other models or training data in
  the process says nothing about the artifact's footprint, so it is "not judged", with the reason
  (:func:`rss_not_judged`). The pipeline's budget never judges RSS (its process holds the training data)
  and its profile reports, taken with several models loaded, carry such a scope: ``edgekd gate`` on them
  judges what the pipeline judged;
* artifact size (the file itself, else ``artifact.size_mb``);
* metric floor/ceiling from a pipeline ``report.json`` (``variants.<variant>.metric``).

Latency and memory measured in an invalid run (throttled, drifting clocks) are INVALID, not FAIL/PASS.
A figure that is not a finite, non-negative number (a JSON ``true``, NaN, a string) is INVALID too: it is
never coerced into a number.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edgekd.config.device import Budget
from edgekd.errors import EdgekdError
from edgekd.gate.verdict import Check

#: which pipeline-report variant the metric budget reads for each budget precision
VARIANT_FOR_PRECISION = {"int8": "onnx_int8", "fp32": "onnx_fp32", "fp16": "onnx_fp32", "bf16": "onnx_fp32"}


#: the peak-RSS scope of a report measured with one artifact alone in its process (edgekd profile, gate)
RSS_SCOPE_ALONE = "process"


def rss_not_judged(profile: dict[str, Any]) -> str | None:
    """Why the report's peak RSS cannot be judged against a budget, or None when it can."""
    scope = (profile.get("results") or {}).get("peak_rss_scope")
    if scope == RSS_SCOPE_ALONE:
        return None
    return (f"peak RSS not judged: the report's peak covers {scope!r}, not this artifact alone in its own "
            "process; measure it with `edgekd profile ARTIFACT --out p.json` then `edgekd gate p.json ...`")


def as_figure(value: Any, what: str) -> tuple[float | None, str | None]:
    """``(float, None)`` for a finite number >= 0; ``(None, reason)`` for anything else but None. A bool
    is refused although Python counts it as an int (a JSON ``true`` is not 1 ms)."""
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None, f"{what} is {value!r}: not a finite number >= 0 (corrupt report)"
    return float(value), None


def _figure_check(name: str, value: Any, limit: float, unit: str, *, model: str, device: str,
                  invalid: list[str], what: str) -> Check:
    num, why = as_figure(value, what)
    if why:
        return Check(name, "INVALID", why, model=model, device=device, limit=limit, unit=unit)
    return _le(name, num, limit, unit, model=model, device=device, invalid=invalid, what=what)


def _le(name: str, value: float | None, limit: float, unit: str, *, model: str, device: str,
        invalid: list[str], what: str) -> Check:
    if value is None:
        return Check(name, "INVALID", f"{what}: not in the report, cannot check the budget {limit:g} {unit}",
                     model=model, device=device, limit=limit, unit=unit)
    if invalid:
        return Check(name, "INVALID", f"{what} {value:.3g} {unit} measured in an invalid run ("
                     + "; ".join(invalid) + ")", model=model, device=device, value=value, limit=limit, unit=unit)
    ok = value <= limit
    return Check(name, "PASS" if ok else "FAIL",
                 f"{what} {value:.3g} {unit} {'<=' if ok else '>'} budget {limit:g} {unit}",
                 model=model, device=device, value=value, limit=limit, unit=unit)


def check_budgets(budget: Budget, *, profile: dict[str, Any] | None = None,
                  pipeline_report: dict[str, Any] | None = None, artifact: str | Path | None = None,
                  variant: str | None = None, model: str = "", device: str = "",
                  notes: list[str] | None = None) -> list[Check]:
    """One Check per budget field that is set and can be judged; why a set field is not judged is
    appended to ``notes``. ``profile`` is an ``edgekd.profile/1`` dict, ``pipeline_report`` a
    ``report.json`` of ``edgekd distill-and-export``."""
    checks: list[Check] = []
    invalid = [] if profile is None or profile.get("valid", False) else list(
        profile.get("invalid_reasons") or ["report marked invalid"])
    results = (profile or {}).get("results", {})
    if budget.latency_p90_ms is not None:
        if profile is None:
            raise EdgekdError(f"the budget sets latency_p90_ms={budget.latency_p90_ms:g} but no profile report "
                              "was given", hint="pass a profile report (edgekd profile --out report.json)")
        ucb = (results.get("latency_ms") or {}).get("p90_ucb99")
        checks.append(_figure_check("latency_p90_ucb99", ucb, budget.latency_p90_ms, "ms", model=model,
                                    device=device, invalid=invalid, what="p90 latency (99% upper bound)"))
    if budget.peak_rss_mb is not None and profile is not None:
        why_not = rss_not_judged(profile)
        if why_not is None:
            checks.append(_figure_check("peak_rss_mb", results.get("peak_rss_mb"), budget.peak_rss_mb, "MB",
                                        model=model, device=device, invalid=invalid, what="peak RSS"))
        elif notes is not None:
            notes.append(f"peak_rss_mb ({budget.peak_rss_mb:g} MB): {why_not}")
    if budget.artifact_mb is not None:
        size: Any = None
        if artifact is not None and Path(artifact).is_file():
            size = Path(artifact).stat().st_size / 1e6
        elif profile is not None:
            size = (profile.get("artifact") or {}).get("size_mb")
        checks.append(_figure_check("artifact_mb", size, budget.artifact_mb, "MB", model=model, device=device,
                                    invalid=[], what="artifact size"))
    if (budget.metric_min is not None or budget.metric_max is not None) and pipeline_report is not None:
        checks.append(_metric_check(budget, pipeline_report, variant, model=model, device=device))
    return checks


def _metric_check(budget: Budget, rep: dict[str, Any], variant: str | None, *, model: str, device: str) -> Check:
    var = variant or VARIANT_FOR_PRECISION[budget.precision]
    variants = rep.get("variants")
    if not isinstance(variants, dict) or var not in variants:
        known = sorted(variants) if isinstance(variants, dict) else []
        raise EdgekdError(f"--recipe-report: variants.{var} is missing (has: {', '.join(known) or 'no variants'})",
                          hint="pass the report.json written by `edgekd distill-and-export`")
    value = variants[var].get("metric") if isinstance(variants[var], dict) else None
    meta = rep.get("metric")
    name = str(meta.get("name", "metric")) if isinstance(meta, dict) else "metric"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        # INVALID, never compared: NaN < floor is False and would read as within budget. (`edgekd gate`
        # refuses such a report before this, with exit 4 that --allow-invalid does not accept.)
        return Check(f"metric_{name}", "INVALID", f"--recipe-report: variants.{var}.metric is {value!r}, "
                     "expected a finite number (corrupt report)", model=model, device=device)
    fails = []
    if budget.metric_min is not None and value < budget.metric_min:
        fails.append(f"< floor {budget.metric_min:g}")
    if budget.metric_max is not None and value > budget.metric_max:
        fails.append(f"> ceiling {budget.metric_max:g}")
    limit = budget.metric_min if budget.metric_min is not None else budget.metric_max
    bounds = " and ".join(x for x in (
        f">= {budget.metric_min:g}" if budget.metric_min is not None else "",
        f"<= {budget.metric_max:g}" if budget.metric_max is not None else "") if x)
    msg = f"{name} of {var} = {value:.4g} " + (", ".join(fails) if fails else f"within budget ({bounds})")
    return Check(f"metric_{name}", "FAIL" if fails else "PASS", msg, model=model, device=device,
                 value=float(value), limit=limit, unit="")
