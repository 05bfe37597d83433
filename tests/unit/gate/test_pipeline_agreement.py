"""The gate line `edgekd distill-and-export` suggests judges what the pipeline's budget judged.

The pipeline profiles its artifacts together in its own process (which also holds the training data),
so its budget does not judge peak RSS; the reports it leaves say so through their RSS scope, and the
gate, given one of them, does not judge it either. Before, the suggested gate FAILed on peak RSS
(1.55e3 MB > 1500) while report.md said the budget PASSed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _gate_reports import edit

from edgekd.cli import main
from edgekd.config import load_device
from edgekd.fileio import sha256_file
from edgekd.pipeline.budget_stage import check_pipeline_budget

RSS_OVER_BUDGET = 1550.0  # host-cpu's gaze budget allows 1500 MB


@pytest.fixture(scope="module")
def run_dir(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder as the pipeline leaves it: two artifacts profiled together in one process,
    profile/<variant>.json beside them, report.json naming their SHA-256s."""
    from edgekd.profile.protocol import MeasureConfig, ProfileTarget, profile_artifacts
    from edgekd.runtime.base import SessionOptions

    out = tmp_path_factory.mktemp("run")
    arts = {"onnx_fp32": out / "student.onnx", "onnx_int8": out / "student.int8.onnx"}
    shutil.copyfile(models["b"], arts["onnx_fp32"])
    shutil.copyfile(models["a"], arts["onnx_int8"])
    feeds = {"x": np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)}
    targets = [ProfileTarget(p, "onnxruntime", SessionOptions(threads=1), feeds) for p in arts.values()]
    reports = profile_artifacts(targets, MeasureConfig(warmup_s=0.05, sessions=6, iterations=15,
                                                       min_duration_s=0.0), progress=False)
    profiles: dict[str, Any] = {}
    for name, rep in zip(arts, reports, strict=True):
        rep.data["results"]["peak_rss_mb"] = RSS_OVER_BUDGET  # the pipeline process's high-water mark
        rep.data["valid"], rep.data["invalid_reasons"] = True, []  # a loaded shared host may drift
        rep.save(out / "profile" / f"{name}.json")
        res = rep.data["results"]
        profiles[name] = {"latency_ms": res["latency_ms"], "session_medians_ms": res["session_medians_ms"],
                          "peak_rss_mb": res["peak_rss_mb"], "valid": True, "invalid_reasons": [],
                          "report": f"profile/{name}.json"}
    variants = {name: {"metric": 5.0, "sha256": sha256_file(p), "bytes": p.stat().st_size, "path": p.name}
                for name, p in arts.items()}
    doc = {"schema": "edgekd.report/1", "recipe": "gaze", "device": "host-cpu",
           "metric": {"name": "angular_error_deg", "lower_is_better": True, "unit": "deg"},
           "variants": variants, "profiles": profiles}
    doc["budget"], _ = check_pipeline_budget(doc, load_device("host-cpu"), "gaze", profiles)
    (out / "report.json").write_text(json.dumps(doc))
    return out


def _suggested(out: Path) -> list[str]:
    # the `next:` gate line of edgekd/cli/pipeline.py, on this run folder
    return ["gate", f"{out}/profile/onnx_int8.json", "--device", "host-cpu", "--recipe", "gaze",
            "--recipe-report", f"{out}/report.json"]


def test_profiles_taken_together_carry_a_shared_rss_scope(run_dir: Path) -> None:
    scope = json.loads((run_dir / "profile" / "onnx_int8.json").read_text())["results"]["peak_rss_scope"]
    assert scope != "process" and "2 targets" in scope


def test_suggested_gate_judges_what_the_pipeline_judged(run_dir: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    budget = json.loads((run_dir / "report.json").read_text())["budget"]
    assert budget["verdict"] == "PASS"
    js, md = tmp_path / "v.json", tmp_path / "summary.md"
    assert main([*_suggested(run_dir), "--json", str(js), "--summary", str(md)]) == 0
    assert "Not judged:" in md.read_text() and "- peak_rss_mb (1500 MB): peak RSS not judged" in md.read_text()
    verdict = json.loads(js.read_text())
    gate = {c["name"]: c["verdict"] for c in verdict["checks"]}
    assert len(verdict["not_judged"]) == 1 and verdict["not_judged"][0].startswith("peak_rss_mb (1500 MB)")
    pipeline = {c["name"]: c["verdict"] for c in budget["checks"]}
    assert gate == pipeline == {"latency_p90_ucb99": "PASS", "metric_angular_error_deg": "PASS",
                                "artifact_mb": "PASS"}
    out = capsys.readouterr().out
    assert "NOT JUDGED   peak_rss_mb (1500 MB): peak RSS not judged" in out


def test_same_rss_measured_alone_is_judged(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The control: the same figure from a report whose peak is the artifact's alone FAILs the budget."""
    alone = tmp_path / "onnx_int8.json"
    shutil.copyfile(run_dir / "profile" / "onnx_int8.json", alone)
    shutil.copyfile(run_dir / "profile" / "onnx_int8.samples.npy", tmp_path / "onnx_int8.samples.npy")
    edit(alone, lambda d: d["results"].__setitem__("peak_rss_scope", "process"))
    argv = _suggested(run_dir)
    argv[1] = str(alone)
    assert main(argv) == 1
    assert "peak RSS 1.55e+03 MB > budget 1500 MB" in capsys.readouterr().out


@pytest.mark.slow
def test_smoke_run_next_gate_line_agrees_with_its_budget(tmp_path: Path) -> None:
    """End to end: the gate line `edgekd distill-and-export` prints, run as printed on its own output."""
    import os
    import shlex
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "edgekd", "distill-and-export", "gaze", "--preset", "smoke",
                          "--out", str(tmp_path / "run"), "--no-progress", "--set", "teacher.cache=false"],
                         capture_output=True, text=True, env=env, timeout=1200, check=False)
    assert run.returncode in (0, 1), run.stderr[-2000:]
    (hint,) = [ln for ln in run.stdout.splitlines() if ln.startswith("next: ")]
    gate_cmd = shlex.split(hint.split("|")[-1])
    assert gate_cmd[:2] == ["edgekd", "gate"]
    js = tmp_path / "gate.json"
    gate = subprocess.run([sys.executable, "-m", "edgekd", *gate_cmd[1:], "--json", str(js)], capture_output=True,
                          text=True, env=env, timeout=600, check=False)
    budget = json.loads((tmp_path / "run" / "report.json").read_text())["budget"]
    expected_exit = {"PASS": 0, "FAIL": 1, "INCONCLUSIVE": 3, "INVALID": 4}[budget["verdict"]]
    assert gate.returncode == expected_exit, gate.stdout + gate.stderr
    judged = {c["name"]: c["verdict"] for c in json.loads(js.read_text())["checks"]}
    assert judged == {c["name"]: c["verdict"] for c in budget["checks"]}
    assert "peak_rss_mb" not in judged
