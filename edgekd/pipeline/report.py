"""The pipeline report: ``report.json`` (a contract other tools read; its model is
:class:`edgekd.pipeline.models.RunReport`) and ``report.md``, written to be read on its own: every
figure has its unit and its direction, models are named by role, parity is a sentence.

Contract (stable keys; later versions only add):
``recipe``, ``metric: {name, lower_is_better}``, ``variants`` with ``teacher``, ``student_alone``,
``student_kd``, ``onnx_fp32``, ``onnx_int8`` (``openvino_int8`` when ``quantize.runtime: openvino``),
each holding ``metric`` and, for models, ``params``; exported artifacts also hold ``path``,
``sha256`` and ``latency_ms: {p50, p90, p99}``.
"""

from __future__ import annotations

from typing import Any

REPORT_SCHEMA = "edgekd.report/1"
VARIANTS = ("teacher", "student_alone", "student_kd", "onnx_fp32", "onnx_int8")

#: report names -> what a reader calls them
ROLES = {"teacher": "teacher (torch)", "student_alone": "student alone, no teacher (torch)",
         "student_kd": "student distilled (torch)", "student_qat": "student QAT fine-tuned (torch, fake-quant)",
         "onnx_fp32": "student.onnx (ONNX Runtime, FP32)", "onnx_int8": "student.int8.onnx (ONNX Runtime, INT8)",
         "openvino_int8": "student.int8.xml (OpenVINO, INT8)",
         "torch_fp32": "student distilled (torch eager, FP32)", "teacher_torch_fp32": "teacher (torch eager, FP32)"}


