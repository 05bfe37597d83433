"""What CI systems read from a gate: JUnit XML, a markdown table for ``$GITHUB_STEP_SUMMARY``,
GitHub ``::error`` annotations, the verdict JSON, and a stored baseline with provenance."""

from __future__ import annotations

import datetime as _dt
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from edgekd.fileio import sha256_file, write_json, write_text
from edgekd.gate.verdict import Check, GateOutcome


def _case_name(c: Check) -> str:
    return " / ".join(x for x in (c.model, c.device, c.name) if x)


def junit_xml(out: GateOutcome, suite: str = "edgekd.gate") -> str:
    """One testcase per model x device x check. FAIL -> <failure>; INVALID -> <error> (the measurement
    broke, not the model); INCONCLUSIVE -> <failure type="inconclusive">, or <skipped> when allowed."""
    failures = errors = skipped = 0
    cases = []
    for c in out.checks:
        tc = ET.Element("testcase", {"classname": f"{suite}.{c.model or 'model'}.{c.device or 'device'}",
                                     "name": c.name, "time": "0"})
        if c.verdict == "FAIL":
            failures += 1
            ET.SubElement(tc, "failure", {"type": "FAIL", "message": c.message}).text = _case_name(c)
        elif c.verdict == "INVALID":
            if out.allow_invalid:
                skipped += 1
                ET.SubElement(tc, "skipped", {"message": "INVALID (allowed): " + c.message})
            else:
                errors += 1
                ET.SubElement(tc, "error", {"type": "INVALID", "message": c.message})
        elif c.verdict == "INCONCLUSIVE":
            if out.allow_inconclusive:
                skipped += 1
                ET.SubElement(tc, "skipped", {"message": "INCONCLUSIVE (allowed): " + c.message})
            else:
                failures += 1
                ET.SubElement(tc, "failure", {"type": "INCONCLUSIVE", "message": c.message})
        ET.SubElement(tc, "system-out").text = c.message
        cases.append(tc)
    ts = ET.Element("testsuite", {"name": suite, "tests": str(len(cases)), "failures": str(failures),
                                  "errors": str(errors), "skipped": str(skipped)})
    ts.extend(cases)
    root = ET.Element("testsuites", {"name": suite, "tests": str(len(cases)), "failures": str(failures),
                                     "errors": str(errors), "skipped": str(skipped)})
    root.append(ts)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


_ICON = {"PASS": "✅ PASS", "FAIL": "❌ FAIL", "INCONCLUSIVE": "⚠️ INCONCLUSIVE", "INVALID": "🚫 INVALID"}


def _md(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def markdown_summary(out: GateOutcome, layers: dict[str, Any] | None = None, top: int = 5) -> str:
    """The table for ``$GITHUB_STEP_SUMMARY``: verdict, value/limit or ratio with its CI and MDE;
    then the top layers by time when a report carries a per-layer breakdown."""
    lines = [f"## edgekd gate: {_ICON[out.verdict]} (exit {out.exit_code})", "",
             "| model | device | check | verdict | value | limit / ratio CI | MDE | detail |",
             "|---|---|---|---|---|---|---|---|"]
    for c in out.checks:
        d = c.details
        if "ratio" in d:
            value = f"ratio {d['ratio']:.3f} ({100 * (d['ratio'] - 1):+.1f}%)"
            lim = f"[{d['ci_low']:.3f}, {d['ci_high']:.3f}], threshold {1 + d['threshold']:.3f}"
            mde = f"{100 * d['mde']:.1f}%"
        else:
            value = "" if c.value is None else f"{c.value:.4g} {c.unit}".strip()
            lim = "" if c.limit is None else f"{c.limit:.4g} {c.unit}".strip()
            mde = ""
        lines.append(f"| {_md(c.model)} | {_md(c.device)} | {_md(c.name)} | {_ICON[c.verdict]} | {value} | "
                     f"{lim} | {mde} | {_md(c.message)} |")
    nodes = (layers or {}).get("nodes") or []
    if nodes:
        lines += ["", f"### Top {min(top, len(nodes))} layers by time (candidate)", "",
                  "| layer | op | ms | % |", "|---|---|---|---|"]
        for n in nodes[:top]:
            lines.append(f"| {_md(str(n.get('node')))} | {_md(str(n.get('op', '')))} | {float(n.get('ms', 0)):.4f} "
                         f"| {float(n.get('pct', 0)):.1f} |")
    return "\n".join(lines) + "\n"


def _esc(s: str) -> str:
    # GitHub workflow-command escaping of the message part
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_annotations(out: GateOutcome) -> list[str]:
    """``::error`` for FAIL and non-allowed INVALID/INCONCLUSIVE, ``::warning`` for allowed ones."""
    lines = []
    for c in out.checks:
        if c.verdict == "PASS":
            continue
        allowed = (c.verdict == "INVALID" and out.allow_invalid) or (
            c.verdict == "INCONCLUSIVE" and out.allow_inconclusive)
        level = "warning" if allowed else "error"
        title = _esc(f"edgekd gate {c.verdict}: {_case_name(c)}").replace(",", "%2C").replace("::", "%3A%3A")
        lines.append(f"::{level} title={title}::{_esc(c.message)}")
    return lines


def write_outputs(out: GateOutcome, *, junit: Path | None = None, summary: Path | None = None,
                  json_path: Path | None = None, layers: dict[str, Any] | None = None) -> None:
    """Write the requested files atomically. The summary is appended when the file exists (GitHub's
    step summary is shared by the steps of a job)."""
    if junit is not None:
        write_text(junit, junit_xml(out))
    if json_path is not None:
        write_json(json_path, out.to_json())
    if summary is not None:
        text = markdown_summary(out, layers)
        old = summary.read_text(encoding="utf-8") if summary.is_file() else ""
        write_text(summary, old + ("\n" if old and not old.endswith("\n") else "") + text)


def _git_commit(cwd: Path) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        r = subprocess.run([git, "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10,
                           check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


def store_baseline(report: Any, folder: Path, *, name: str = "baseline", artifact: Path | None = None) -> Path:
    """Store ``report`` (a :class:`edgekd.profile.report.ProfileReport`) as ``folder/<name>.profile.json``
    (and its raw samples beside it) with a ``baseline_provenance`` block: UTC time, git commit (when in a
    git checkout), device fingerprint, SHA-256 of the artifact."""
    folder.mkdir(parents=True, exist_ok=True)
    data = report.data
    art_info = data.get("artifact") or {}
    art = artifact or (Path(art_info["path"]) if art_info.get("path") else None)
    sha = sha256_file(art) if art is not None and Path(art).is_file() else art_info.get("sha256")
    data["baseline_provenance"] = {
        "stored_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": _git_commit(Path.cwd()),
        "fingerprint": data.get("device"),
        "artifact_sha256": sha,
        "artifact_path": str(art) if art else None,
    }
    return Path(report.save(folder / f"{name}.profile.json"))


__all__: Sequence[str] = ("junit_xml", "markdown_summary", "github_annotations", "write_outputs", "store_baseline")
