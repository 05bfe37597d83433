"""report.md reads on its own: units and direction, roles not class names, parity as sentences,
thousands separators, a threads column without None, the contention warning and the plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgekd.pipeline.plot import plot_tradeoff, tradeoff_points
from edgekd.pipeline.report import render_markdown


def _report(contended: bool = False) -> dict[str, Any]:
    prof = {"latency_ms": {"p50": 1.5, "p90": 2.0, "p99": 3.0, "p90_ucb99": 3.0}, "session_medians_ms": [1.5],
            "valid": True, "invalid_reasons": [], "runtime": "onnxruntime", "threads": None, "threads_used": 2,
            "contended": contended, "report": "profile/onnx_int8.json",
            **({"cpu_contention": {"runnable_threads_mean": 3.8, "cpus": 2}} if contended else {})}
    torch_prof = {**prof, "runtime": "torch", "threads": None, "threads_used": 1,
                  "latency_ms": {"p50": 6.0, "p90": 7.0, "p99": 8.0, "p90_ucb99": 8.0}}
    return {"recipe": "gaze", "device": "host-cpu", "preset": "smoke", "seed": 0, "recipe_hash": "abc",
            "metric": {"name": "angular_error", "lower_is_better": True, "unit": "deg"},
            "variants": {"teacher": {"metric": 4.0, "params": 3577182},
                         "student_alone": {"metric": 6.7, "params": 279732},
                         "student_kd": {"metric": 5.37, "params": 279732},
                         "onnx_int8": {"metric": 5.4, "params": 279732, "path": "student.int8.onnx", "bytes": 614000}},
            "summary": {"distillation_gain": 1.327, "int8_relative_change": 0.005, "int8_within_tolerance": True},
            "parity": {"onnx_fp32": {"artifact": "student.onnx", "compare": "allclose", "atol": 1e-4, "rtol": 1e-3,
                                     "batches": 2, "samples": 16, "passed": True,
                                     "outputs": [{"name": "gaze", "max_abs_diff": 3.8e-6, "max_rel_diff": 5.9e-7}]},
                       "onnx_int8": {"checked": "int8 vs fp32 torch", "max_abs_diff": {"gaze": 0.228}}},
            "profiles": {"torch_fp32": torch_prof, "teacher_torch_fp32": torch_prof, "onnx_int8": prof}}


def test_every_figure_has_its_unit_and_direction() -> None:
    md = render_markdown(_report())
    assert "distillation gain: +1.327 deg of angular_error vs the student alone (KD helped" in md
    assert "angular_error (deg), lower is better" in md
    assert "(ms, lower is better)" in md


def test_roles_separators_threads_and_parity_sentences() -> None:
    md = render_markdown(_report())
    assert "| teacher (torch eager, FP32) |" in md and "| student distilled (torch eager, FP32) |" in md
    assert "3,577,182" in md and "279,732" in md
    assert "None" not in md
    assert "| 2 (runtime default) |" in md
    assert "matches the torch student within atol 0.0001 and rtol 0.001 on 16 test inputs" in md
    assert "{" not in md.split("## Parity with PyTorch")[1]  # no Python dicts


def test_contention_is_said_up_front() -> None:
    assert "Contended CPU" not in render_markdown(_report())
    md = render_markdown(_report(contended=True))
    assert "**Contended CPU**" in md and "3.8 runnable threads on average on 2 CPUs" in md


def test_tradeoff_plot_has_every_profiled_variant_and_is_linked(tmp_path: Path) -> None:
    rep = json.loads(json.dumps(_report()))
    labels = [p[0] for p in tradeoff_points(rep)]
    assert labels == ["teacher (torch FP32)", "student KD (torch FP32)", "student alone (torch FP32, same network)",
                      "student.int8.onnx (ORT INT8)"]
    path = plot_tradeoff(rep, tmp_path / "report_tradeoff.png")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![angular_error against p50 latency for every variant](report_tradeoff.png)" in render_markdown(
        rep, plot=path.name)
    assert plot_tradeoff({**rep, "profiles": {}}, tmp_path / "none.png") is None


def test_the_metrics_beside_figures_get_their_own_column() -> None:
    """A drone run's success rate can saturate: its final error is printed beside it, per model."""
    rep = _report()
    rep["metric"] = {"name": "success_rate", "lower_is_better": False, "unit": "fraction",
                     "beside": ["final_error_px"]}
    rep["variants"]["teacher"]["extras"] = {"final_error_px": 0.89, "success_rate": 0.91}
    rep["variants"]["student_kd"]["extras"] = {"final_error_px": 1.25}
    md = render_markdown(rep)
    head = next(line for line in md.splitlines() if line.startswith("| model | success_rate"))
    assert "| final_error_px | parameters |" in head
    lines = md.splitlines()
    table = lines[lines.index(head):lines.index("", lines.index(head))]
    rows = {line.split("|")[1].strip(): line for line in table}
    assert "| 0.890 | 3,577,182 |" in rows["teacher (torch)"]
    assert "| 1.250 | 279,732 |" in rows["student distilled (torch)"]
    assert "| - | 279,732 |" in rows["student alone, no teacher (torch)"]  # no extras recorded: a dash
    sep = md.splitlines()[md.splitlines().index(head) + 1]
    assert sep.count("---") == head.count("|") - 1
    assert "final_error_px" not in render_markdown(_report())  # a task without figures beside: no column