def _num(x: Any, nd: int = 3) -> str:
    """A figure with thousands separators; '-' when absent."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return str(x)


def _role(name: str) -> str:
    return ROLES.get(name, name)


def render_markdown(report: dict[str, Any], *, plot: str | None = None) -> str:
    m = report["metric"]
    unit = m.get("unit") or ""
    arrow = "lower is better" if m["lower_is_better"] else "higher is better"
    lines = [
        f"# edgekd report: {report['recipe']} on {report['device']}",
        "",
        f"Preset `{report.get('preset')}`, seed {report.get('seed')}, recipe hash `{report.get('recipe_hash', '')[:12]}`.",
        f"Metric: **{m['name']}** ({unit or 'unitless'}, {arrow}) on the test split.",
        *_contention(report),
        *_variants(report, unit, arrow),
        *_summary(report, m, unit),
        *_latency(report),
        *_parity(report),
        *_exports(report),
        *_budget(report),
        *_optimize(report),
    ]
    if plot:
        lines += ["", "## Accuracy vs latency", "", f"![{m['name']} against p50 latency for every variant]({plot})"]
    warns = report.get("warnings", [])
    if warns:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warns]
    t = report.get("timings_s", {})
    if t:
        lines += ["", "## Time per stage (seconds)", "", " | ".join(f"{k}: {v:,.1f}" for k, v in t.items())]
    return "\n".join(lines) + "\n"


def _contention(report: dict[str, Any]) -> list[str]:
    hit = {n: p for n, p in (report.get("profiles") or {}).items() if p.get("contended")}
    if not hit:
        return []
    c = next((p.get("cpu_contention") for p in hit.values() if p.get("cpu_contention")), None) or {}
    load = (f" ({c['runnable_threads_mean']:.1f} runnable threads on average on {c['cpus']} CPUs)"
            if "runnable_threads_mean" in c else "")
    return ["", f"> **Contended CPU**: other processes competed for the CPUs while {len(hit)} of the profiled "
            f"models were measured{load}. Their latencies are pessimistic; a latency budget they fail is "
            "INCONCLUSIVE, not FAIL. Re-run on a quiet machine to judge latency."]


def _variants(report: dict[str, Any], unit: str, arrow: str) -> list[str]:
    u = f" ({unit})" if unit else ""
    beside = list(report["metric"].get("beside") or [])
    extra_head = "".join(f" {b} |" for b in beside)
    lines = ["", f"| model | {report['metric']['name']}{u}, {arrow} |{extra_head} parameters | latency p50 / p90 / "
             "p99 (ms, lower is better) | size (MB) | artifact |", "|---|---|" + "---|" * len(beside) + "---|---|---|---|"]
    for name, v in report["variants"].items():
        lat = v.get("latency_ms")
        lat_s = " / ".join(_num(lat.get(k)) for k in ("p50", "p90", "p99")) if lat else "-"
        size = _num(v["bytes"] / 1e6) if v.get("bytes") is not None else "-"
        art = f"`{v['path']}`" if v.get("path") else "-"
        extra = "".join(f" {_num((v.get('extras') or {}).get(b))} |" for b in beside)
        lines.append(f"| {_role(name)} | {_num(v.get('metric'))} |{extra} {_num(v.get('params'))} | {lat_s} | {size} | "
                     f"{art} |")
    splits = {n: v.get("splits") for n, v in report["variants"].items() if v.get("splits")}
    if splits:
        names = sorted({s for d in splits.values() for s in d})
        lines += ["", f"{report['metric']['name']}{u} on the other splits ({arrow}):", "",
                  "| model | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for n, d in splits.items():
            lines.append(f"| {_role(n)} | " + " | ".join(_num(d.get(s)) for s in names) + " |")
    return lines


def _summary(report: dict[str, Any], m: dict[str, Any], unit: str) -> list[str]:
    s = report.get("summary", {})
    if not s:
        return []
    u = f" {unit}" if unit else ""
    lines = ["", "## Summary", ""]
    if "distillation_gain" in s:
        g = s["distillation_gain"]
        lines.append(f"- distillation gain: {g:+,.3f}{u} of {m['name']} vs the student alone "
                     f"({'KD helped' if g > 0 else 'KD did not help' if g < 0 else 'no change'}; positive is better)")
    if "int8_relative_change" in s:
        ok = s.get("int8_within_tolerance")
        lines.append(f"- INT8 vs FP32 ONNX: {m['name']} changed by {s['int8_relative_change']:+.2%} "
                     f"({'lower' if m['lower_is_better'] else 'higher'} is better)"
                     + ("" if ok is None else f"; {'within' if ok else 'BEYOND'} quantize.relative_tolerance"))
    for k, v in s.items():
        if k.startswith("speedup_"):
            name = k.removeprefix("speedup_").removesuffix("_vs_torch_fp32")
            lines.append(f"- speed-up of {_role(name)} over the torch student: {v:,.2f}x at p50 (higher is faster)")
    if "latency_ratio_student_vs_teacher_torch" in s:
        lines.append(f"- student / teacher latency in torch: {s['latency_ratio_student_vs_teacher_torch']:,.2f} "
                     "of the teacher's p50 (lower is faster)")
    return lines


def _threads(p: dict[str, Any]) -> str:
    used, asked = p.get("threads_used"), p.get("threads")
    if used is not None:
        return f"{used:,}" + ("" if asked is not None else " (runtime default)")
    return f"{asked:,}" if asked is not None else "runtime default"


def _latency(report: dict[str, Any]) -> list[str]:
    prof = report.get("profiles", {})
    if not prof:
        return []
    lines = ["", "## Latency on this machine (ms, lower is better)", "",
             "| model | runtime | threads | p50 | p90 | p99 | p90 99% upper bound | valid | CPU contended |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, p in prof.items():
        lat = p.get("latency_ms", {})
        valid = "yes" if p.get("valid") else "no: " + "; ".join(p.get("invalid_reasons") or [])
        lines.append(f"| {_role(name)} | {p.get('runtime')} | {_threads(p)} | {_num(lat.get('p50'))} | "
                     f"{_num(lat.get('p90'))} | {_num(lat.get('p99'))} | {_num(lat.get('p90_ucb99'))} | {valid} | "
                     f"{'yes' if p.get('contended') else 'no'} |")
    return lines


def parity_sentence(name: str, p: dict[str, Any]) -> str:
    """One parity result as a sentence a reader can check."""
    what = _role(name)
    if "checked" in p:  # INT8 outside the torch tolerance: informative only
        diffs = ", ".join(f"`{o}` {d:.3g}" for o, d in (p.get("max_abs_diff") or {}).items())
        return (f"{what} differs from the torch student beyond the FP32 tolerance (largest absolute "
                f"difference: {diffs}); expected for INT8, which is judged by its metric instead.")
    outs = p.get("outputs") or []
    b = p.get("batches", "?")
    n = f"{p.get('samples', '?')} test inputs in {b} batch{'' if b == 1 else 'es'}"
    verdict = "matches" if p.get("passed") else "DOES NOT match"
    if p.get("compare") == "argmax":
        agree = ", ".join(f"`{o['name']}` {o.get('agreement', 0):.2%}" for o in outs)
        return (f"{what} {verdict} the torch student on the argmax map: agreement {agree} on {n} "
                f"(at least {p.get('min_agreement', 0):.0%} required).")
    worst = ", ".join(f"`{o['name']}` abs {o.get('max_abs_diff', 0):.2g} / rel {o.get('max_rel_diff', 0):.2g}"
                      for o in outs)
    return (f"{what} {verdict} the torch student within atol {p.get('atol', 0):g} and rtol {p.get('rtol', 0):g} "
            f"on {n}; largest difference {worst}.")


def _parity(report: dict[str, Any]) -> list[str]:
    parity = report.get("parity", {})
    if not parity:
        return []
    return ["", "## Parity with PyTorch", ""] + [f"- {parity_sentence(n, p)}" for n, p in parity.items()]


def _exports(report: dict[str, Any]) -> list[str]:
    exports = report.get("exports") or {}
    if not exports:
        return []
    lines = ["", "## Other formats (`export.formats`)", ""]
    for fmt, info in exports.items():
        extra = "; ".join(f"{k.replace('_', ' ')}: {_num(v)}" for k, v in info.items() if k != "files")
        lines.append(f"- {fmt}: {', '.join(f'`{f}`' for f in info.get('files', [])) or '-'}"
                     + (f" ({extra})" if extra else ""))
    return lines


def _budget(report: dict[str, Any]) -> list[str]:
    budget = report.get("budget")
    if not budget:
        return []
    lines = ["", f"## Budget for `{report['device']}`: {budget.get('verdict') or 'not judged'}", ""]
    for c in budget.get("checks", []):
        lines.append(f"- {c['name']}: **{c['verdict']}** ({c.get('message', '')})")
    lines += [f"- note: {n}" for n in budget.get("notes", [])]
    if budget.get("note"):
        lines.append(f"- note: {budget['note']}")
    return lines


def _optimize(report: dict[str, Any]) -> list[str]:
    """The optimize search (recipe ``optimize.enabled``): the pick, and why every other candidate lost."""
    opt = report.get("optimize")
    if not opt:
        return []
    lines = ["", "## Optimize (`optimize.enabled`)", ""]
    if opt.get("skipped"):
        return [*lines, f"Not run: {opt['skipped']}."]
    pick = opt.get("picked")
    lines += [f"**Picked: {pick}** (`{opt.get('picked_artifact')}`, {opt.get('picked_runtime')})" if pick else
              "**Picked: nothing** (no candidate met the accuracy budget)", "",
              f"- data: {opt.get('data')}", f"- metric: {opt.get('metric_source')}; per output: "
              + ", ".join(f"{k}: {v}" for k, v in (opt.get("metric") or {}).items()),
              "- budget: " + ", ".join(f"{k} {v:g}" for k, v in (opt.get("budget") or {}).items()),
              f"- timed on {opt.get('timed_on')}, {opt.get('threads') or 'the runtime default'} thread(s); full table `{opt.get('table')}`, "
              f"plot `{opt.get('plot')}`", "",
              "| candidate | runtime | precision | held-out score (primary output) | p50 ms | x ORT FP32 | status | why |",
              "|---|---|---|---|---|---|---|---|"]
    for c in sorted(opt.get("candidates", []), key=lambda c: (c.get("latency_p50_ms") is None,
                                                                c.get("latency_p50_ms") or 0.0)):
        why = str(c.get("why", "")).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {c['name']} | {c['runtime']} | {c['precision']} | {_num(c.get('accuracy'), 4)} | "
                     f"{_num(c.get('latency_p50_ms'))} | {_num(c.get('ratio_to_ort_fp32'), 2)} | {c['status']} | "
                     f"{why} |")
    return lines
