"""Sensors sampled in a background thread while a profile runs, and the validity verdict.

Sources (each listed as absent where the platform lacks it, never guessed):
- Linux thermal zones: /sys/class/thermal/thermal_zone*/temp, with their passive/critical trip points;
- CPU frequency: /sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq;
- Raspberry Pi: ``vcgencmd get_throttled`` (bit 0 under-voltage, 1 frequency capped, 2 throttled,
  3 soft temperature limit; bits 16-19 the same "has occurred since boot") and ``vcgencmd measure_temp``;
- Jetson: ``tegrastats`` (RAM, CPU/GPU clocks, temperatures, power per rail), one line per interval;
- NVIDIA GPUs: NVML (SM clock, power, clocks-event/throttle reasons).

- CPU contention (Linux): ``procs_running`` of /proc/stat, the number of runnable threads system-wide, against
  the CPUs this process may use. It is reported, and flags the run ``contended`` when the sampled
  count, less the sampler's own thread, exceeds those CPUs on average (other processes then take CPU
  time from the timed loop, as on a CI runner or a host shared by several developers); it does not by
  itself make the run invalid.

A run is invalid when the board throttled (Pi register, NVML thermal/power/hardware slowdown reasons,
a thermal zone above its passive trip point) or when the CPU/GPU clock drifted by more than
``drift_threshold`` (relative range of the sampled clock).
"""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

THERMAL_GLOB = "/sys/class/thermal/thermal_zone*"
CPUFREQ_GLOB = "/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq"
PI_THROTTLE_BITS = {0: "under-voltage", 1: "ARM frequency capped", 2: "throttled", 3: "soft temperature limit"}
# NVML clocks-event reasons that mean the GPU was slowed by something other than idleness or the
# application's own clock setting (nvml.h: SW power cap 0x4, HW slowdown 0x8, SW thermal 0x20,
# HW thermal 0x40, HW power brake 0x80).
NVML_BAD_REASONS = {0x4: "SW power cap", 0x8: "HW slowdown", 0x20: "SW thermal slowdown",
                    0x40: "HW thermal slowdown", 0x80: "HW power brake"}


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def thermal_zones() -> list[dict[str, Any]]:
    zones = []
    for z in sorted(glob.glob(THERMAL_GLOB)):
        t = _read(f"{z}/temp")
        if t is None or not t.lstrip("-").isdigit():
            continue
        passive = None
        for tp in glob.glob(f"{z}/trip_point_*_type"):
            if _read(tp) in ("passive", "hot"):
                v = _read(tp.replace("_type", "_temp"))
                if v and v.lstrip("-").isdigit() and int(v) > 0:
                    passive = int(v) / 1000.0 if passive is None else min(passive, int(v) / 1000.0)
        zones.append({"zone": Path(z).name, "type": _read(f"{z}/type"), "temp_c": int(t) / 1000.0,
                      "passive_c": passive})
    return zones


def cpu_freqs_mhz() -> list[float]:
    out = []
    for f in sorted(glob.glob(CPUFREQ_GLOB)):
        v = _read(f)
        if v and v.isdigit():
            out.append(int(v) / 1000.0)
    return out


def procs_running() -> int | None:
    """Runnable threads on the whole machine right now (/proc/stat), or None off Linux."""
    text = _read("/proc/stat")
    if text is None:
        return None
    m = re.search(r"^procs_running\s+(\d+)", text, re.MULTILINE)
    return int(m.group(1)) if m else None


def usable_cpus() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def contention_summary(running: list[int], cpus: int) -> dict[str, Any]:
    """Runnable threads besides the sampler (``running - 1``) against ``cpus``; contended when the mean
    exceeds the CPUs (threads then wait for a CPU, the timed loop included)."""
    others = [max(r - 1, 0) for r in running]
    mean = sum(others) / len(others)
    return {"runnable_threads_mean": mean, "runnable_threads_max": max(others), "cpus": cpus,
            "oversubscribed_share": sum(o > cpus for o in others) / len(others), "contended": mean > cpus}


def _run(cmd: list[str], timeout: float = 3.0) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def pi_throttled() -> int | None:
    out = _run(["vcgencmd", "get_throttled"])
    m = re.search(r"throttled=(0x[0-9a-fA-F]+)", out or "")
    return int(m.group(1), 16) if m else None


def pi_temp_c() -> float | None:
    m = re.search(r"temp=([0-9.]+)", _run(["vcgencmd", "measure_temp"]) or "")
    return float(m.group(1)) if m else None


