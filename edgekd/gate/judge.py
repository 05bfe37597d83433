"""Compose a gate: validity, fingerprint, relative regression and absolute budgets into Checks.

* :func:`compare_reports`: two stored profile reports (fingerprints must match, else INVALID);
* :func:`remeasure`: two model files measured here, interleaved session by session, sequentially
  (more rounds while the rule says INCONCLUSIVE, up to the cap);
* :func:`budget_checks`: a profile report against ``devices/<D>.yaml`` ``budgets[recipe]``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError, EdgekdError, GateInvalid
from edgekd.gate.regression import RegressionConfig, RegressionResult, evaluate, sequential_gate
from edgekd.gate.verdict import Check, validity_check


def regression_check(res: RegressionResult, *, model: str = "", device: str = "") -> Check:
    return Check("regression", res.verdict, res.reason, model=model, device=device, value=res.ratio,
                 limit=1 + res.threshold, unit="x", details=asdict(res))


def compare_reports(candidate: Any, baseline: Any, cfg: RegressionConfig, *, model: str = "",
                    device: str = "") -> list[Check]:
    """Validity of both, fingerprint match, then the rule on their session medians: replayed as is for two
    reports of one interleaved run, with the between-run drift bound of :mod:`edgekd.gate.drift` for
    reports taken at different times. When a report is invalid or the fingerprints differ, the regression
    check itself is INVALID."""
    from edgekd.profile.fingerprint import fingerprints_match

    checks = [validity_check(candidate.data, model=model, device=device, role="candidate"),
              validity_check(baseline.data, model=model, device=device, role="baseline")]
    ok, diffs = fingerprints_match(candidate.data, baseline.data)
    checks.append(Check("fingerprint", "PASS" if ok else "INVALID",
                        "device fingerprints match" if ok else
                        "baseline measured on a different machine or runtime: " + "; ".join(diffs),
                        model=model, device=device, details={"differences": diffs}))
    mc, mb = candidate.session_medians_ms, baseline.session_medians_ms
    if min(len(mc), len(mb)) < 3:
        checks.append(Check("regression", "INVALID", f"too few sessions: candidate {len(mc)}, baseline {len(mb)}; "
                            "at least 3 per side are needed (profile with --sessions >= 3)",
                            model=model, device=device))
        return checks
    from edgekd.gate.drift import compare_across_runs, same_interleaved_run

    if same_interleaved_run(candidate.data, baseline.data):
        res = evaluate(mc, mb, cfg)  # one interleaved run: no between-run drift to allow for
    else:
        res = compare_across_runs(mc, mb, cfg, cfg.drift_allowance)
    chk = regression_check(res, model=model, device=device)
    if any(c.verdict == "INVALID" for c in checks):
        chk.message = f"not judged ({res.verdict} on untrusted data): " + res.reason
        chk.verdict = "INVALID"
    checks.append(chk)
    return checks


def remeasure(candidate: Path, baseline: Path, cfg: RegressionConfig, *, runtime: str | None = None,
              threads: int | None = None, inputs: tuple[str, ...] = (), feeds: tuple[str, ...] = (),
              iterations: int = 30,
              warmup_s: float = 0.3, min_duration_s: float = 0.0, progress: bool = False,
              model: str = "", device: str = "") -> tuple[list[Check], Any, Any]:
    """Measure both model files here, interleaved (A B, B A, ...), adding rounds while INCONCLUSIVE.
    Returns (checks, candidate report, baseline report). ``inputs``/``feeds`` are ``--input`` (a shape or a
    value) and ``--feed NAME=FILE.npy`` items, as for ``edgekd profile``; both models get the same feeds."""
    from edgekd.feeds import parse_input_args
    from edgekd.profile.protocol import InterleavedRun, MeasureConfig, ProfileTarget, load_session
    from edgekd.runtime.base import SessionOptions

    given = parse_input_args(list(inputs), list(feeds))
    rts = [_checked_runtime(Path(p), runtime) for p in (candidate, baseline)]
    opts = SessionOptions(threads=threads)
    specs_c = list(load_session(ProfileTarget(Path(candidate), rts[0], opts, {})).inputs)
    specs_b = list(load_session(ProfileTarget(Path(baseline), rts[1], opts, {})).inputs)
    if [(s.name, str(s.dtype)) for s in specs_c] != [(s.name, str(s.dtype)) for s in specs_b]:
        raise ConfigError(f"CANDIDATE {candidate} and --baseline {baseline} have different inputs "
                          f"({[s.name for s in specs_c]} vs {[s.name for s in specs_b]}); a regression gate "
                          "compares two versions of the same model", hint="pass two versions of one model")
    from edgekd.profile.local import resolved_feeds

    feed, _ = resolved_feeds(Path(candidate), specs_c, given)
    if "openvino" in rts:  # compiled at the shapes fed, as edgekd profile does (issue 21)
        opts = dataclasses.replace(opts, extra={"input_shapes": {k: list(v.shape) for k, v in feed.items()}})
    mcfg = MeasureConfig(warmup_s=warmup_s, sessions=cfg.sessions_max, iterations=iterations,
                         min_duration_s=min_duration_s)
    targets = [ProfileTarget(Path(candidate), rts[0], opts, feed, label="candidate"),
               ProfileTarget(Path(baseline), rts[1], opts, feed, label="baseline")]
    with InterleavedRun(targets, mcfg, interleave=True, progress=progress, fresh_sessions=True) as run:
        def measure(n_new: int) -> tuple[list[float], list[float]]:
            k = len(run.states[0].sessions)
            run.run_rounds(n_new)
            med = [[float(np.median(s)) for s in st.sessions[k:]] for st in run.states]
            return med[0], med[1]

        res = sequential_gate(measure, cfg)
        rep_c, rep_b = run.reports()
    checks = [validity_check(rep_c.data, model=model, device=device, role="candidate"),
              validity_check(rep_b.data, model=model, device=device, role="baseline")]
    chk = regression_check(res, model=model, device=device)
    if any(c.verdict == "INVALID" for c in checks):
        chk.message = f"not judged ({res.verdict} on untrusted data): " + res.reason
        chk.verdict = "INVALID"
    checks.append(chk)
    return checks, rep_c, rep_b


def _checked_runtime(path: Path, runtime: str | None) -> str:
    from edgekd.profile.local import check_artifact, infer_runtime

    rt = infer_runtime(path, runtime)
    check_artifact(path, rt)
    return rt


def load_verified(path: Path, flag: str) -> Any:
    """A stored profile report the gate may judge: loaded strictly (every figure a finite number >= 0 of
    the right type), its raw samples' SHA-256 checked, and every summary statistic recomputed from
    them (a stored summary that disagrees is INVALID, exit 4; the recomputed values replace it)."""
    from edgekd.gate.outputs import console_line
    from edgekd.profile.report import ProfileReport

    rep = ProfileReport.load(path)
    rep.verify_summary(where=console_line(f"{flag} {path}"))
    return rep


def _artifact_sha256(report: Any | None, artifact: Path | None) -> Any:
    if artifact is not None:
        from edgekd.fileio import sha256_file

        return sha256_file(artifact)
    return ((report.data if report is not None else {}).get("artifact") or {}).get("sha256")


def _profiled_file(report: Any | None) -> Path | None:
    """The file a report profiled, when it is still at ``artifact.path`` with the SHA-256 the report
    names: its size is then measured, not read from the report."""
    from edgekd.fileio import sha256_file

    art = (report.data.get("artifact") if report is not None else None) or {}
    path, sha = art.get("path"), art.get("sha256")
    try:
        if not isinstance(path, str) or not isinstance(sha, str) or not Path(path).is_file():
            return None
        return Path(path) if sha256_file(path) == sha else None
    except OSError:  # unreadable: fall back to the report's figure
        return None


def _check_bytes(entry: dict[str, Any], variant: str, artifact: Path | None) -> None:
    """A bound recipe report's ``bytes`` must be the size of the file with its SHA-256, when that file is
    here to measure."""
    b = entry.get("bytes")
    if artifact is None or b is None:
        return
    size = artifact.stat().st_size
    if isinstance(b, bool) or not isinstance(b, int) or b != size:
        raise GateInvalid(f"--recipe-report: INVALID report: variants.{variant}.bytes is {b!r} but the "
                          f"profiled file {artifact.name} has {size} bytes",
                          hint="pass the report.json written by `edgekd distill-and-export` for this artifact")


def _require_number(value: Any, field: str, *, needed: bool) -> None:
    """A figure of a bound recipe report that the budget reads must be a finite number: a corrupt
    report is INVALID (exit 4) and, not being a measurement problem, not accepted by --allow-invalid."""
    if not needed:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok:
        raise GateInvalid(f"--recipe-report: INVALID report: {field} is {value!r}, expected a finite number",
                          hint="pass the report.json written by `edgekd distill-and-export`")


def budget_checks(report: Any | None, device: str, recipe: str | None, *, pipeline_report: dict[str, Any] | None,
                  artifact: Path | None = None, model: str = "", notes: list[str] | None = None) -> list[Check]:
    """Absolute budgets of ``devices/<device>.yaml`` for ``recipe`` (from --recipe, else the pipeline
    report's ``recipe``). A pipeline report must be bound to the profiled artifact
    (:func:`edgekd.gate.binding.bind_recipe_report`); its variant's size in bytes is then the size
    judged, as the pipeline's own budget does."""
    import copy

    from edgekd.config.device import load_device
    from edgekd.gate.binding import bind_recipe_report
    from edgekd.gate.budget_checks import VARIANT_FOR_PRECISION, check_budgets

    dev = load_device(device)
    name = recipe or (pipeline_report or {}).get("recipe")
    if not name or not isinstance(name, str):
        raise ConfigError(f"--device {dev.name}: which recipe's budget? none given",
                          hint="pass --recipe NAME or --recipe-report report.json (its 'recipe' names it); "
                               f"budgets on this device: {', '.join(sorted(dev.budgets)) or 'none'}")
    if name not in dev.budgets:
        from edgekd.errors import UnknownNameError

        raise UnknownNameError(f"recipe budget on device {dev.name}", str(name), dev.budgets,
                               hint=f"add budgets.{name} to devices/{dev.name}.yaml")
    if report is not None and report.data.get("device_profile") not in (None, dev.name):
        raise EdgekdError(f"--device {dev.name}: the report was profiled for device "
                          f"{report.data['device_profile']!r}", hint="pass the matching --device")
    budget = dev.budgets[name]
    profile = copy.deepcopy(report.data) if report is not None else None
    if artifact is None and budget.artifact_mb is not None:
        artifact = _profiled_file(report)
    if pipeline_report is not None:
        entry = bind_recipe_report(pipeline_report, artifact_sha256=_artifact_sha256(report, artifact),
                                   recipe=recipe, variant=VARIANT_FOR_PRECISION[budget.precision])
        _require_number(entry.get("metric"), f"variants.{VARIANT_FOR_PRECISION[budget.precision]}.metric",
                        needed=budget.metric_min is not None or budget.metric_max is not None)
        _check_bytes(entry, VARIANT_FOR_PRECISION[budget.precision], artifact)
        if profile is not None and artifact is None and entry.get("bytes") is not None:
            # the size the pipeline judged (bytes / 1e6), of the very file the profile measured
            b = entry["bytes"]
            art = profile["artifact"] if isinstance(profile.get("artifact"), dict) else {}
            art["size_mb"] = b / 1e6 if isinstance(b, int) and not isinstance(b, bool) else b
            profile["artifact"] = art
    return check_budgets(budget, profile=profile, pipeline_report=pipeline_report, artifact=artifact,
                         model=model or str(name), device=dev.name, notes=notes)
