from __future__ import annotations

import itertools

import numpy as np
import pytest
from support.profile_helpers import FakeSession

import edgekd.profile.sensors as sensors
from edgekd.profile.fingerprint import collect_fingerprint, fingerprints_match
from edgekd.profile.protocol import MeasureConfig, ProfileTarget, profile_artifacts
from edgekd.profile.sensors import SensorLog, decode_pi_throttled, parse_tegrastats
from edgekd.runtime.base import SessionOptions

TEGRA = ("RAM 2448/7620MB (lfb 2x4MB) SWAP 0/3810MB CPU [12%@1510,8%@1510] EMC_FREQ 0% GR3D_FREQ 45%@[624] "
         "cpu@48.5C soc2@46.1C gpu@47.2C VDD_IN 5123mW/5012mW VDD_CPU_GPU_CV 1234mW/1200mW")


def test_tegrastats_line_is_parsed() -> None:
    d = parse_tegrastats(TEGRA)
    assert d["ram_used_mb"] == 2448 and d["gpu_util_pct"] == 45 and d["gpu_mhz"] == 624
    assert d["temps_c"]["gpu"] == 47.2
    assert d["power_mw"] == {"VDD_IN": 5123, "VDD_CPU_GPU_CV": 1234}


def test_pi_throttle_register_decoding() -> None:
    d = decode_pi_throttled(0x50005)
    assert d["now"] == ["under-voltage", "throttled"]
    assert d["since_boot"] == ["under-voltage", "throttled"]


def test_verdict_flags_drift_throttling_and_lists_absent() -> None:
    log = SensorLog(0.5, present={"cpufreq": True, "vcgencmd": True, "nvml": True, "thermal_zones": False})
    log.samples = [{"cpu_mhz_mean": 2400.0, "pi_throttled": 0x0, "nvml": {"sm_mhz": 1800, "reasons": 0}},
                   {"cpu_mhz_mean": 1800.0, "pi_throttled": 0x4, "nvml": {"sm_mhz": 1800, "reasons": 0x40}}]
    log.pi_start, log.pi_end = 0x0, 0x40004
    reasons, summary = log.verdict(0.10)
    text = " | ".join(reasons)
    assert "CPU clock drifted by 25%" in text
    assert "throttled" in text and "sticky" in text
    assert "HW thermal slowdown" in text
    assert summary["absent"] == ["thermal_zones"]


def test_quiet_log_is_valid() -> None:
    log = SensorLog(0.5, present={"cpufreq": True, "thermal_zones": True})
    log.samples = [{"cpu_mhz_mean": 2400.0, "thermal": [{"zone": "z0", "type": "cpu", "temp_c": 50.0,
                                                         "passive_c": 85.0}]},
                   {"cpu_mhz_mean": 2390.0, "thermal": [{"zone": "z0", "type": "cpu", "temp_c": 55.0,
                                                         "passive_c": 85.0}]}]
    reasons, summary = log.verdict()
    assert reasons == [] and summary["thermal_max_c"] == {"z0": 55.0}


def test_clock_drift_during_a_run_makes_the_report_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    freqs = itertools.cycle([[3000.0, 3000.0], [1500.0, 1500.0]])
    monkeypatch.setattr(sensors, "cpu_freqs_mhz", lambda: next(freqs))
    sess = FakeSession()
    t = ProfileTarget(None, "fake", SessionOptions(), {"x": np.zeros((1, 4), np.float32)},
                      session_factory=lambda: sess)
    cfg = MeasureConfig(warmup_s=0, warmup_iters=0, sessions=2, iterations=30, min_duration_s=0.0,
                        sensor_interval_s=0.01)
    [rep] = profile_artifacts([t], cfg, progress=False)
    assert not rep.valid
    assert any("CPU clock drifted" in r for r in rep.invalid_reasons)


def test_this_machine_lists_absent_sensors_truthfully() -> None:
    with sensors.SensorSampler(0.05) as s:
        pass
    _, summary = s.log.verdict()
    for name, present in summary["present"].items():
        assert (name in summary["absent"]) == (not present)
    assert summary["present"]["tegrastats"] is False or sensors.shutil.which("tegrastats")


def test_fingerprints_match_names_the_differences() -> None:
    a = collect_fingerprint({"name": "onnxruntime", "version": "1.0", "threads": 1})
    ok, diffs = fingerprints_match(a, a)
    assert ok and diffs == []
    b = {**a, "cpu": {**a["cpu"], "model": "Other CPU"}, "runtime": {**a["runtime"], "threads": 4}}
    ok, diffs = fingerprints_match(a, b)
    assert not ok
    assert any(d.startswith("cpu.model:") for d in diffs) and any(d.startswith("runtime.threads:") for d in diffs)


def test_fingerprints_match_accepts_reports() -> None:
    fp = collect_fingerprint()
    r1 = {"schema": "edgekd.profile/1", "device": fp, "runtime": {"name": "onnxruntime", "version": "1"}}
    r2 = {"schema": "edgekd.profile/1", "device": fp, "runtime": {"name": "onnxruntime", "version": "2"}}
    ok, diffs = fingerprints_match(r1, r2)
    assert not ok and diffs == ["runtime.version: '1' != '2'"]
