"""The pipeline report: ``report.json`` (a contract other tools read) and ``report.md``.

Contract (stable keys; later versions only add):
``recipe``, ``metric: {name, lower_is_better}``, ``variants`` with ``teacher``, ``student_alone``,
``student_kd``, ``onnx_fp32``, ``onnx_int8``, each holding ``metric`` and, for models, ``params``;
exported artifacts also hold ``path``, ``sha256`` and ``latency_ms: {p50, p90, p99}``.
"""

from __future__ import annotations

from typing import Any

REPORT_SCHEMA = "edgekd.report/1"
VARIANTS = ("teacher", "student_alone", "student_kd", "onnx_fp32", "onnx_int8")


def _fmt(x: Any, nd: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def render_markdown(report: dict[str, Any]) -> str:
    m = report["metric"]
    arrow = "lower is better" if m["lower_is_better"] else "higher is better"
    lines = [
        f"# edgekd report: {report['recipe']} on {report['device']}",
        "",
        f"Preset `{report.get('preset')}`, seed {report.get('seed')}, recipe hash `{report.get('recipe_hash', '')[:12]}`.",
        f"Metric: **{m['name']}** ({m.get('unit') or 'unitless'}, {arrow}) on the test split.",
        "",
        "| variant | metric | params | latency p50 / p90 / p99 (ms) | artifact |",
        "|---|---|---|---|---|",
    ]
    for name, v in report["variants"].items():
        lat = v.get("latency_ms")
        lat_s = " / ".join(_fmt(lat.get(k), 3) for k in ("p50", "p90", "p99")) if lat else "-"
        art = f"`{v['path']}`" if v.get("path") else "-"
        lines.append(f"| {name} | {_fmt(v.get('metric'))} | {_fmt(v.get('params'))} | {lat_s} | {art} |")
    splits = {n: v.get("splits") for n, v in report["variants"].items() if v.get("splits")}
    if splits:
        names = sorted({s for d in splits.values() for s in d})
        lines += ["", "Other splits:", "", "| variant | " + " | ".join(names) + " |",
                  "|---|" + "---|" * len(names)]
        for n, d in splits.items():
            lines.append(f"| {n} | " + " | ".join(_fmt(d.get(s)) for s in names) + " |")
    s = report.get("summary", {})
    if s:
        lines += ["", "## Summary", ""]
        for k, v in s.items():
            lines.append(f"- {k.replace('_', ' ')}: {_fmt(v)}")
    prof = report.get("profiles", {})
    if prof:
        lines += ["", "## Latency on this machine", "",
                  "| artifact | runtime | threads | p50 | p90 | p99 | p90 99% UCB | valid |", "|---|---|---|---|---|---|---|---|"]
        for name, p in prof.items():
            lat = p.get("latency_ms", {})
            lines.append(f"| {name} | {p.get('runtime')} | {p.get('threads')} | {_fmt(lat.get('p50'))} | "
                         f"{_fmt(lat.get('p90'))} | {_fmt(lat.get('p99'))} | {_fmt(lat.get('p90_ucb99'))} | "
                         f"{p.get('valid')} |")
    parity = report.get("parity", {})
    if parity:
        lines += ["", "## Parity with PyTorch", ""]
        for name, p in parity.items():
            lines.append(f"- {name}: " + ", ".join(f"{k}={_fmt(v, 6) if isinstance(v, float) else v}"
                                                    for k, v in p.items()))
    exports = report.get("exports") or {}
    if exports:
        lines += ["", "## Other formats (`export.formats`)", ""]
        for fmt, info in exports.items():
            extra = "; ".join(f"{k}: {v}" for k, v in info.items() if k != "files")
            lines.append(f"- {fmt}: {', '.join(f'`{f}`' for f in info.get('files', [])) or '-'}"
                         + (f" ({extra})" if extra else ""))
    budget = report.get("budget")
    if budget:
        lines += ["", f"## Budget for `{report['device']}`: {budget.get('verdict')}", ""]
        for c in budget.get("checks", []):
            lines.append(f"- {c['name']}: **{c['verdict']}** ({c.get('message', '')})")
        lines += [f"- note: {n}" for n in budget.get("notes", [])]
        if budget.get("note"):
            lines.append(f"- note: {budget['note']}")
    warns = report.get("warnings", [])
    if warns:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warns]
    t = report.get("timings_s", {})
    if t:
        lines += ["", "## Time per stage (s)", "", " | ".join(f"{k}: {v:.1f}" for k, v in t.items())]
    return "\n".join(lines) + "\n"
