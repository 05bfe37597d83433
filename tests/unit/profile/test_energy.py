"""Energy per inference: tegrastats/NVML parsing and integration on recorded samples, and the profiler's report."""

from __future__ import annotations

import os
import stat
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from support.profile_helpers import FakeSession

from edgekd.profile.energy import (
    PowerSampler,
    choose_rail,
    energy_from_counter_mj,
    energy_from_power_mj,
    energy_summary,
    parse_rails,
    rail_power_mw,
)
from edgekd.profile.protocol import MeasureConfig, ProfileTarget, profile_artifacts
from edgekd.runtime.base import SessionOptions

# tegrastats lines in each Jetson generation's format (values as the tools print them)
ORIN_NANO = ("12-03-2026 10:00:00 RAM 2210/7620MB (lfb 4x4MB) SWAP 0/3810MB (cached 0MB) CPU [2%@729,1%@729,"
             "off,off,0%@729,3%@729] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305] cpu@47.5C soc2@46.1C tj@47.9C "
             "VDD_IN 5022mW/5022mW VDD_CPU_GPU_CV 1234mW/1200mW VDD_SOC 1500mW/1490mW")
AGX_ORIN = ("RAM 3100/30536MB (lfb 6800x4MB) SWAP 0/15268MB (cached 0MB) CPU [1%@1190,0%@1190] GR3D_FREQ 0%@[0,0] "
            "VDD_GPU_SOC 3182mW/3182mW VDD_CPU_CV 795mW/795mW VIN_SYS_5V0 3422mW/3422mW VDDQ_VDD2_1V8AO 604mW/604mW")
NANO_JP4 = ("RAM 1650/3956MB (lfb 110x4MB) SWAP 0/1978MB (cached 0MB) IRAM 0/252kB(lfb 252kB) CPU [9%@102,6%@102,"
            "5%@102,4%@102] EMC_FREQ 3%@1600 GR3D_FREQ 0%@76 APE 25 PLL@30C CPU@32.5C PMIC@100C GPU@30.5C AO@40C "
            "thermal@31.25C POM_5V_IN 3000/3000 POM_5V_GPU 0/0 POM_5V_CPU 440/440")
XAVIER_NX_JP4 = ("RAM 2474/7772MB (lfb 903x4MB) CPU [3%@1190,2%@1190] GR3D_FREQ 0%@306 "
                 "VDD_IN 4970/4970 VDD_CPU_GPU_CV 1182/1182 VDD_SOC 1455/1455")


@pytest.mark.parametrize("line, expected", [
    (ORIN_NANO, {"VDD_IN": (5022, 5022), "VDD_CPU_GPU_CV": (1234, 1200), "VDD_SOC": (1500, 1490)}),
    (AGX_ORIN, {"VDD_GPU_SOC": (3182, 3182), "VDD_CPU_CV": (795, 795), "VIN_SYS_5V0": (3422, 3422),
                "VDDQ_VDD2_1V8AO": (604, 604)}),
    (NANO_JP4, {"POM_5V_IN": (3000, 3000), "POM_5V_GPU": (0, 0), "POM_5V_CPU": (440, 440)}),
    (XAVIER_NX_JP4, {"VDD_IN": (4970, 4970), "VDD_CPU_GPU_CV": (1182, 1182), "VDD_SOC": (1455, 1455)}),
    ("RAM 2210/7620MB SWAP 0/3810MB IRAM 0/252kB CPU [2%@729]", {}),  # memory figures are not rails
])
def test_rails_are_parsed_in_every_jetson_format(line: str, expected: dict[str, tuple[int, int]]) -> None:
    assert parse_rails(line) == expected


