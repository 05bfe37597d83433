from __future__ import annotations

import json
from pathlib import Path

import pytest

import edgekd.profile.doctor as doctor
import edgekd.profile.sensors as sensors
from edgekd.cli import main


def _by_check(findings):  # type: ignore[no-untyped-def]
    return {f.check: f for f in findings}


@pytest.mark.parametrize(("available_mb", "status"), [(2048.0, "ok"), (1024.0, "ok"), (1023.0, "warn"),
                                                      (400.0, "warn"), (399.0, "fail"), (None, "not present")])
def test_free_memory_thresholds(available_mb: float | None, status: str) -> None:
    f = doctor.check_memory({"memory": {"available_mb": available_mb, "total_mb": 4096.0}})
    assert f.status == status
    assert bool(f.fix) is (status in ("warn", "fail"))


def test_truthful_on_this_machine() -> None:
    ready, findings = doctor.run_doctor("host-cpu")
    f = _by_check(findings)
    # This CI host is not a Jetson or a Raspberry Pi: those checks must say so, not "ok".
    if not Path("/etc/nv_tegra_release").exists():
        assert f["jetson power mode"].status == "not present"
        assert f["jetson clocks locked"].status == "not present"
    if sensors.pi_throttled() is None:
        assert f["raspberry pi throttling"].status == "not present"
    assert f["board matches host-cpu"].status == "ok"
    assert f["runtime onnxruntime"].status == "ok" and "CPUExecutionProvider" in f["runtime onnxruntime"].detail
    assert "free memory" in f  # its thresholds: test_free_memory_thresholds
    assert all(x.status in ("ok", "warn", "fail", "not present") for x in findings)
    assert all(x.fix for x in findings if x.status in ("warn", "fail"))
    assert ready is all(x.status != "fail" for x in findings)


def test_cli_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "sample_runnable", lambda: [1] * 10)  # an idle machine (the sampler only)
    out = tmp_path / "d.json"
    assert main(["doctor", "--device", "host-cpu", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["ready"] is True and d["schema"] == "edgekd.doctor/1"
    assert main(["doctor", "--device", "jetson-orin-nano"]) == 2
    err = capsys.readouterr().err
    assert "board matches jetson-orin-nano" in err and "not a Jetson" in err
    assert main(["doctor", "--device", "no-such-board"]) == 2


def test_missing_backend_fails_with_a_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    import edgekd.runtime as rt

    monkeypatch.setitem(rt._BACKENDS, "onnxruntime", "edgekd_no_such_backend_module")
    ready, findings = doctor.run_doctor(None)
    f = _by_check(findings)["runtime onnxruntime"]
    assert not ready and f.status == "fail" and "pip install -U edgekd" in f.fix


def test_simulated_jetson_with_floating_clocks(monkeypatch: pytest.MonkeyPatch) -> None:
    finding = doctor.check_jetson({"jetson": {"present": True, "power_mode": "0", "clocks_locked": False}})
    assert finding[0].status == "ok" and finding[1].status == "warn" and finding[1].fix == "sudo jetson_clocks"


def test_simulated_pi_throttling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sensors, "pi_throttled", lambda: 0x50005)
    monkeypatch.setattr(sensors, "pi_temp_c", lambda: 81.0)
    f = _by_check(doctor.check_pi())
    assert f["raspberry pi throttling"].status == "fail" and "under-voltage" in f["raspberry pi throttling"].detail
    assert f["raspberry pi temperature"].status == "warn"
    monkeypatch.setattr(sensors, "pi_throttled", lambda: 0x50000)
    assert doctor.check_pi()[0].status == "warn"


# procs_running counts the sampler itself: r samples mean r - 1 other runnable threads.
@pytest.mark.parametrize("running, cpus, status", [
    ([1] * 10, 2, "ok"), ([2] * 10, 2, "ok"), ([3] * 10, 2, "warn"),  # 2 others on 2 CPUs: at the boundary
    ([4] * 10, 2, "fail"), ([3] * 9 + [4], 2, "fail"),  # mean 2.1 > 2: contended, as the profiler judges it
    ([5] * 10, 4, "warn"), ([6] * 10, 2, "fail"), ([], 2, "not present")])
def test_check_load_table(running: list[int], cpus: int, status: str) -> None:
    f = doctor.check_load(running, cpus)
    assert f.status == status, f
    assert (f.fix != "") is (status in ("warn", "fail"))


def test_loaded_machine_is_not_ready(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 20: `doctor` said "ready" at 4.7 runnable threads on 2 CPUs."""
    monkeypatch.setattr(doctor, "sample_runnable", lambda: [6] * 10)
    monkeypatch.setattr(sensors, "usable_cpus", lambda: 2)
    assert main(["doctor", "--device", "host-cpu"]) == 2
    cap = capsys.readouterr()
    assert "cpu load" in cap.err and "contended" in cap.err and "\nready" not in cap.out
