"""The example GitHub Actions workflows in docs/ci: valid YAML of the expected shape, and the host x86
workflow's commands run locally, in order, on a tiny model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = sorted((ROOT / "docs" / "ci").glob("*.yml"))


def _load(p: Path) -> dict:
    d = yaml.safe_load(p.read_text())
    # YAML 1.1 reads the key `on` as True
    if True in d:
        d["on"] = d.pop(True)
    return d


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_shape(path: Path) -> None:
    wf = _load(path)
    assert wf["name"] and wf["on"] and wf["jobs"]
    steps = [s for job in wf["jobs"].values() for s in job["steps"]]
    assert all(("uses" in s) != ("run" in s) for s in steps), "each step either uses an action or runs a script"
    runs = "\n".join(s["run"] for s in steps if "run" in s)
    assert "edgekd gate" in runs or " gate " in runs
    assert "--junit" in runs and ("GITHUB_STEP_SUMMARY" in runs)
    assert any("upload-artifact" in s.get("uses", "") for s in steps)


def test_expected_workflows() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"host-x86.yml", "jetson-selfhosted.yml", "rpi-selfhosted.yml"} <= names
    jet = _load(ROOT / "docs/ci/jetson-selfhosted.yml")
    assert "self-hosted" in next(iter(jet["jobs"].values()))["runs-on"]


def test_host_workflow_runs_locally(tmp_path: Path) -> None:
    try:
        import edgekd.runtime.onnxruntime  # noqa: F401
    except ModuleNotFoundError:
        pytest.skip("edgekd.runtime.onnxruntime (the ORT backend) is not in the tree yet: `edgekd profile` "
                    "cannot run")
    from edgekd.gate.synthetic import tiny_cnn

    wf = _load(ROOT / "docs/ci/host-x86.yml")
    (job,) = wf["jobs"].values()
    (tmp_path / "models").mkdir()
    tiny_cnn(tmp_path / "models" / "student.int8.onnx", channels=8, size=32)
    (tmp_path / "baseline").mkdir()
    tiny_cnn(tmp_path / "baseline" / "baseline.onnx", channels=8, size=32)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "edgekd"  # the edgekd of this interpreter, whatever is on PATH
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m edgekd "$@"\n')
    shim.chmod(0o755)
    summary = tmp_path / "summary.md"
    env = {**os.environ, **{k: str(v) for k, v in wf["env"].items()},
           "EDGEKD_PROFILE_ARGS": "--sessions 6 --iterations 20 --threads 1 --min-duration-s 0",
           "EDGEKD_GATE_ARGS": "--sessions-min 4 --sessions-max 6 --iterations 20 --threads 1 "
                               "--allow-inconclusive --allow-invalid",
           "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_REF": "refs/heads/main",
           "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    bash = shutil.which("bash")
    assert bash
    ran = 0
    for step in job["steps"]:
        script = step.get("run", "")
        if "edgekd " not in script:
            continue  # checkout, setup-python, pip install, artifact actions
        r = subprocess.run([bash, "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300, check=False)
        assert r.returncode == 0, f"step {step.get('name')!r} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        ran += 1
    assert ran == 3
    v = json.loads((tmp_path / "out" / "gate-regression.json").read_text())
    assert any(c["name"] == "regression" for c in v["checks"])
    assert (tmp_path / "out" / "gate-budgets.xml").is_file() and "edgekd gate" in summary.read_text()
    assert (tmp_path / "baseline-new" / "baseline.profile.json").is_file()