def decode_pi_throttled(value: int) -> dict[str, list[str]]:
    now = [name for bit, name in PI_THROTTLE_BITS.items() if value & (1 << bit)]
    since = [name for bit, name in PI_THROTTLE_BITS.items() if value & (1 << (bit + 16))]
    return {"now": now, "since_boot": since}


def parse_tegrastats(line: str) -> dict[str, Any]:
    """One tegrastats line -> RAM, GPU clock (GR3D_FREQ), temperatures and rail power (mW)."""
    d: dict[str, Any] = {}
    m = re.search(r"RAM (\d+)/(\d+)MB", line)
    if m:
        d["ram_used_mb"], d["ram_total_mb"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"GR3D_FREQ (\d+)%(?:@\[?(\d+))?", line)
    if m:
        d["gpu_util_pct"] = int(m.group(1))
        if m.group(2):
            d["gpu_mhz"] = int(m.group(2))
    d["temps_c"] = {k: float(v) for k, v in re.findall(r"(\w+)@(-?[0-9.]+)C", line)}
    d["power_mw"] = {k: int(v) for k, v in re.findall(r"(\w+) (\d+)mW/\d+mW", line)}
    return d


class _Nvml:
    def __init__(self) -> None:
        self.h: Any = None
        try:
            import pynvml  # type: ignore[import-not-found]

            pynvml.nvmlInit()
            self.nv = pynvml
            self.h = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:
            self.h = None

    def sample(self) -> dict[str, Any] | None:
        if self.h is None:
            return None
        nv, h = self.nv, self.h
        d: dict[str, Any] = {}
        for key, fn in (("sm_mhz", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
                        ("power_w", lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000.0),
                        ("temp_c", lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
                        ("reasons", lambda: nv.nvmlDeviceGetCurrentClocksThrottleReasons(h))):
            try:
                d[key] = fn()
            except Exception:
                d[key] = None
        return d


@dataclass
class SensorLog:
    interval_s: float
    samples: list[dict[str, Any]] = field(default_factory=list)
    present: dict[str, bool] = field(default_factory=dict)
    pi_start: int | None = None
    pi_end: int | None = None
    tegrastats_lines: list[str] = field(default_factory=list)

    def verdict(self, drift_threshold: float = 0.10) -> tuple[list[str], dict[str, Any]]:
        """(invalid reasons, summary for the report)."""
        reasons: list[str] = []
        summary: dict[str, Any] = {"present": dict(self.present),
                                   "absent": sorted(k for k, v in self.present.items() if not v),
                                   "n_samples": len(self.samples), "interval_s": self.interval_s}
        freqs = [s["cpu_mhz_mean"] for s in self.samples if s.get("cpu_mhz_mean")]
        if freqs:
            drift = (max(freqs) - min(freqs)) / max(freqs)
            summary["cpu_mhz"] = {"min": min(freqs), "max": max(freqs), "drift": drift}
            if drift > drift_threshold:
                reasons.append(f"CPU clock drifted by {drift:.0%} during the run "
                               f"({min(freqs):.0f}-{max(freqs):.0f} MHz; threshold {drift_threshold:.0%})")
        temps: dict[str, list[float]] = {}
        for s in self.samples:
            for z in s.get("thermal", []):
                temps.setdefault(z["zone"], []).append(z["temp_c"])
                if z["passive_c"] is not None and z["temp_c"] >= z["passive_c"]:
                    msg = f"thermal zone {z['zone']} ({z['type']}) reached its passive trip point {z['passive_c']:.0f} C"
                    if msg not in reasons:
                        reasons.append(msg)
        if temps:
            summary["thermal_max_c"] = {k: max(v) for k, v in temps.items()}
        running = [s["procs_running"] for s in self.samples if s.get("procs_running") is not None]
        if running:
            summary["cpu_contention"] = contention_summary(running, usable_cpus())
        if self.present.get("vcgencmd"):
            vals = [s["pi_throttled"] for s in self.samples if s.get("pi_throttled") is not None]
            now_bits = 0
            for v in vals:
                now_bits |= v & 0xF
            summary["pi_throttled"] = [hex(v) for v in sorted(set(vals))]
            if now_bits:
                reasons.append("Raspberry Pi throttling register reported "
                               + ", ".join(decode_pi_throttled(now_bits)["now"]) + " during the run")
            if self.pi_start is not None and self.pi_end is not None and (self.pi_end & ~self.pi_start) & 0xF0000:
                reasons.append("Raspberry Pi throttling occurred during the run (sticky bits "
                               f"{hex(self.pi_start)} -> {hex(self.pi_end)})")
            pt = [s["pi_temp_c"] for s in self.samples if s.get("pi_temp_c") is not None]
            if pt:
                summary["pi_temp_c_max"] = max(pt)
        gpu = [s["nvml"] for s in self.samples if s.get("nvml")]
        if gpu:
            clocks = [g["sm_mhz"] for g in gpu if g.get("sm_mhz")]
            if clocks:
                drift = (max(clocks) - min(clocks)) / max(clocks)
                summary["gpu_sm_mhz"] = {"min": min(clocks), "max": max(clocks), "drift": drift}
                if drift > drift_threshold:
                    reasons.append(f"GPU SM clock drifted by {drift:.0%} ({min(clocks)}-{max(clocks)} MHz)")
            bad = 0
            for g in gpu:
                bad |= (g.get("reasons") or 0)
            names = [n for bit, n in NVML_BAD_REASONS.items() if bad & bit]
            if names:
                reasons.append("GPU clocks were limited during the run: " + ", ".join(names))
            pw = [g["power_w"] for g in gpu if g.get("power_w") is not None]
            if pw:
                summary["gpu_power_w"] = {"mean": sum(pw) / len(pw), "max": max(pw)}
        if self.tegrastats_lines:
            parsed = [parse_tegrastats(x) for x in self.tegrastats_lines]
            g = [p["gpu_mhz"] for p in parsed if p.get("gpu_mhz")]
            if g:
                drift = (max(g) - min(g)) / max(g)
                summary["jetson_gpu_mhz"] = {"min": min(g), "max": max(g), "drift": drift}
                if drift > drift_threshold:
                    reasons.append(f"Jetson GPU clock drifted by {drift:.0%} ({min(g)}-{max(g)} MHz); "
                                   "lock clocks with `sudo jetson_clocks`")
            summary["jetson_power_mw_last"] = parsed[-1].get("power_mw", {})
            summary["jetson_temps_c_max"] = {k: max(p["temps_c"].get(k, float("-inf")) for p in parsed)
                                             for k in parsed[-1].get("temps_c", {})}
        return reasons, summary


class SensorSampler:
    """``with SensorSampler(0.5) as s: ...`` then ``s.log.verdict()``."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.log = SensorLog(interval_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tegra: subprocess.Popen[str] | None = None
        self._nvml: _Nvml | None = None

    def _sample(self) -> dict[str, Any]:
        s: dict[str, Any] = {"t": time.monotonic()}
        if self.log.present.get("thermal_zones"):
            s["thermal"] = thermal_zones()
        if self.log.present.get("cpufreq"):
            f = cpu_freqs_mhz()
            s["cpu_mhz_mean"] = sum(f) / len(f) if f else None
        if self.log.present.get("proc_stat"):
            s["procs_running"] = procs_running()
        if self.log.present.get("vcgencmd"):
            s["pi_throttled"] = pi_throttled()
            s["pi_temp_c"] = pi_temp_c()
        if self._nvml is not None and self._nvml.h is not None:
            s["nvml"] = self._nvml.sample()
        return s

    def __enter__(self) -> SensorSampler:
        p = self.log.present
        p["thermal_zones"] = bool(thermal_zones())
        p["cpufreq"] = bool(cpu_freqs_mhz())
        p["proc_stat"] = procs_running() is not None
        p["vcgencmd"] = pi_throttled() is not None
        self._nvml = _Nvml()
        p["nvml"] = self._nvml.h is not None
        p["tegrastats"] = shutil.which("tegrastats") is not None
        if p["vcgencmd"]:
            self.log.pi_start = pi_throttled()
        if p["tegrastats"]:
            try:
                self._tegra = subprocess.Popen(
                    ["tegrastats", "--interval", str(max(100, int(self.log.interval_s * 1000)))],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                threading.Thread(target=self._read_tegra, daemon=True).start()
            except OSError:
                p["tegrastats"] = False
        self.log.samples.append(self._sample())
        self._thread = threading.Thread(target=self._loop, daemon=True, name="edgekd-sensors")
        self._thread.start()
        return self

    def _read_tegra(self) -> None:
        if self._tegra is None or self._tegra.stdout is None:
            return
        for line in self._tegra.stdout:
            self.log.tegrastats_lines.append(line.strip())

    def _loop(self) -> None:
        # The sampler sleeps between samples, so it takes a little CPU: ~1 file read per zone per interval.
        while not self._stop.wait(self.log.interval_s):
            self.log.samples.append(self._sample())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.log.samples.append(self._sample())
        if self.log.present.get("vcgencmd"):
            self.log.pi_end = pi_throttled()
        if self._tegra is not None:
            self._tegra.terminate()
            try:
                self._tegra.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self._tegra.kill()
