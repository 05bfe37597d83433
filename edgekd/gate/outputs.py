"""What CI systems read from a gate: JUnit XML, a markdown table for ``$GITHUB_STEP_SUMMARY``,
GitHub ``::error`` annotations, the verdict JSON, and a stored baseline with provenance.

Strings in a gate's checks come from the reports it read (``invalid_reasons``, labels, metric names),
which anyone can write. They never reach a log raw: a console line escapes control characters (so a
``\n`` in a report cannot start a line of its own) and a line that would read as a GitHub workflow
command (``::add-mask::...``, ``##[...]``) is prefixed; annotations follow GitHub's escaping of data
and properties; XML and markdown get their own escaping. Annotations are printed only inside GitHub
Actions (``GITHUB_ACTIONS=true``): elsewhere they are noise.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from edgekd.fileio import sha256_file, write_json, write_text
from edgekd.gate.verdict import Check, GateOutcome


def _case_name(c: Check) -> str:
    return " / ".join(x for x in (c.model, c.device, c.name) if x)


def _xml(s: str) -> str:
    # XML 1.0 cannot carry most control characters at all: escape them, keep tabs and line breaks
    return _escape_controls(str(s), keep="\t\n")


def junit_xml(out: GateOutcome, suite: str = "edgekd.gate") -> str:
    """One testcase per model x device x check. FAIL -> <failure>; INVALID -> <error> (the measurement
    broke, not the model); INCONCLUSIVE -> <failure type="inconclusive">, or <skipped> when allowed."""
    failures = errors = skipped = 0
    cases = []
    for c in out.checks:
        msg = _xml(c.message)
        tc = ET.Element("testcase", {"classname": _xml(f"{suite}.{c.model or 'model'}.{c.device or 'device'}"),
                                     "name": _xml(c.name), "time": "0"})
        if c.verdict == "FAIL":
            failures += 1
            ET.SubElement(tc, "failure", {"type": "FAIL", "message": msg}).text = _xml(_case_name(c))
        elif c.verdict == "INVALID":
            if out.allow_invalid:
                skipped += 1
                ET.SubElement(tc, "skipped", {"message": "INVALID (allowed): " + msg})
            else:
                errors += 1
                ET.SubElement(tc, "error", {"type": "INVALID", "message": msg})
        elif c.verdict == "INCONCLUSIVE":
            if out.allow_inconclusive:
                skipped += 1
                ET.SubElement(tc, "skipped", {"message": "INCONCLUSIVE (allowed): " + msg})
            else:
                failures += 1
                ET.SubElement(tc, "failure", {"type": "INCONCLUSIVE", "message": msg})
        ET.SubElement(tc, "system-out").text = msg
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
    # one table cell: no row break, no column break, no raw HTML
    text = str(s).replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return _escape_controls(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _num(v: object, nd: int) -> str:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return f"{v:.{nd}f}" if ok else "n/a"


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
    if out.not_judged:
        lines += ["", "Not judged:", ""] + [f"- {_md(n)}" for n in out.not_judged]
    nodes = layers.get("nodes") if isinstance(layers, dict) else None
    nodes = nodes if isinstance(nodes, list) else []
    if nodes:
        lines += ["", f"### Top {min(top, len(nodes))} layers by time (candidate)", "",
                  "| layer | op | ms | % |", "|---|---|---|---|"]
        for n in nodes[:top]:
            if isinstance(n, dict):
                lines.append(f"| {_md(str(n.get('node')))} | {_md(str(n.get('op', '')))} | {_num(n.get('ms'), 4)} "
                             f"| {_num(n.get('pct'), 1)} |")
    return "\n".join(lines) + "\n"


#: prefixes GitHub's runner reads as a workflow command at the start of a line (after blanks)
_COMMAND_PREFIXES = ("::", "##[")


def _escape_controls(s: str, keep: str = "") -> str:
    """Non-printable characters (C0/C1 controls, ESC, line and paragraph separators) as ``\\xNN``
    escapes, except those in ``keep``."""
    return "".join(ch if ch.isprintable() or ch in keep else ch.encode("unicode_escape").decode("ascii")
                   for ch in s)


def console_line(s: str) -> str:
    """``s`` as exactly one log line that no CI system reads as a command."""
    line = _escape_controls(str(s))
    return "> " + line if line.lstrip().startswith(_COMMAND_PREFIXES) else line


def _esc_data(s: str) -> str:
    # GitHub's escaping of a workflow command's data (after '::'): '%' first, then CR and LF
    return _escape_controls(str(s).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _esc_property(s: str) -> str:
    # a property value (title=...) also escapes ':' and ',' which delimit properties and the data
    return _esc_data(s).replace(":", "%3A").replace(",", "%2C")


def in_github_actions(environ: dict[str, str] | None = None) -> bool:
    """True inside a GitHub Actions job (the runner sets ``GITHUB_ACTIONS=true``)."""
    return (os.environ if environ is None else environ).get("GITHUB_ACTIONS") == "true"


def github_annotations(out: GateOutcome) -> list[str]:
    """``::error`` for FAIL and non-allowed INVALID/INCONCLUSIVE, ``::warning`` for allowed ones."""
    lines = []
    for c in out.checks:
        if c.verdict == "PASS":
            continue
        allowed = (c.verdict == "INVALID" and out.allow_invalid) or (
            c.verdict == "INCONCLUSIVE" and out.allow_inconclusive)
        level = "warning" if allowed else "error"
        title = _esc_property(f"edgekd gate {c.verdict}: {_case_name(c)}")
        lines.append(f"::{level} title={title}::{_esc_data(c.message)}")
    return lines


def write_outputs(out: GateOutcome, *, junit: Path | None = None, summary: Path | None = None,
                  json_path: Path | None = None, layers: dict[str, Any] | None = None) -> None:
    """Write the requested files atomically; ``json_path`` ``-`` is standard output. The summary is
    appended when the file exists (GitHub's step summary is shared by the steps of a job)."""
    if junit is not None:
        write_text(junit, junit_xml(out))
    if json_path is not None and str(json_path) == "-":
        sys.stdout.write(json.dumps(out.to_json(), indent=2) + "\n")
    elif json_path is not None:
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


__all__: Sequence[str] = ("junit_xml", "markdown_summary", "github_annotations", "console_line", "in_github_actions",
                          "write_outputs", "store_baseline")