def test_the_rail_defaults_to_the_board_input_and_can_be_a_sum() -> None:
    assert choose_rail(list(parse_rails(ORIN_NANO))) == "VDD_IN"
    assert choose_rail(list(parse_rails(NANO_JP4))) == "POM_5V_IN"
    assert choose_rail(list(parse_rails(AGX_ORIN))) is None  # no single input rail: the device file names it
    agx = "VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0"
    assert choose_rail(list(parse_rails(AGX_ORIN)), agx) == agx
    assert rail_power_mw(parse_rails(AGX_ORIN), agx) == 3182 + 795 + 3422
    assert choose_rail(list(parse_rails(ORIN_NANO)), "VDD_GPU") is None
    assert rail_power_mw(parse_rails(ORIN_NANO), "VDD_SOC") == 1500.0  # the current value, not the average


def test_power_integration_is_exact_for_piecewise_linear_power() -> None:
    const = [(0.0, 5000.0), (1.0, 5000.0), (2.0, 5000.0)]
    assert energy_from_power_mj(const, [(0.0, 2.0)]) == pytest.approx(10000.0)  # 5 W for 2 s = 10 J
    ramp = [(0.0, 0.0), (0.4, 400.0), (1.0, 1000.0)]  # p = 1000 t mW
    # the integral of 1000 t over [0.2, 0.9] is 500 (0.81 - 0.04) = 385 mJ; windows between samples interpolate
    assert energy_from_power_mj(ramp, [(0.2, 0.9)]) == pytest.approx(385.0, rel=1e-12)
    assert energy_from_power_mj(ramp, [(0.1, 0.2), (0.5, 0.6)]) == pytest.approx(500 * (0.03 + 0.11), rel=1e-12)
    with pytest.raises(ValueError, match="outside"):
        energy_from_power_mj(ramp, [(0.5, 1.5)])  # no extrapolation past the last sample
    with pytest.raises(ValueError, match="increasing"):
        energy_from_power_mj([(0.0, 1.0)], [(0.0, 0.0)])
    with pytest.raises(ValueError, match="increasing"):
        energy_from_power_mj([(1.0, 1.0), (0.0, 1.0)], [(0.0, 0.0)])
    # two lines read in one burst share a time stamp: the later value stands
    assert energy_from_power_mj([(0.0, 0.0), (1.0, 7.0), (1.0, 1000.0), (2.0, 1000.0)],
                                [(0.0, 2.0)]) == pytest.approx(500.0 + 1000.0)


def test_counter_integration_and_a_counter_that_went_backwards() -> None:
    counter = [(10.0, 1000.0), (10.5, 1600.0), (11.0, 2000.0)]  # mJ since the driver loaded
    assert energy_from_counter_mj(counter, [(10.0, 11.0)]) == pytest.approx(1000.0)
    assert energy_from_counter_mj(counter, [(10.25, 10.75)]) == pytest.approx(1800.0 - 1300.0)
    with pytest.raises(ValueError, match="backwards"):
        energy_from_counter_mj([(0.0, 5.0), (1.0, 1.0)], [(0.0, 1.0)])


def test_mj_per_inference_from_recorded_tegrastats_text() -> None:
    """Recorded lines at 100 ms; two timed windows of 0.3 s each with 600 inferences in all."""
    powers = [5000, 5200, 5400, 5600, 5800, 6000, 6200, 6400, 6600, 6800, 7000]
    lines = [ORIN_NANO.replace("VDD_IN 5022mW/5022mW", f"VDD_IN {p}mW/5022mW") for p in powers]
    samples = [(0.1 * i, rail_power_mw(parse_rails(x), "VDD_IN") or 0.0) for i, x in enumerate(lines)]
    windows = [(0.1, 0.4), (0.6, 0.9)]
    e, why = energy_summary("tegrastats", "VDD_IN", samples, windows, 600)
    assert why is None and e is not None
    # p = 5000 + 2000 t mW: 0.3 s at the windows' mean powers 5500 and 6500 mW
    expected_mj = 0.3 * 5500 + 0.3 * 6500
    assert e["mj_per_inference"] == pytest.approx(expected_mj / 600, rel=1e-9)
    assert e["mean_power_mw"] == pytest.approx(6000.0, rel=1e-9)
    assert e["samples"] == 8 and e["window_s"] == pytest.approx(0.6)
    none, why = energy_summary("tegrastats", "VDD_IN", samples, [(0.12, 0.18)], 10)
    assert none is None and "0 tegrastats sample(s)" in (why or "") and "--min-duration-s" in (why or "")


