"""`edgekd gate` as users call it: exit codes, outputs (JUnit parsed by junitparser), bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _gate_reports import honest, session_samples
from junitparser import JUnitXml

from edgekd.cli import main
from edgekd.gate.outputs import github_annotations, junit_xml, markdown_summary
from edgekd.gate.verdict import Check, outcome


def _variant(src: Path, dest: Path, *, factor: float = 1.0, noise: float = 0.002, seed: int = 0,
             **changes: object) -> Path:
    """An honest report on the real report's fingerprint: controlled session levels in its raw samples,
    its summary recomputed from them."""
    return honest(src, dest, session_samples(factor=factor, noise=noise, seed=seed), **changes)


def test_reports_pass_fail_and_outputs(report: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")  # annotations are printed only inside GitHub Actions
    base = _variant(report, tmp_path / "base.json", seed=1)
    same = _variant(report, tmp_path / "same.json", seed=2)
    slow = _variant(report, tmp_path / "slow.json", factor=1.2, seed=3)
    # reports taken at different times: a same-speed pair cannot PASS a 3% threshold under a 5% drift bound
    assert main(["gate", str(same), "--baseline", str(base)]) == 3
    assert "between-run drift" in capsys.readouterr().out
    assert main(["gate", str(same), "--baseline", str(base), "--drift", "0"]) == 0
    junit, summ, js = tmp_path / "j.xml", tmp_path / "s.md", tmp_path / "v.json"
    # 20% slower: without a --drift measured on the machine, reports taken at different times cannot FAIL
    assert main(["gate", str(slow), "--baseline", str(base)]) == 3
    assert "cannot prove a regression" in capsys.readouterr().out
    code = main(["gate", str(slow), "--baseline", str(base), "--drift", "0.05", "--junit", str(junit),
                 "--summary", str(summ), "--json", str(js)])
    assert code == 1
    out = capsys.readouterr().out
    assert "::error title=" in out
    xml = JUnitXml.fromfile(str(junit))
    cases = [c for suite in xml for c in suite]
    assert {c.name for c in cases} >= {"regression", "fingerprint", "validity_candidate", "validity_baseline"}
    failed = [c.name for c in cases if c.result and c.result[0].type == "FAIL"]
    assert failed == ["regression"]
    v = json.loads(js.read_text())
    assert v["verdict"] == "FAIL" and v["exit_code"] == 1
    assert "ratio 1.19" in summ.read_text() and "threshold 1.030" in summ.read_text()


def test_invalid_report_and_allow_flag(report: Path, tmp_path: Path) -> None:
    base = _variant(report, tmp_path / "base.json", seed=1)
    bad = _variant(report, tmp_path / "bad.json", seed=2, valid=False, invalid_reasons=["cpu throttled"])
    assert main(["gate", str(bad), "--baseline", str(base)]) == 4
    assert main(["gate", str(bad), "--baseline", str(base), "--allow-invalid"]) == 0


def test_fingerprint_mismatch_is_invalid(report: Path, tmp_path: Path) -> None:
    base = _variant(report, tmp_path / "base.json", seed=1)
    d = json.loads(report.read_text())
    dev = d["device"]
    dev["cpu"] = {**(dev.get("cpu") or {}), "model": "Some Other CPU"} if isinstance(dev.get("cpu"), dict) else \
        "Some Other CPU"
    other = _variant(report, tmp_path / "other.json", seed=2, device=dev)
    assert main(["gate", str(other), "--baseline", str(base)]) == 4


def test_inconclusive(report: Path, tmp_path: Path) -> None:
    base = _variant(report, tmp_path / "base.json", noise=0.2, seed=1)
    cand = _variant(report, tmp_path / "cand.json", noise=0.2, seed=2)
    assert main(["gate", str(cand), "--baseline", str(base)]) == 3
    assert main(["gate", str(cand), "--baseline", str(base), "--allow-inconclusive"]) == 0


@pytest.mark.parametrize("case", ["missing", "not_json", "wrong_schema", "mixed_kinds", "nothing_to_check",
                                  "recipe_without_device"])
def test_bad_input_exit_2(case: str, report: Path, models: dict[str, Path], tmp_path: Path,
                          capsys: pytest.CaptureFixture) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"schema": "something/9"}))
    argv = {"missing": ["gate", str(tmp_path / "nope.json"), "--baseline", str(report)],
            "not_json": ["gate", str(junk), "--baseline", str(report)],
            "wrong_schema": ["gate", str(wrong), "--baseline", str(report)],
            "mixed_kinds": ["gate", str(report), "--baseline", str(models["a"])],
            "nothing_to_check": ["gate", str(report)],
            "recipe_without_device": ["gate", str(report), "--baseline", str(report), "--recipe", "gaze"]}[case]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip()


def test_budgets_only(report: Path, tmp_path: Path) -> None:
    # host-cpu's gaze budget: 20 ms p90 on a <1 ms model passes; size budget 5 MB passes
    assert main(["gate", str(report), "--device", "host-cpu", "--recipe", "gaze"]) == 0
    slow = _variant(report, tmp_path / "slow.json", factor=25.0)  # honest samples around 25 ms
    assert main(["gate", str(slow), "--device", "host-cpu", "--recipe", "gaze"]) == 1
    assert main(["gate", str(slow), "--device", "host-cpu", "--recipe", "gazee"]) == 2


def test_remeasure_models_and_update_baseline(models: dict[str, Path], tmp_path: Path) -> None:
    js = tmp_path / "v.json"
    code = main(["gate", str(models["slow"]), "--baseline", str(models["a"]), "--sessions-min", "4",
                 "--sessions-max", "6", "--iterations", "20", "--threads", "1", "--json", str(js)])
    v = json.loads(js.read_text())
    reg = [c for c in v["checks"] if c["name"] == "regression"][0]
    assert reg["details"]["ratio"] > 1.1
    assert code in (1, 4)  # FAIL, or INVALID if the shared machine's clocks drifted during the run
    store = tmp_path / "baseline"
    code = main(["gate", str(models["b"]), "--baseline", str(models["a"]), "--sessions-min", "4",
                 "--sessions-max", "6", "--iterations", "20", "--threads", "1", "--allow-inconclusive",
                 "--allow-invalid", "--update-baseline", str(store)])
    assert code == 0  # identical models never FAIL (alpha 0.01) and the rest is allowed
    stored = json.loads((store / "baseline.profile.json").read_text())
    prov = stored["baseline_provenance"]
    assert prov["artifact_sha256"] and prov["fingerprint"] and prov["stored_at"]


def test_output_formats_unit(tmp_path: Path) -> None:
    checks = [Check("latency_p90_ucb99", "PASS", "ok", model="m", device="d", value=1.0, limit=2.0, unit="ms"),
              Check("regression", "INCONCLUSIVE", "could not tell, 50% | pipe", model="m", device="d",
                    details={"ratio": 1.01, "ci_low": 0.9, "ci_high": 1.1, "threshold": 0.03, "mde": 0.12}),
              Check("validity_candidate", "INVALID", "throttled\nline2", model="m", device="d")]
    out = outcome(checks, allow_inconclusive=True)
    assert out.exit_code == 4
    f = tmp_path / "j.xml"
    f.write_text(junit_xml(out))
    (suite,) = list(JUnitXml.fromfile(str(f)))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (3, 0, 1, 1)
    kinds = {c.name: type(c.result[0]).__name__ if c.result else "ok" for c in suite}
    assert kinds == {"latency_p90_ucb99": "ok", "regression": "Skipped", "validity_candidate": "Error"}
    md = markdown_summary(out, {"nodes": [{"node": "conv1", "op": "Conv", "ms": 0.5, "pct": 60.0}]})
    assert "\\|" in md and "12.0%" in md and "conv1" in md
    ann = github_annotations(out)
    assert ann[0].startswith("::warning") and ann[1].startswith("::error") and "%0A" in ann[1]
    assert "%25 | pipe" in ann[0]  # '%' in annotation data is escaped first


def test_artifact_size_is_measured_when_the_profiled_file_is_there(report: Path, models: dict[str, Path],
                                                                   tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    import shutil

    from _gate_reports import edit

    art = tmp_path / "a.onnx"
    shutil.copyfile(models["a"], art)
    cand = _variant(report, tmp_path / "cand.json")
    edit(cand, lambda d: d["artifact"].update(path=str(art), size_mb=999.0))  # host-cpu gaze allows 5 MB
    assert main(["gate", str(cand), "--device", "host-cpu", "--recipe", "gaze"]) == 0
    assert f"artifact size {art.stat().st_size / 1e6:.3g} MB <= budget 5 MB" in capsys.readouterr().out
    art.write_bytes(b"another file")  # same path, other content: the report's own figure is all there is
    assert main(["gate", str(cand), "--device", "host-cpu", "--recipe", "gaze"]) == 1
    assert "artifact size 999 MB > budget 5 MB" in capsys.readouterr().out
