"""`edgekd gate`: fail a change that makes a model slower, bigger or hungrier than allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

REPORT_SUFFIX = ".json"


def register(app: typer.Typer) -> None:
    @app.command("gate")
    def gate(
        candidate: Annotated[Path, typer.Argument(help="candidate: a model file (.onnx, .xml) or a profile report "
                                                  "(.json)")],
        baseline: Annotated[Path | None, typer.Option("--baseline", "-b", help="baseline of the same kind (model "
                                                      "file: both re-measured interleaved; report: compared, "
                                                      "fingerprints must match)")] = None,
        device: Annotated[str | None, typer.Option("--device", "-d", help="device profile whose budgets apply")] = None,
        recipe: Annotated[str | None, typer.Option("--recipe", help="recipe whose budget applies [default: the "
                                                   "--recipe-report's]")] = None,
        recipe_report: Annotated[Path | None, typer.Option("--recipe-report", help="report.json of edgekd "
                                                           "distill-and-export (metric budgets)")] = None,
        junit: Annotated[Path | None, typer.Option("--junit", help="write JUnit XML here")] = None,
        summary: Annotated[Path | None, typer.Option("--summary", help="append the markdown table here (e.g. "
                                                     "$GITHUB_STEP_SUMMARY)")] = None,
        json_out: Annotated[Path | None, typer.Option("--json", help="write the verdict JSON here ('-': "
                                                      "standard output)")] = None,
        sessions_min: Annotated[int, typer.Option("--sessions-min", help="sessions per side at the first look")] = 6,
        sessions_max: Annotated[int, typer.Option("--sessions-max", help="cap on sessions per side")] = 12,
        sessions_step: Annotated[int, typer.Option("--sessions-step", help="sessions added per round")] = 2,
        iterations: Annotated[int, typer.Option("--iterations", help="iterations per session (model files)")] = 30,
        threads: Annotated[int | None, typer.Option("--threads", "-t", help="intra-op threads (model files)")] = None,
        inputs: Annotated[list[str] | None, typer.Option("--input", "-i", help="NAME=1x3x48x192 for dynamic "
                                                         "dims, NAME=16000 or NAME=1,2,3 for a value (model "
                                                         "files)")] = None,
        feeds: Annotated[list[str] | None, typer.Option("--feed", help="NAME=FILE.npy: that input's value "
                                                        "(model files)")] = None,
        threshold: Annotated[float, typer.Option("--threshold", help="slowdown that counts (0.03 = 3%)")] = 0.03,
        alpha: Annotated[float, typer.Option("--alpha", help="false-alarm rate, spent across looks")] = 0.01,
        drift: Annotated[float | None, typer.Option("--drift", help="two reports taken at different times: "
                                                    "bound on the between-run shift measured on this machine "
                                                    "(benchmarks/gate_aa_reports.py), added to each report's "
                                                    "own session spread (0.05 = 5%); without it 5% is assumed "
                                                    "and such a pair can PASS but not FAIL (INCONCLUSIVE)")] = None,
        allow_inconclusive: Annotated[bool, typer.Option("--allow-inconclusive", help="INCONCLUSIVE exits 0")] = False,
        allow_invalid: Annotated[bool, typer.Option("--allow-invalid", help="INVALID exits 0")] = False,
        update_baseline: Annotated[Path | None, typer.Option("--update-baseline", help="when the gate passes, "
                                                             "store the candidate's report here as the new "
                                                             "baseline (with provenance)")] = None,
        progress: Annotated[bool, typer.Option("--progress/--no-progress")] = False,
    ) -> None:
        """Absolute budgets (--device) and/or relative regression (--baseline).

        A profile report is judged on statistics recomputed from its raw samples; a report whose stored
        summary disagrees with them, or whose figures are negative, NaN/Inf or not numbers, is INVALID.
        A --recipe-report must name the profiled artifact's SHA-256 (same run, same recipe).
        --json - writes the verdict JSON to standard output (the table then goes to standard error).

        Exit codes: 0 PASS, 1 FAIL, 2 bad input or environment, 3 INCONCLUSIVE, 4 INVALID."""
        from edgekd.errors import EdgekdError
        from edgekd.gate.drift import DEFAULT_DRIFT_ALLOWANCE
        from edgekd.gate.regression import RegressionConfig

        if baseline is None and device is None:
            raise EdgekdError("nothing to check: pass --baseline (regression) and/or --device (budgets)",
                              hint="e.g. edgekd gate new.onnx --baseline old.onnx --device host-cpu")
        if device is None and (recipe_report is not None or recipe is not None):
            raise EdgekdError("--recipe and --recipe-report choose a device budget: they need --device",
                              hint="add --device NAME (see `edgekd devices`), or drop them")
        for flag, p in (("CANDIDATE", candidate), ("--baseline", baseline), ("--recipe-report", recipe_report)):
            if p is not None and not p.is_file():
                raise EdgekdError(f"{flag} {str(p)!r}: no such file", hint="check the path")
        cfg = RegressionConfig(alpha=alpha, threshold=threshold, sessions_min=sessions_min,
                               sessions_max=sessions_max, sessions_step=sessions_step,
                               drift_allowance=DEFAULT_DRIFT_ALLOWANCE if drift is None else drift, drift_calibrated=drift is not None)
        pipeline = _load_recipe_report(recipe_report) if recipe_report is not None else None
        model = candidate.stem.removesuffix(".profile")
        cand_is_report = candidate.suffix.lower() == REPORT_SUFFIX
        checks, cand_rep = _regression(candidate, baseline, cfg, cand_is_report, threads=threads,
                                       inputs=tuple(inputs or ()), feeds=tuple(feeds or ()),
                                       iterations=iterations, progress=progress,
                                       model=model, device=device or "")
        if cand_rep is None:
            from edgekd.profile.local import LocalProfileRequest, profile_file

            cand_rep = profile_file(LocalProfileRequest(artifact=candidate, device=device, threads=threads,
                                                        inputs=tuple(inputs or ()), feeds=tuple(feeds or ()),
                                                        sessions=sessions_max,
                                                        iterations=iterations), progress=progress)
        notes: list[str] = []
        if device is not None:
            from edgekd.gate.judge import budget_checks

            checks += budget_checks(cand_rep, device, recipe, pipeline_report=pipeline,
                                    artifact=None if cand_is_report else candidate, model=model, notes=notes)
        _finish(checks, notes, cand_rep, candidate, cand_is_report, allow_inconclusive=allow_inconclusive,
                allow_invalid=allow_invalid, junit=junit, summary=summary, json_out=json_out,
                update_baseline=update_baseline)


def _load_recipe_report(path: Path) -> dict[str, Any]:
    import json

    from edgekd.errors import EdgekdError

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgekdError(f"--recipe-report {str(path)!r}: not a JSON file ({exc})",
                          hint="pass the report.json of edgekd distill-and-export") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("variants"), dict):
        raise EdgekdError(f"--recipe-report {str(path)!r}: no 'variants' object: not a pipeline report",
                          hint="pass the report.json of edgekd distill-and-export")
    return doc


def _regression(candidate: Path, baseline: Path | None, cfg: Any, cand_is_report: bool, *, threads: int | None,
                inputs: tuple[str, ...], feeds: tuple[str, ...], iterations: int, progress: bool, model: str,
                device: str) -> tuple[list[Any], Any]:
    """Regression checks (when --baseline) and the candidate's report: loaded and verified when it is a
    report, measured when it is a model file compared with a baseline, else None (profiled later)."""
    from edgekd.errors import EdgekdError
    from edgekd.gate.judge import compare_reports, load_verified, remeasure

    if baseline is None:
        return [], load_verified(candidate, "CANDIDATE") if cand_is_report else None
    if cand_is_report != (baseline.suffix.lower() == REPORT_SUFFIX):
        raise EdgekdError(f"CANDIDATE {candidate.name!r} and --baseline {baseline.name!r} are of different "
                          "kinds (one profile report, one model file)",
                          hint="pass two model files (re-measured interleaved, recommended) or two "
                               "profile reports")
    if cand_is_report:
        cand_rep, base_rep = load_verified(candidate, "CANDIDATE"), load_verified(baseline, "--baseline")
        return compare_reports(cand_rep, base_rep, cfg, model=model, device=device), cand_rep
    from edgekd.cli._common import install_run_loader

    install_run_loader(candidate, baseline)
    checks, cand_rep, _ = remeasure(candidate, baseline, cfg, threads=threads, inputs=inputs, feeds=feeds,
                                    iterations=iterations, progress=progress, model=model, device=device)
    return checks, cand_rep


def _finish(checks: list[Any], notes: list[str], cand_rep: Any, candidate: Path, cand_is_report: bool, *,
            allow_inconclusive: bool, allow_invalid: bool, junit: Path | None, summary: Path | None,
            json_out: Path | None, update_baseline: Path | None) -> None:
    """Combine, write the outputs, print the table (to stderr when --json - holds stdout), and exit with
    the verdict's code. Every printed string passes :func:`console_line`: report strings are data."""
    import sys

    from edgekd.gate.outputs import (
        console_line,
        github_annotations,
        in_github_actions,
        store_baseline,
        write_outputs,
    )
    from edgekd.gate.verdict import outcome

    out = outcome(checks, allow_inconclusive=allow_inconclusive, allow_invalid=allow_invalid, not_judged=notes)
    layers = cand_rep.data.get("layers") if cand_rep is not None else None
    stream = sys.stderr if json_out is not None and str(json_out) == "-" else sys.stdout
    write_outputs(out, junit=junit, summary=summary, json_path=json_out, layers=layers)

    def say(line: str) -> None:
        print(console_line(line), file=stream)

    if in_github_actions():
        for line in github_annotations(out):
            print(line, file=stream)
    for c in checks:
        say(f"{c.verdict:12} {c.name:20} {c.message}")
    for note in notes:
        say(f"{'NOT JUDGED':12} {note}")
    say(f"gate: {out.verdict} (exit {out.exit_code})")
    if update_baseline is not None:
        if out.passed and cand_rep is not None:
            dest = store_baseline(cand_rep, update_baseline, artifact=None if cand_is_report else candidate)
            say(f"baseline stored: {dest}")
        else:
            say(f"--update-baseline {update_baseline}: not stored, the gate did not pass")
    if out.exit_code:
        # an EdgekdError subclass carries the exit code through edgekd.cli.main (typer.Exit's code is
        # lost with standalone_mode=False)
        from edgekd.errors import GateFailed, GateInconclusive, GateInvalid

        cls = {1: GateFailed, 3: GateInconclusive, 4: GateInvalid}[out.exit_code]
        bad = [c for c in checks if c.verdict == out.verdict or (out.verdict == "PASS" and c.verdict != "PASS")]
        raise cls(console_line(f"gate {out.verdict}: " + "; ".join(f"{c.name}: {c.message}" for c in bad[:5])),
                  hint={1: "the candidate is slower/bigger than allowed: see the table above",
                        3: "add sessions (--sessions-max) or quiet the machine; --allow-inconclusive to accept",
                        4: "fix the measurement (cooling, clocks, same machine for the baseline); "
                           "--allow-invalid to accept"}[out.exit_code])
