"""``edgekd doctor``: what edgekd will rely on here, and what is wrong, each with the command that fixes it.

Statuses: ``ok``, ``warn`` (works, but measurements may suffer), ``fail`` (edgekd cannot do its job or the
board is not the chosen device), ``not present`` (the platform has no such thing: a Jetson check on a
desktop). Ready = no ``fail``; a machine busy with other work (more runnable threads than CPUs) is not ready.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import asdict, dataclass
from typing import Any

OK, WARN, FAIL, ABSENT = "ok", "warn", "fail", "not present"

# edgekd runtime name -> (Python distribution(s) providing it, extra)
RUNTIME_PACKAGES = {"onnxruntime": (("onnxruntime", "onnxruntime-gpu"), None), "openvino": (("openvino",), "openvino"),
                    "tensorrt": (("tensorrt",), "tensorrt"), "torch": (("torch",), None),
                    "litert": (("ai-edge-litert",), "litert")}


@dataclass
class Finding:
    check: str
    status: str
    detail: str
    fix: str = ""


def _version(dists: tuple[str, ...]) -> str | None:
    for d in dists:
        try:
            return importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def check_runtimes(required: set[str], listed: set[str]) -> list[Finding]:
    from edgekd.runtime import _BACKENDS

    out = []
    for name, (dists, extra) in RUNTIME_PACKAGES.items():
        ver = _version(dists)
        importable = ver is not None and importlib.util.find_spec(dists[0].replace("-", "_").split("_gpu")[0]) is not None
        backend = importlib.util.find_spec(_BACKENDS[name]) is not None
        if importable and backend:
            status, detail = OK, f"{name} {ver} (edgekd backend {_BACKENDS[name]})"
            usable, why = _available(name)
            if not usable:
                status, detail = (FAIL if name in required else WARN), f"{name} {ver} installed but unusable: {why}"
        elif importable:
            status = FAIL if name in required else WARN
            detail = f"{name} {ver} importable, but edgekd's backend module {_BACKENDS[name]} is missing"
        else:
            status = FAIL if name in required else (WARN if name in listed else ABSENT)
            detail = f"{name}: Python package {dists[0]!r} not installed"
        if name == "onnxruntime" and importable:
            try:
                import onnxruntime as ort

                detail += "; providers: " + ", ".join(ort.get_available_providers())
            except Exception as exc:  # a broken install
                status, detail = FAIL, f"onnxruntime does not import: {exc}"
        if name == "openvino" and importable and status == OK:
            try:
                import openvino as ov

                detail += "; devices: " + ", ".join(ov.Core().available_devices)
            except Exception as exc:
                status, detail = WARN, f"{detail}; OpenVINO Core failed: {exc}"
        if status in (OK, ABSENT):
            fix = ""
        elif not importable:
            fix = f"pip install 'edgekd[{extra}]'" if extra else f"pip install {dists[0]}"
        elif not backend:
            fix = f"update edgekd: this install lacks {_BACKENDS[name]} (pip install -U edgekd)"
        else:
            fix = "see the detail: check the runtime's drivers/devices"
        out.append(Finding(f"runtime {name}", status, detail, fix))
    return out


def _available(name: str) -> tuple[bool, str]:
    try:
        from edgekd.runtime import get_runtime

        return get_runtime(name).available()
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"


def check_cpu(fp: dict[str, Any]) -> list[Finding]:
    out = []
    gov = fp["cpu"].get("governor")
    if gov is None:
        out.append(Finding("cpu governor", ABSENT, "no cpufreq in /sys (VM or fixed clocks); clock drift is "
                           "not observable here"))
    elif set(gov.split(",")) == {"performance"}:
        out.append(Finding("cpu governor", OK, "performance"))
    else:
        out.append(Finding("cpu governor", WARN, f"{gov}: clocks scale with load, latency drifts",
                           "sudo cpupower frequency-set -g performance  (or: echo performance | sudo tee "
                           "/sys/devices/system/cpu/cpu*/cpufreq/scaling_governor)"))
    aff, cores = fp["cpu"]["affinity_count"], fp["cpu"]["logical_cores"]
    out.append(Finding("cpu affinity", OK if aff == cores else WARN,
                       f"{aff} of {cores} logical cores usable by this process ({fp['cpu']['model']})",
                       "" if aff == cores else "run without taskset/cgroup limits, or set --threads to the usable cores"))
    return out


def check_jetson(fp: dict[str, Any]) -> list[Finding]:
    j = fp["jetson"]
    if not j.get("present"):
        return [Finding("jetson power mode", ABSENT, "not a Jetson (no /etc/nv_tegra_release, no nvpmodel)"),
                Finding("jetson clocks locked", ABSENT, "not a Jetson")]
    pm = j.get("power_mode")
    out = [Finding("jetson power mode", OK if pm is not None else WARN,
                   f"nvpmodel mode {pm}" if pm is not None else "nvpmodel -q gave no mode",
                   "" if pm is not None else "sudo nvpmodel -m 0  (maximum performance mode)")]
    lk = j.get("clocks_locked")
    if lk is True:
        out.append(Finding("jetson clocks locked", OK, "jetson_clocks: min = max = current"))
    elif lk is False:
        out.append(Finding("jetson clocks locked", WARN, "clocks float: latency depends on DVFS", "sudo jetson_clocks"))
    else:
        out.append(Finding("jetson clocks locked", WARN, "jetson_clocks --show needs root", "sudo jetson_clocks --show"))
    return out


def check_pi() -> list[Finding]:
    from edgekd.profile.sensors import decode_pi_throttled, pi_temp_c, pi_throttled

    v = pi_throttled()
    if v is None:
        return [Finding("raspberry pi throttling", ABSENT, "no vcgencmd (not a Raspberry Pi)"),
                Finding("raspberry pi temperature", ABSENT, "no vcgencmd")]
    d = decode_pi_throttled(v)
    if d["now"]:
        f = Finding("raspberry pi throttling", FAIL, f"get_throttled={hex(v)}: now {', '.join(d['now'])}",
                    "use the official 5V power supply (27 W on a Pi 5) and a heatsink/fan; then `vcgencmd get_throttled`")
    elif d["since_boot"]:
        f = Finding("raspberry pi throttling", WARN, f"get_throttled={hex(v)}: since boot {', '.join(d['since_boot'])}",
                    "check the power supply and cooling; reboot clears the sticky bits")
    else:
        f = Finding("raspberry pi throttling", OK, f"get_throttled={hex(v)}")
    t = pi_temp_c()
    tf = Finding("raspberry pi temperature", ABSENT, "measure_temp gave nothing") if t is None else Finding(
        "raspberry pi temperature", OK if t < 75 else WARN, f"{t:.1f} C",
        "" if t < 75 else "add cooling: the SoC soft-throttles at 80 C")
    return [f, tf]


def check_gpu(fp: dict[str, Any], need_gpu: bool) -> list[Finding]:
    g = fp["gpu"]
    have_pynvml = importlib.util.find_spec("pynvml") is not None
    if g.get("present"):
        out = [Finding("gpu", OK, f"{g['name']}, driver {g['driver']}, CUDA {g.get('cuda')} (via {g['source']})")]
        out.append(Finding("nvml", OK if g["source"] == "nvml" else WARN,
                           "pynvml works: clocks, power and throttle reasons are sampled" if g["source"] == "nvml"
                           else "nvidia-smi only: no clock/throttle sampling during runs",
                           "" if g["source"] == "nvml" else "pip install 'edgekd[nvml]'"))
        return out
    if fp["jetson"].get("present"):
        return [Finding("nvml", ABSENT, "Jetson: no NVML; tegrastats is used instead")]
    return [Finding("gpu", FAIL if need_gpu else ABSENT, "no NVIDIA GPU found (NVML/nvidia-smi)",
                    "install the NVIDIA driver, or pick a CPU device profile" if need_gpu else ""),
            Finding("nvml", ABSENT, "pynvml installed, no GPU" if have_pynvml else "no NVML (pynvml not installed, no GPU)")]


def check_memory(fp: dict[str, Any]) -> Finding:
    av = fp["memory"].get("available_mb")
    if av is None:
        return Finding("free memory", ABSENT, "/proc/meminfo not readable")
    st = OK if av >= 1024 else (WARN if av >= 400 else FAIL)
    return Finding("free memory", st, f"{av:.0f} MB available of {fp['memory'].get('total_mb') or 0:.0f} MB",
                   "" if st == OK else "close other programs; profile with fewer targets at once")


def sample_runnable(n: int = 10, interval_s: float = 0.1) -> list[int]:
    """``procs_running`` sampled ``n`` times over about a second (empty off Linux)."""
    import time

    from edgekd.profile.sensors import procs_running

    out = []
    for _ in range(n):
        r = procs_running()
        if r is None:
            return []
        out.append(r)
        time.sleep(interval_s)
    return out


def check_load(running: list[int], cpus: int) -> Finding:
    """Other work on the CPUs: more runnable threads than CPUs means every timed loop waits for a CPU, so a
    measurement now would be contended (the profiler flags such runs): not ready."""
    if not running:
        return Finding("cpu load", ABSENT, "no /proc/stat: runnable threads cannot be counted here")
    from edgekd.profile.sensors import contention_summary

    c = contention_summary(running, cpus)
    detail = (f"{c['runnable_threads_mean']:.1f} runnable threads on average (max {c['runnable_threads_max']}) "
              f"for {cpus} CPU(s)")
    if c["contended"]:
        return Finding("cpu load", FAIL, detail + ": measurements now would be contended",
                       "stop other jobs (see `top`), then run `edgekd doctor` again")
    if c["runnable_threads_mean"] > cpus / 2:
        return Finding("cpu load", WARN, detail + ": other work may disturb measurements",
                       "profile when the machine is idle")
    return Finding("cpu load", OK, detail)


def check_board(fp: dict[str, Any], device: Any) -> Finding:
    f = device.fingerprint
    problems = []
    if f.arch != "any" and fp["arch"] != f.arch:
        problems.append(f"arch {fp['arch']} != {f.arch}")
    if f.cpu_model_contains:
        hay = " ".join(str(x) for x in (fp["cpu"]["model"], fp["raspberry_pi"].get("model")))
        if not any(s.lower() in hay.lower() for s in f.cpu_model_contains):
            problems.append(f"CPU {fp['cpu']['model']!r} matches none of {f.cpu_model_contains}")
    if f.min_cores and (fp["cpu"]["logical_cores"] or 0) < f.min_cores:
        problems.append(f"{fp['cpu']['logical_cores']} cores < {f.min_cores}")
    if f.gpu and f.gpu.lower() not in str(fp["gpu"].get("name", "")).lower() and not (
            f.jetson and fp["jetson"].get("present")):
        problems.append(f"GPU {fp['gpu'].get('name', 'none')!r} is not a {f.gpu!r}")
    if f.jetson and not fp["jetson"].get("present"):
        problems.append("not a Jetson")
    if f.raspberry_pi and not fp["raspberry_pi"].get("present"):
        problems.append("not a Raspberry Pi")
    if problems:
        return Finding(f"board matches {device.name}", FAIL, "; ".join(problems),
                       "pick the device profile of this board (`edgekd devices`), e.g. --device host-cpu")
    return Finding(f"board matches {device.name}", OK, "fingerprint matches the device profile")


def check_emulation(fp: dict[str, Any]) -> Finding:
    """Under an emulator (qemu-user on a foreign CPU) everything works but latency means nothing."""
    emu = fp.get("emulation") or {}
    if not emu.get("emulated"):
        return Finding("emulation", OK, f"native ({emu.get('kind', 'none')})")
    return Finding("emulation", WARN, f"emulated ({emu.get('kind')}): " + "; ".join(emu.get("evidence") or []),
                   "profiles taken here are marked INVALID: measure latency on the real board")


def run_doctor(device_name: str | None = None) -> tuple[bool, list[Finding]]:
    from edgekd.profile.fingerprint import collect_fingerprint
    from edgekd.profile.sensors import cpu_freqs_mhz, thermal_zones

    device = None
    if device_name:
        from edgekd.config.device import load_device

        device = load_device(device_name)
    fp = collect_fingerprint()
    listed = set(device.runtime_names()) if device else {"onnxruntime"}
    required: set[str] = {str(b.runtime) for b in device.budgets.values()} if device else {"onnxruntime"}
    findings = check_runtimes(required, listed)
    findings += check_cpu(fp)
    findings += check_jetson(fp)
    findings += check_pi()
    findings += check_gpu(fp, need_gpu=bool(device and device.family in ("gpu", "jetson")))
    findings.append(check_memory(fp))
    from edgekd.profile.sensors import usable_cpus

    findings.append(check_load(sample_runnable(), usable_cpus()))
    findings.append(check_emulation(fp))
    tz = thermal_zones()
    findings.append(Finding("thermal sensors", OK if tz else ABSENT,
                            f"{len(tz)} thermal zones" if tz else "no /sys/class/thermal zones: throttling by "
                            "temperature cannot be detected here"))
    findings.append(Finding("cpu frequency sensor", OK if cpu_freqs_mhz() else ABSENT,
                            "scaling_cur_freq readable" if cpu_freqs_mhz() else "no scaling_cur_freq: clock drift "
                            "cannot be detected here"))
    if device is not None:
        findings.append(check_board(fp, device))
    return all(f.status != FAIL for f in findings), findings


def findings_json(ready: bool, findings: list[Finding]) -> dict[str, Any]:
    return {"schema": "edgekd.doctor/1", "ready": ready, "findings": [asdict(f) for f in findings]}
