"""Run folders never lie (edgekd.pipeline.runfolder): a lock per --out, the previous run's claims removed
before anything is touched, a marker while a run is in progress, temporaries swept, the manifest last.

The fault-injection tests kill -9 a RE-RUN at each stage and check with the one verifier that every file
the manifest claims exists with its hash (or that there is no manifest), then re-run to completion: here
with a stand-in pipeline that writes its files the way edgekd does (fast, default suite), and in
test_runfolder_e2e.py with the real `edgekd distill-and-export` (slow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgekd.cli import main
from edgekd.errors import ConfigError, EdgekdError
from edgekd.fileio import write_json, write_text
from edgekd.pipeline.manifest import artifact_entry
from edgekd.pipeline.runfolder import LOCK_NAME, MARKER_NAME, run_folder, verify_run_folder

REPO = Path(__file__).resolve().parents[3]

# A stand-in for run_pipeline: the same guard, stage kill points, atomic writes and temp work folder as
# the real one, without torch (loads the two base-layer modules it needs by path: `import edgekd.pipeline`
# would import torch). argv: OUT TAG [unguarded]. Every file's content depends on TAG, so a manifest left
# from another run names hashes that do not match.
FAKE = textwrap.dedent("""
    import importlib.util, json, os, shutil, sys, tempfile, time
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from edgekd.fileio import kill_point, sha256_file, write_json, write_text
    spec = importlib.util.spec_from_file_location("rf", {rf!r})
    rf = sys.modules["rf"] = importlib.util.module_from_spec(spec); spec.loader.exec_module(rf)
    out, tag = Path(sys.argv[1]), sys.argv[2]
    STAGES = [("train", ["student_kd.safetensors", "train/student_kd/last.safetensors"]),
              ("export", ["student.onnx"]), ("quantize", ["student.int8.onnx"]), ("evaluate", []),
              ("profile", ["profile/torch_fp32.json", "profile/onnx_int8.json"])]

    def body():
        files = []
        for stage, names in STAGES:
            kill_point("stage:" + stage)
            if stage == "export":  # like edgekd.export.onnx: a work folder beside the target, then a rename
                work = Path(tempfile.mkdtemp(prefix=".student.onnx.", dir=out))
                (work / "raw.onnx").write_text(tag)
                kill_point("export:work_folder")
                shutil.rmtree(work)
            for n in names:
                write_text(out / n, tag + ":" + n)
            files += names
        write_text(out / "report.json", json.dumps({{"tag": tag}}))
        write_text(out / "report.md", "# " + tag)
        arts = [{{"path": n, "sha256": sha256_file(out / n), "bytes": (out / n).stat().st_size}}
                for n in files + ["report.json", "report.md"]]
        write_json(out / "manifest.json", {{"schema": "edgekd.manifest/1", "recipe_hash": tag, "artifacts": arts}})

    if len(sys.argv) > 3:  # unguarded: the behaviour before run folders were guarded
        out.mkdir(parents=True, exist_ok=True); body()
    else:
        with rf.run_folder(out, also_stale=("profile",)):
            if os.environ.get("FAKE_HOLD"):
                print("holding", flush=True); time.sleep(float(os.environ["FAKE_HOLD"]))
            body()