def _fake_tegrastats(folder: Path, line: str, period_s: float = 0.02) -> None:
    script = folder / "tegrastats"
    script.write_text(f"#!/bin/sh\nwhile true; do echo '{line}'; sleep {period_s}; done\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def _target(work: int = 200) -> ProfileTarget:
    sess = FakeSession(work, "A")
    return ProfileTarget(None, "fake", SessionOptions(threads=1), {"x": np.zeros((1, 4), np.float32)},
                         label="A", session_factory=lambda: sess)


CFG = MeasureConfig(warmup_s=0.0, warmup_iters=2, sessions=3, iterations=20, min_duration_s=0.6,
                    power_interval_s=0.1)


def test_profile_on_a_jetson_reports_energy_from_tegrastats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tegrastats on PATH printing a constant 6000 mW VDD_IN: the report's mean power is 6000 mW and the
    energy per inference is that power times the timed seconds over the inferences."""
    line = ORIN_NANO.replace("VDD_IN 5022mW/5022mW", "VDD_IN 6000mW/6000mW")
    _fake_tegrastats(tmp_path, line)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    [rep] = profile_artifacts([_target()], CFG, progress=False)
    e = rep.data["energy"]
    assert e is not None and rep.data["energy_unavailable"] is None, rep.data["energy_unavailable"]
    assert (e["source"], e["rail"], e["method"]) == ("tegrastats", "VDD_IN", "integrated power samples")
    assert e["mean_power_mw"] == pytest.approx(6000.0, rel=1e-9) and e["samples"] >= 2
    n = int(rep.samples.size)
    assert e["mj_per_inference"] == pytest.approx(6000.0 * e["window_s"] / n, rel=1e-9)
    assert e["window_s"] == pytest.approx(float(rep.samples.sum()) / 1000.0, rel=0.5)  # the timed sessions only
    from edgekd.profile.document import ProfileDocument
    from edgekd.profile.report import render_markdown

    rep.save(tmp_path / "p.json")
    doc = ProfileDocument.model_validate_json((tmp_path / "p.json").read_text())
    assert doc.energy is not None and doc.energy.mj_per_inference == pytest.approx(e["mj_per_inference"])
    assert "mJ/inference" in render_markdown(rep) and "VDD_IN" in render_markdown(rep)


def test_without_a_power_source_the_report_says_null_and_why(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no tegrastats
    monkeypatch.setitem(sys.modules, "pynvml", None)  # and no nvidia-ml-py: import fails
    [rep] = profile_artifacts([_target()], MeasureConfig(warmup_s=0.0, warmup_iters=1, sessions=2, iterations=5,
                                                         min_duration_s=0.0), progress=False)
    assert rep.data["energy"] is None
    assert "edgekd[nvml]" in rep.data["energy_unavailable"]
    from edgekd.profile.report import render_markdown

    assert "Energy: not measured" in render_markdown(rep)


def _fake_nvml(counter: bool) -> types.ModuleType:
    """An NVML with a GPU at a constant 250 W: its energy counter (mJ) or only its power reading (mW)."""
    import time

    nv = types.ModuleType("pynvml")
    t0 = time.monotonic()

    class NVMLError_NotSupported(Exception):  # noqa: N801  (pynvml's name)
        pass

    def total_energy(_: object) -> int:
        if not counter:
            raise NVMLError_NotSupported("Not Supported")
        return int(250_000 * (time.monotonic() - t0))  # 250 W = 250000 mJ/s

    nv.nvmlInit = lambda: None  # type: ignore[attr-defined]
    nv.nvmlDeviceGetHandleByIndex = lambda i: "gpu0"  # type: ignore[attr-defined]
    nv.nvmlDeviceGetTotalEnergyConsumption = total_energy  # type: ignore[attr-defined]
    nv.nvmlDeviceGetPowerUsage = lambda h: 250_000  # type: ignore[attr-defined]
    return nv


@pytest.mark.parametrize("counter", [True, False])
def test_nvml_energy_counter_or_power_samples(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              counter: bool) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(counter))
    sampler = PowerSampler(interval_s=0.02).start()
    import time

    t0 = time.monotonic()
    time.sleep(0.3)
    window = (t0, time.monotonic())
    log = sampler.stop()
    assert log.source == "nvml" and log.counter is counter and len(log.samples) >= 5
    e, why = energy_summary(log.source, log.rail or "", log.samples, [window], 100, counter=log.counter)
    assert why is None and e is not None
    # the counter is truncated to whole mJ: within 1 % of 250 W either way
    assert e["mean_power_mw"] == pytest.approx(250_000, rel=0.01)
    assert e["mj_per_inference"] == pytest.approx(250.0 * (window[1] - window[0]) * 1000 / 100, rel=0.01)
    assert sampler.stop() is log  # stopping twice is harmless


def test_tegrastats_without_the_wanted_rail_says_which_rails_it_has(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_tegrastats(tmp_path, AGX_ORIN)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    log = PowerSampler(interval_s=0.1).start().stop()
    assert log.samples == [] and "VDD_GPU_SOC" in (log.unavailable or "") and "power_rail" in (log.unavailable or "")
    log = PowerSampler(interval_s=0.1, rail="VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0").start().stop()
    assert log.unavailable is None and log.samples and {p for _, p in log.samples} == {3182 + 795 + 3422}


def test_device_files_validate_power_rail() -> None:
    from edgekd.config.device import load_device
    from edgekd.errors import ConfigError

    assert load_device("jetson-agx-orin").power_rail == "VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0"
    assert load_device("jetson-orin-nano").power_rail is None  # VDD_IN, the default
    with pytest.raises(ConfigError, match="power_rail"):
        load_device("jetson-orin-nano", ["power_rail=vdd in"])


def test_reports_asked_inside_the_run_stop_the_sampler_and_keep_the_figure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate asks for reports before leaving the run: the sampler stops there (the timed sessions are over),
    so the last window is bracketed by a sample and the figure stands."""
    from edgekd.profile.protocol import InterleavedRun

    _fake_tegrastats(tmp_path, NANO_JP4)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with InterleavedRun([_target()], CFG, progress=False) as run:
        run.run_rounds(CFG.sessions)
        [rep] = run.reports()
        assert run._power is None  # stopped, nothing left running
    e = rep.data["energy"]
    assert e is not None, rep.data["energy_unavailable"]
    assert e["rail"] == "POM_5V_IN" and e["mean_power_mw"] == pytest.approx(3000.0)


def test_edgekd_profile_on_a_jetson_prints_and_writes_the_energy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """`edgekd profile --device jetson-orin-nano` as a user runs it, with a recorded Orin Nano line on tegrastats."""
    import json

    from support.profile_helpers import make_cnn

    from edgekd.cli import main

    _fake_tegrastats(tmp_path, ORIN_NANO)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    m = make_cnn(tmp_path / "m.onnx")
    out = tmp_path / "p.json"
    assert main(["profile", str(m), "--device", "jetson-orin-nano", "--runtime", "onnxruntime", "--input",
                 "x=1x3x16x16", "--threads", "1", "--sessions", "3", "--iterations", "20", "--min-duration-s", "0.6",
                 "--markdown", "--out", str(out)]) in (0, 3)
    printed = capsys.readouterr().out
    e = json.loads(out.read_text())["energy"]
    assert e["rail"] == "VDD_IN" and e["mean_power_mw"] == pytest.approx(5022.0)
    assert "mJ/inference (mean 5022 mW on VDD_IN, tegrastats)" in printed
    assert "mJ/inference" in out.with_suffix(".md").read_text()
