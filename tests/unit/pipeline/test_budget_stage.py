"""The budget verdict at the end of distill-and-export: what is judged where, and INVALID is never a pass."""

from typing import Any

from edgekd.config import load_device
from edgekd.pipeline.budget_stage import check_pipeline_budget


def _report(metric: float, nbytes: int) -> dict[str, Any]:
    return {"metric": {"name": "angular_error_deg"},
            "variants": {"onnx_int8": {"metric": metric, "bytes": nbytes, "path": "student.int8.onnx"}}}


def _profile(p90_ucb: float | None, valid: bool = True) -> dict[str, Any]:
    return {"onnx_int8": {"latency_ms": {"p50": 1.0, "p90": 1.2, "p90_ucb99": p90_ucb}, "peak_rss_mb": 9e9,
                          "valid": valid, "invalid_reasons": [] if valid else ["throttled"]}}


def test_host_judges_latency_metric_and_size_not_the_pipelines_rss() -> None:
    host = load_device("host-cpu")
    b = host.budgets["gaze"]
    section, passed = check_pipeline_budget(_report(b.metric_max - 1, 1000), host, "gaze",
                                            _profile(b.latency_p90_ms / 2))
    names = {c["name"]: c["verdict"] for c in section["checks"]}
    assert passed is True and section["verdict"] == "PASS"
    assert names == {"latency_p90_ucb99": "PASS", "metric_angular_error_deg": "PASS", "artifact_mb": "PASS"}
    assert any("peak_rss_mb" in n for n in section["notes"])


def test_each_budget_fails_on_its_own() -> None:
    host = load_device("host-cpu")
    b = host.budgets["gaze"]
    ok_lat, ok_metric, ok_size = b.latency_p90_ms / 2, b.metric_max - 1, 1000
    for rep, prof, failing in [
        (_report(ok_metric, ok_size), _profile(b.latency_p90_ms * 2), "latency_p90_ucb99"),
        (_report(b.metric_max + 1, ok_size), _profile(ok_lat), "metric_angular_error_deg"),
        (_report(ok_metric, int(b.artifact_mb * 2e6)), _profile(ok_lat), "artifact_mb"),
    ]:
        section, passed = check_pipeline_budget(rep, host, "gaze", prof)
        assert passed is False and section["verdict"] == "FAIL"
        assert [c["name"] for c in section["checks"] if c["verdict"] == "FAIL"] == [failing]


def test_invalid_or_missing_measurement_is_not_judged_not_passed() -> None:
    host = load_device("host-cpu")
    b = host.budgets["gaze"]
    for prof in (_profile(b.latency_p90_ms / 2, valid=False), _profile(None), {}):
        section, passed = check_pipeline_budget(_report(b.metric_max - 1, 1000), host, "gaze", prof)
        assert passed is None and section["verdict"] == "INVALID", section


def test_a_board_profile_judges_only_what_this_machine_can_say() -> None:
    pi = load_device("raspberry-pi-4")
    b = pi.budgets["gaze"]
    section, passed = check_pipeline_budget(_report(0.0, 1000), pi, "gaze", _profile(1e6))
    names = {c["name"] for c in section["checks"]}
    assert "latency_p90_ucb99" not in names and passed is True
    assert any("--host" in n for n in section["notes"]), "says how to measure on the board"
    assert b.latency_p90_ms is not None


def _contended(prof: dict[str, Any]) -> dict[str, Any]:
    return {k: {**v, "contended": True, "cpu_contention": {"runnable_threads_mean": 4.5, "cpus": 2}}
            for k, v in prof.items()}


def test_a_latency_fail_on_contended_cpus_is_inconclusive_not_fail() -> None:
    host = load_device("host-cpu")
    b = host.budgets["gaze"]
    section, passed = check_pipeline_budget(_report(b.metric_max - 1, 1000), host, "gaze",
                                            _contended(_profile(b.latency_p90_ms * 2)))
    lat = next(c for c in section["checks"] if c["name"] == "latency_p90_ucb99")
    assert lat["verdict"] == "INCONCLUSIVE" and "4.5 runnable threads" in lat["message"]
    assert section["verdict"] == "INCONCLUSIVE" and passed is None


def test_contention_does_not_hide_a_real_failure_or_spoil_a_pass() -> None:
    host = load_device("host-cpu")
    b = host.budgets["gaze"]
    section, passed = check_pipeline_budget(_report(b.metric_max + 1, 1000), host, "gaze",
                                            _contended(_profile(b.latency_p90_ms * 2)))
    assert section["verdict"] == "FAIL" and passed is False  # the metric fails whatever the CPU load
    section, passed = check_pipeline_budget(_report(b.metric_max - 1, 1000), host, "gaze",
                                            _contended(_profile(b.latency_p90_ms / 2)))
    assert section["verdict"] == "PASS" and passed is True  # contention only slows a model down


def test_an_int8_budget_judges_the_variant_it_is_told() -> None:
    host = load_device("host-cpu")
    b = host.budgets["gaze"]
    rep = {"metric": {"name": "angular_error_deg"},
           "variants": {"openvino_int8": {"metric": b.metric_max - 1, "bytes": 1000, "path": "student.int8.xml"}}}
    prof = {"openvino_int8": _profile(b.latency_p90_ms / 2)["onnx_int8"]}
    section, passed = check_pipeline_budget(rep, host, "gaze", prof, variants={"int8": "openvino_int8"})
    assert section["variant"] == "openvino_int8" and passed is True


def test_the_budget_says_when_the_optimize_pick_is_not_what_it_judged() -> None:
    from edgekd.pipeline.budget_stage import pick_note

    opt = {"picked": "ov-fp32", "picked_artifact": "student.onnx", "picked_runtime": "openvino",
           "picked_precision": "fp32"}
    note = pick_note(opt, {"variant": "onnx_int8", "verdict": "PASS"}, "host-cpu", "gaze")
    assert note is not None and "judged onnx_int8" in note and "picked ov-fp32 (student.onnx)" in note
    assert "`edgekd profile RUN/student.onnx --runtime openvino --device host-cpu" in note
    assert "`edgekd gate pick.json --device host-cpu --recipe gaze`" in note
    assert pick_note(None, {"variant": "onnx_int8"}, "host-cpu", "gaze") is None  # no search
    assert pick_note({"picked": None, "picked_artifact": None}, {"variant": "onnx_int8"}, "host-cpu", "gaze") is None
    assert pick_note(opt, {"verdict": None, "note": "no budget"}, "host-cpu", "gaze") is None  # nothing judged


def test_a_budget_for_a_variant_the_run_did_not_make_is_not_judged() -> None:
    """quantize.enabled: false against an INT8 budget: no crash, no verdict, a note saying why."""
    from edgekd.config.device import load_device
    from edgekd.pipeline.budget_stage import check_pipeline_budget

    dev = load_device("host-cpu")
    report = {"recipe": "gaze", "variants": {"onnx_fp32": {"metric": 5.0, "bytes": 1000}}}
    section, passed = check_pipeline_budget(report, dev, "gaze", {})
    assert passed is None and section["verdict"] is None
    assert "did not make" in section["note"] and "onnx_fp32" in section["note"]