""").format(repo=str(REPO), rf=str(REPO / "edgekd" / "pipeline" / "runfolder.py"))

# every place the stand-in can be killed, in the order it reaches them
FAKE_POINTS = ["stage:train", "write:student_kd.safetensors", "stage:export", "export:work_folder",
               "write:student.onnx", "stage:quantize", "write:student.int8.onnx", "stage:evaluate",
               "stage:profile", "write:onnx_int8.json", "write:report.json", "write:report.md",
               "write:manifest.json", "finish:before_marker_removed"]


def _fake(out: Path, tag: str, kill: str | None = None, *, unguarded: bool = False,
          **popen: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EDGEKD_TEST_KILL_AT": kill or ""}
    return subprocess.run([sys.executable, "-c", FAKE, str(out), tag, *(["x"] if unguarded else [])], env=env,
                          capture_output=True, text=True, timeout=120, **popen)  # type: ignore[call-overload]


def _state(out: Path) -> str:
    temps = [p.name for p in out.rglob(".*") if p.name != LOCK_NAME]
    parts = ["marker" if (out / MARKER_NAME).exists() else "no marker",
             "manifest" if (out / "manifest.json").exists() else "no manifest"]
    return ", ".join(parts + ([f"temps {temps}"] if temps else []))


# ---------------------------------------------------------------- the guard, in process
def _old_run(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in ("report.json", "report.md", "student.onnx", "profile/onnx_int8.json"):
        write_text(out / name, "old")
    write_json(out / "manifest.json", {"schema": "edgekd.manifest/1",
                                       "artifacts": [artifact_entry(out / "student.onnx", out)]})


def test_claims_removed_and_marker_written_before_the_body_runs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _old_run(out)
    with run_folder(out, also_stale=("profile",), command="edgekd test") as d:
        assert d == out
        assert not any((out / n).exists() for n in ("manifest.json", "report.json", "report.md", "profile"))
        assert (out / "student.onnx").read_text() == "old"  # artifacts are the run's to replace, not the guard's
        marker = json.loads((out / MARKER_NAME).read_text())
        assert marker["pid"] == os.getpid() and marker["command"] == "edgekd test" and "started" in marker
        assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
        v = verify_run_folder(out)
        assert (v.valid, v.state) == (False, "in_progress")
    assert not (out / MARKER_NAME).exists()
    assert (out / LOCK_NAME).read_text() == ""  # pid cleared with the lock released
    assert verify_run_folder(out).state == "no_manifest"


def test_a_failed_run_keeps_the_marker_with_its_error(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _old_run(out)
    with pytest.raises(RuntimeError, match="boom"):
        with run_folder(out):
            write_text(out / ".report.json.abcd1234.tmp.json", "half")  # as a killed writer leaves it
            raise RuntimeError("boom\nsecond line")
    marker = json.loads((out / MARKER_NAME).read_text())
    assert marker["status"] == "failed" and marker["error"] == "RuntimeError: boom"
    assert not (out / ".report.json.abcd1234.tmp.json").exists()  # swept on the way out
    v = verify_run_folder(out)
    assert (v.valid, v.state, v.claims_true) == (False, "failed", True)
    assert "RuntimeError: boom" in v.problems[0]


def test_leftover_temporaries_are_swept_at_the_start(tmp_path: Path) -> None:
    out = tmp_path / "run"
    (out / ".student.onnx.k2j_x9q1").mkdir(parents=True)  # edgekd.export.onnx's work folder
    (out / ".student.onnx.k2j_x9q1" / "raw.onnx").write_text("x")
    (out / "train" / "student_kd").mkdir(parents=True)
    (out / "train" / "student_kd" / ".last.safetensors.abcdefgh.tmp.safetensors").write_text("half")
    (out / ".gitignore").write_text("*")  # a hidden file that is not an edgekd temporary is kept
    assert len(verify_run_folder(out).notes) == 2
    with run_folder(out):
        assert sorted(p.name for p in out.rglob(".*")) == [".edgekd.lock", ".gitignore"]


def test_a_second_run_into_the_same_folder_exits_2_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _old_run(out)
    with run_folder(out):
        before = sorted(p.name for p in out.iterdir())
        with pytest.raises(EdgekdError, match=rf"in use by another edgekd run \(pid {os.getpid()}\)") as exc:
            with run_folder(out):
                pytest.fail("entered a locked folder")
        assert exc.value.exit_code == 2
        assert sorted(p.name for p in out.iterdir()) == before  # the refused run touched nothing
        assert (out / MARKER_NAME).exists()


def test_out_that_is_a_file_is_a_clean_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a folder") as exc:
        with run_folder(f):
            pytest.fail("entered")
    assert exc.value.exit_code == 2 and f.read_text() == "x"


def test_disabled_guard_does_nothing(tmp_path: Path) -> None:
    _old_run(tmp_path)
    with run_folder(tmp_path, enabled=False):
        assert (tmp_path / "manifest.json").exists() and not (tmp_path / MARKER_NAME).exists()


# ---------------------------------------------------------------- the verifier
def _complete(out: Path) -> None:
    for name in ("student.onnx", "profile/onnx_int8.json", "report.json"):
        write_text(out / name, f"content of {name}")
    write_json(out / "manifest.json", {"schema": "edgekd.manifest/1", "artifacts": [
        artifact_entry(out / n, out) for n in ("student.onnx", "profile/onnx_int8.json", "report.json")]})


@pytest.mark.parametrize(("damage", "state", "problem"), [
    (None, "complete", None),
    (lambda o: (o / "manifest.json").unlink(), "no_manifest", None),
    (lambda o: (o / "student.onnx").unlink(), "invalid", "student.onnx: claimed by manifest.json but missing"),
    (lambda o: (o / "student.onnx").write_text("content of student.onnX"), "invalid", "student.onnx: sha256"),
    (lambda o: (o / "report.json").write_text("short"), "invalid", "report.json: 5 bytes, manifest.json says 22"),
    (lambda o: (o / "manifest.json").write_text("{"), "invalid", "manifest.json: unreadable"),
    (lambda o: (o / "manifest.json").write_text("[]"), "invalid", "not an edgekd manifest"),
    (lambda o: write_json(o / "manifest.json", {"schema": "edgekd.manifest/1", "artifacts": [
        {"path": "../outside", "sha256": "0" * 64}]}), "invalid", "../outside: outside the run folder"),
    (lambda o: write_json(o / MARKER_NAME, {"pid": 1, "started": "t"}), "interrupted", "was interrupted"),
])
def test_verifier_verdicts(tmp_path: Path, damage, state: str, problem: str | None) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    _complete(out)
    (tmp_path / "outside").write_text("x")
    if damage is not None:
        damage(out)
    v = verify_run_folder(out)
    assert v.state == state
    assert v.valid == (state in ("complete", "no_manifest"))
    if problem is None:
        assert v.problems == []
    else:
        assert any(problem in p for p in v.problems), v.problems
    assert v.claims_true == (state in ("complete", "no_manifest", "interrupted"))


def test_verify_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    _complete(out)
    assert main(["verify", str(out)]) == 0
    assert "VALID" in capsys.readouterr().out
    write_text(out / "student.onnx", "other")
    assert main(["verify", str(out)]) == 4
    text = capsys.readouterr().out
    assert "INVALID" in text and "student.onnx: 5 bytes, manifest.json says 23" in text
    assert main(["verify", str(tmp_path / "nope")]) == 2
    assert "not a run folder" in capsys.readouterr().err


# ---------------------------------------------------------------- fault injection (stand-in pipeline)
def test_killed_rerun_never_lies_at_any_point_stand_in_pipeline(tmp_path: Path) -> None:
    """A complete run, then one re-run killed at each point in turn (each starting from the folder the
    previous kill left), then a re-run to completion. The verifier must never find a false claim."""
    out = tmp_path / "run"
    assert _fake(out, "first").returncode == 0
    assert verify_run_folder(out).state == "complete"
    rows = []
    for i, point in enumerate(FAKE_POINTS):
        res = _fake(out, f"rerun{i}", kill=point)
        assert res.returncode == -signal.SIGKILL, (point, res.stderr[-2000:])
        v = verify_run_folder(out)
        rows.append((point, _state(out), v.summary()))
        assert v.claims_true, (point, v.problems)
        assert not v.valid and v.state == "interrupted", (point, v.state)  # the marker says so
    assert "temps ['.student.onnx." in dict((r[0], r[1]) for r in rows)["export:work_folder"]
    assert "temps ['.student.int8.onnx." in dict((r[0], r[1]) for r in rows)["write:student.int8.onnx"]
    assert _fake(out, "last").returncode == 0
    v = verify_run_folder(out)
    assert (v.state, v.checked, v.notes) == ("complete", 8, [])
    assert json.loads((out / "manifest.json").read_text())["recipe_hash"] == "last"
    print("\n".join(" | ".join(r) for r in rows))


def test_the_stand_in_lies_without_the_guard(tmp_path: Path) -> None:
    """The check above can fail: unguarded (the old behaviour), a re-run killed after its first new
    artifact leaves the previous manifest naming hashes that no longer match."""
    out = tmp_path / "run"
    assert _fake(out, "first", unguarded=True).returncode == 0
    assert _fake(out, "second", kill="stage:export", unguarded=True).returncode == -signal.SIGKILL
    v = verify_run_folder(out)
    assert not v.claims_true and any(p.startswith("student_kd.safetensors: ") for p in v.problems)


def test_two_runs_at_once_the_second_exits_2_naming_the_first(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-c", FAKE, str(out), "first"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "FAKE_HOLD": "60"})
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "holding"
        second = _fake(out, "second")
        assert second.returncode != 0
        assert f"is in use by another edgekd run (pid {first.pid})" in second.stderr
    finally:
        first.kill()
        first.wait(timeout=30)
    assert _fake(out, "third").returncode == 0  # a killed holder leaves no lock behind


@pytest.mark.slow  # two `edgekd distill-and-export` processes: about 40 s on a shared 2-core machine
def test_two_cli_runs_at_once_the_second_exits_2_naming_the_first(tmp_path: Path) -> None:
    """The same with the real command: the second `edgekd distill-and-export` into a busy --out exits 2 and
    names the first's pid, before touching anything."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "edgekd", "distill-and-export", "gaze", "--preset", "smoke", "--out", str(out),
           "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (out / MARKER_NAME).exists():
            assert first.poll() is None and time.monotonic() < deadline, "first run never started"
            time.sleep(0.1)
        second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert second.returncode == 2, second.stderr[-2000:]
        assert f"in use by another edgekd run (pid {first.pid})" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.kill()
        first.wait(timeout=30)
