"""Process memory: current and peak resident set size, GPU memory where NVML has it.

Peak RSS is the process's high-water mark (``VmHWM`` in /proc/self/status, or
``resource.getrusage``'s ``ru_maxrss`` elsewhere). On Linux the mark can be reset by writing
``5`` to /proc/self/clear_refs (kernel >= 4.0), which lets the profiler attribute a peak to one
stage; where that is refused the report says the peak covers the whole process. For an exact
per-artifact peak run the profile in its own process (the CLI does: one process per command).
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path
from typing import Any


def _status_kb(field: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def current_rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024.0


def peak_rss_mb() -> float:
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024.0
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    return ru / (1024.0 * 1024.0) if sys.platform == "darwin" else ru / 1024.0


def reset_peak_rss() -> bool:
    """Reset the high-water mark to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def gpu_memory_mb() -> dict[str, Any] | None:
    """Used/total memory of GPU 0 via NVML, or None where there is no NVML."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        info = pynvml.nvmlDeviceGetMemoryInfo(h)
        procs = []
        try:
            procs = pynvml.nvmlDeviceGetComputeRunningProcesses(h)
        except pynvml.NVMLError:
            pass
        mine = [p.usedGpuMemory for p in procs if p.pid == os.getpid() and p.usedGpuMemory]
        return {"used_mb": info.used / 2**20, "total_mb": info.total / 2**20,
                "process_mb": (mine[0] / 2**20) if mine else None}
    except Exception:  # NVML present but no driver / no device
        return None


def file_size_mb(path: str | os.PathLike[str] | None) -> float | None:
    """Artifact size, counting ONNX external-data files and an IR's .bin beside it."""
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        return None
    total = p.stat().st_size
    sides = {Path(str(p) + ".data")}
    if p.suffix == ".xml":
        sides.add(p.with_suffix(".bin"))
    for side in sides:
        if side.exists() and side != p:
            total += side.stat().st_size
    return total / 2**20
