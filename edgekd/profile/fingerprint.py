"""The device fingerprint recorded in every profile report, and its comparison.

A stored baseline is comparable with a new measurement only when both were taken on the same kind of
machine with the same software settings; :func:`fingerprints_match` says which fields differ.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
from pathlib import Path
from typing import Any

from edgekd.profile.emulation import detect_emulation
from edgekd.profile.sensors import _read, _run

# Fields that must be equal for two measurements to be compared (dotted paths into the fingerprint).
MATCH_FIELDS = (
    "arch", "cpu.model", "cpu.logical_cores", "cpu.governor", "cpu.affinity_count",
    "gpu.name", "gpu.driver", "jetson.power_mode", "jetson.clocks_locked", "raspberry_pi.model",
    "runtime.name", "runtime.version", "runtime.threads", "runtime.providers", "runtime.precision",
    "runtime.device",
)


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if m:
            return m.group(1).strip()
    return platform.processor() or platform.machine()


def cpu_governors() -> list[str]:
    govs = set()
    for cpu in sorted(Path("/sys/devices/system/cpu").glob("cpu[0-9]*")):
        g = _read(str(cpu / "cpufreq" / "scaling_governor"))
        if g:
            govs.add(g)
    return sorted(govs)


def memory_mb() -> dict[str, float | None]:
    text = _read("/proc/meminfo") or ""

    def kb(key: str) -> float | None:
        m = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
        return int(m.group(1)) / 1024.0 if m else None

    return {"total_mb": kb("MemTotal"), "available_mb": kb("MemAvailable")}


def jetson_info() -> dict[str, Any]:
    """Power mode (nvpmodel -q) and whether clocks are locked (jetson_clocks --show), or present=False."""
    release = _read("/etc/nv_tegra_release")
    present = release is not None or shutil.which("nvpmodel") is not None
    if not present:
        return {"present": False}
    d: dict[str, Any] = {"present": True, "l4t": release.splitlines()[0] if release else None}
    q = _run(["nvpmodel", "-q"])
    m = re.search(r"NV Power Mode:\s*(\S+)", q or "")
    d["power_mode"] = m.group(1) if m else None
    show = _run(["jetson_clocks", "--show"])
    if show is None:
        d["clocks_locked"] = None  # needs root on most images
    else:
        # Locked clocks show MinFreq == MaxFreq == CurrentFreq for the CPUs and the GPU.
        rows = re.findall(r"MinFreq=(\d+) MaxFreq=(\d+) CurrentFreq=(\d+)", show)
        d["clocks_locked"] = bool(rows) and all(a == b == c for a, b, c in rows)
    return d


def raspberry_pi_info() -> dict[str, Any]:
    model = _read("/proc/device-tree/model")
    model = model.rstrip("\x00") if model else None
    if not model or "Raspberry Pi" not in model:
        return {"present": False}
    return {"present": True, "model": model}


def gpu_info() -> dict[str, Any]:
    """GPU name, driver and CUDA version via NVML (pynvml) or nvidia-smi; present=False otherwise."""
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(h)
        drv = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()
        return {"present": True, "source": "nvml", "name": name if isinstance(name, str) else name.decode(),
                "driver": drv if isinstance(drv, str) else drv.decode(),
                "cuda": f"{cuda // 1000}.{(cuda % 1000) // 10}", "count": pynvml.nvmlDeviceGetCount()}
    except Exception:
        pass
    out = _run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"])
    if out:
        name, _, drv = out.splitlines()[0].partition(",")
        smi = _run(["nvidia-smi"]) or ""
        m = re.search(r"CUDA Version:\s*([0-9.]+)", smi)
        return {"present": True, "source": "nvidia-smi", "name": name.strip(), "driver": drv.strip(),
                "cuda": m.group(1) if m else None, "count": len(out.splitlines())}
    return {"present": False}


def collect_fingerprint(runtime_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        affinity = list(range(os.cpu_count() or 1))
    govs = cpu_governors()
    fp: dict[str, Any] = {
        "hostname": platform.node(),
        "arch": platform.machine(),
        "os": platform.system(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cpu": {"model": cpu_model(), "logical_cores": os.cpu_count(), "affinity": affinity,
                "affinity_count": len(affinity), "governor": ",".join(govs) if govs else None},
        "memory": memory_mb(),
        "gpu": gpu_info(),
        "jetson": jetson_info(),
        "raspberry_pi": raspberry_pi_info(),
        # a latency measured under QEMU is not the board's: the report must say so
        "emulation": detect_emulation().as_dict(),
    }
    if runtime_settings is not None:
        rs = dict(runtime_settings)
        if isinstance(rs.get("providers"), (list, tuple)):
            rs["providers"] = list(rs["providers"])
        fp["runtime"] = rs
    return fp


def _get(d: dict[str, Any], dotted: str) -> Any:
    cur: Any = d
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def fingerprints_match(a: dict[str, Any], b: dict[str, Any],
                       fields: tuple[str, ...] = MATCH_FIELDS) -> tuple[bool, list[str]]:
    """(True, []) when every field in ``fields`` is equal; else (False, ["cpu.model: 'X' != 'Y'", ...]).

    Accepts either fingerprints or whole report dicts (their ``device`` and ``runtime`` sections).
    A field absent on both sides is equal; absent on one side only is a difference.
    """
    fa, fb = _as_fp(a), _as_fp(b)
    diffs = []
    for f in fields:
        va, vb = _get(fa, f), _get(fb, f)
        if va != vb:
            diffs.append(f"{f}: {va!r} != {vb!r}")
    return (not diffs), diffs


def _as_fp(d: dict[str, Any]) -> dict[str, Any]:
    if "schema" in d and "device" in d:  # a report
        fp = dict(d["device"])
        if "runtime" in d and "runtime" not in fp:
            fp["runtime"] = d["runtime"]
        return fp
    return d
