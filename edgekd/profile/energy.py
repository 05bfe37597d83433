"""Energy per inference: board power sampled while the timed sessions run, integrated over their windows.

Sources, in order of preference (never a guessed figure: with none, the report says ``energy: null`` and why):

- Jetson: ``tegrastats --interval N`` prints one line per N ms with every power rail as
  ``NAME cur/avg`` (``VDD_IN 5022mW/5022mW`` on Orin with JetPack 5/6, ``POM_5V_IN 3000/3000`` on the
  Nano, TX2 and Xavier with JetPack 4). ``cur`` is the rail's power at that sample, ``avg`` the mean
  since tegrastats started; the current value is integrated. The board's input rail (``VDD_IN`` on
  Orin NX/Nano, ``POM_5V_IN`` on Nano/TX2) is used unless the device file names another (``power_rail``),
  or a sum of rails written ``A+B+C`` (the AGX Orin has no single input rail).
- NVIDIA GPUs: NVML. ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded, Volta and
  newer) read on a clock; where it is not supported, ``nvmlDeviceGetPowerUsage`` (mW) samples are
  integrated. Needs the ``nvidia-ml-py`` package (the ``nvml`` extra), imported lazily.

Integration (pure functions, tested on recorded text): power samples ``(t_s, p_mW)`` are linearly
interpolated and integrated exactly over each timed window ``[t0, t1]`` (``mW * s = mJ``); counter
samples ``(t_s, E_mJ)`` give ``E(t1) - E(t0)`` by interpolation. ``mJ/inference`` is the energy over
all windows of a target divided by the inferences timed in them. The figure is the whole rail's
(board or GPU) energy, idle power included: compare runs on the same device, not across devices.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The whole module's input rail on each Jetson generation that has one (Orin NX/Nano; Nano/TX1/TX2).
DEFAULT_JETSON_RAILS = ("VDD_IN", "POM_5V_IN")
# NAME cur/avg with an optional mW unit; not followed by a letter, so "RAM 2210/3964MB" and
# "IRAM 0/252kB" are not rails.
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?![\w/])")
_NOT_RAILS = {"RAM", "SWAP", "IRAM", "LFB"}
MIN_SAMPLES = 2  # power samples inside the timed windows below which no figure is given

Window = tuple[float, float]


def parse_rails(line: str) -> dict[str, tuple[int, int]]:
    """One tegrastats line -> ``{rail: (current_mW, average_mW)}`` (empty when the line has no rails)."""
    return {name: (int(cur), int(avg)) for name, cur, avg in _RAIL.findall(line) if name not in _NOT_RAILS}


def choose_rail(rails: Sequence[str], wanted: str | None = None) -> str | None:
    """``wanted`` (a rail, or rails joined by ``+``) when the board has every part, else the first of
    :data:`DEFAULT_JETSON_RAILS` present; None otherwise."""
    if wanted is not None:
        return wanted if all(part in rails for part in wanted.split("+")) else None
    return next((r for r in DEFAULT_JETSON_RAILS if r in rails), None)


def rail_power_mw(rails: dict[str, tuple[int, int]], rail: str) -> float | None:
    """Current power of ``rail`` (a sum for ``A+B``) in mW, or None when a part is missing from the line."""
    parts = rail.split("+")
    if not all(p in rails for p in parts):
        return None
    return float(sum(rails[p][0] for p in parts))


def _check_samples(samples: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Times and values as arrays; samples read in one burst can share a time stamp: the last one is kept."""
    pairs = list(samples)  # a snapshot: the sampler's thread may still append
    t = np.asarray([s[0] for s in pairs], dtype=np.float64)
    v = np.asarray([s[1] for s in pairs], dtype=np.float64)
    if t.size and np.all(np.diff(t) >= 0):
        keep = np.append(np.diff(t) > 0, True)
        t, v = t[keep], v[keep]
    if t.size < 2 or np.any(np.diff(t) <= 0) or not np.all(np.isfinite(v)):
        raise ValueError("need >= 2 finite samples with increasing times")
    return t, v


def energy_from_power_mj(samples: Sequence[tuple[float, float]], windows: Sequence[Window]) -> float:
    """Energy (mJ) over ``windows`` from power samples ``(t_s, mW)``, linearly interpolated between samples.

    Exact for piecewise-linear power: the trapezoid rule over the window's ends and every sample inside it.
    Each window must lie within the sampled span (no extrapolation).
    """
    t, p = _check_samples(samples)
    total = 0.0
    for t0, t1 in windows:
        if not t[0] <= t0 <= t1 <= t[-1]:
            raise ValueError(f"window [{t0}, {t1}] outside the sampled span [{t[0]}, {t[-1]}]")
        grid = np.concatenate([[t0], t[(t > t0) & (t < t1)], [t1]])
        pw = np.interp(grid, t, p)
        total += float(np.sum((pw[1:] + pw[:-1]) * np.diff(grid)) / 2.0)
    return total


def energy_from_counter_mj(samples: Sequence[tuple[float, float]], windows: Sequence[Window]) -> float:
    """Energy (mJ) over ``windows`` from a cumulative energy counter sampled as ``(t_s, mJ)``."""
    t, e = _check_samples(samples)
    if np.any(np.diff(e) < 0):
        raise ValueError("the energy counter went backwards (driver reloaded?)")
    total = 0.0
    for t0, t1 in windows:
        if not t[0] <= t0 <= t1 <= t[-1]:
            raise ValueError(f"window [{t0}, {t1}] outside the sampled span [{t[0]}, {t[-1]}]")
        total += float(np.interp(t1, t, e) - np.interp(t0, t, e))
    return total


def samples_inside(times: Sequence[float], windows: Sequence[Window]) -> int:
    """How many sample times fall inside any window."""
    return sum(any(t0 <= x <= t1 for t0, t1 in windows) for x in times)


def energy_summary(source: str, rail: str, samples: Sequence[tuple[float, float]], windows: Sequence[Window],
                   inferences: int, *, counter: bool = False) -> tuple[dict[str, Any] | None, str | None]:
    """``({source, rail, mean_power_mw, mj_per_inference, samples, window_s, method}, None)``, or
    ``(None, reason)`` when the samples cannot support a figure."""
    seconds = sum(t1 - t0 for t0, t1 in windows)
    if inferences < 1 or seconds <= 0:
        return None, "no timed inferences to divide the energy by"
    inside = samples_inside([s[0] for s in samples], windows)
    if inside < MIN_SAMPLES:
        return None, (f"only {inside} {source} sample(s) fell inside the {seconds:.3f} s of timed sessions "
                      f"(at least {MIN_SAMPLES} needed): raise --min-duration-s or lower the sensor interval")
    try:
        mj = (energy_from_counter_mj if counter else energy_from_power_mj)(samples, windows)
    except ValueError as exc:
        return None, f"{source} samples unusable: {exc}"
    return {"source": source, "rail": rail, "mean_power_mw": mj / seconds, "mj_per_inference": mj / inferences,
            "samples": inside, "window_s": seconds,
            "method": "energy counter" if counter else "integrated power samples"}, None


@dataclass
class PowerLog:
    """What a :class:`PowerSampler` recorded: ``(monotonic_s, value)`` pairs of one rail."""

    source: str | None = None
    rail: str | None = None
    counter: bool = False  # values are a cumulative mJ counter (NVML total energy), else mW
    samples: list[tuple[float, float]] = field(default_factory=list)
    unavailable: str | None = None


def _nvml_handle() -> tuple[Any, Any, str | None]:
    """(pynvml module, handle of GPU 0, None) or (None, None, why NVML cannot be used)."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None, None, ("no power source: no tegrastats (not a Jetson) and NVML needs the Python package "
                            "'nvidia-ml-py' (pip install 'edgekd[nvml]')")
    try:
        pynvml.nvmlInit()
        return pynvml, pynvml.nvmlDeviceGetHandleByIndex(0), None
    except Exception as exc:  # NVMLError subclasses: no driver, no GPU
        return None, None, f"no power source: no tegrastats (not a Jetson) and NVML has no GPU here ({exc})"


class PowerSampler:
    """Samples one power source in the background: ``start()`` before the first timed session, ``stop()`` after
    the last (the profiler calls it from ``close()``, so it also stops when a run fails).

    ``interval_s``: tegrastats takes whole milliseconds (100 ms and up here, to keep its own cost small);
    NVML is polled at the same interval. ``rail``: the tegrastats rail to integrate (default: the board input).
    """

    def __init__(self, interval_s: float = 0.1, rail: str | None = None) -> None:
        self.interval_s = interval_s
        self.wanted_rail = rail
        self.log = PowerLog()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._seen = threading.Event()
        self._read_nvml: Any = None

    def start(self) -> PowerSampler:
        if shutil.which("tegrastats") is not None:
            self._start_tegrastats()
        else:
            self._start_nvml()
        return self

    def _start_tegrastats(self) -> None:
        ms = max(100, int(round(self.interval_s * 1000)))
        # line-buffered through a pipe (stdbuf), so each line is time-stamped when tegrastats prints it
        cmd = (["stdbuf", "-oL"] if shutil.which("stdbuf") else []) + ["tegrastats", "--interval", str(ms)]
        try:
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError as exc:
            self.log.unavailable = f"tegrastats could not start ({exc})"
            return
        self.log.source = "tegrastats"
        self._thread = threading.Thread(target=self._read_tegrastats, daemon=True, name="edgekd-power")
        self._thread.start()
        self._seen.wait(timeout=max(5.0, 5 * ms / 1000))  # the first line brackets the first window

    def _read_tegrastats(self) -> None:
        if self._proc is None or self._proc.stdout is None:
            return
        for line in self._proc.stdout:
            rails = parse_rails(line)
            if not rails:
                continue
            if self.log.rail is None:
                self.log.rail = choose_rail(list(rails), self.wanted_rail)
                if self.log.rail is None:
                    wanted = self.wanted_rail or " / ".join(DEFAULT_JETSON_RAILS)
                    self.log.unavailable = (f"tegrastats has no rail {wanted} (rails: {', '.join(rails)}): set "
                                            "power_rail in the device file")
                    self._seen.set()
                    return
            mw = rail_power_mw(rails, self.log.rail)
            if mw is not None:
                self.log.samples.append((time.monotonic(), mw))
                self._seen.set()

    def _start_nvml(self) -> None:
        nv, h, why = _nvml_handle()
        if nv is None:
            self.log.unavailable = why
            return
        self.log.source, self.log.rail = "nvml", "gpu"
        try:
            nv.nvmlDeviceGetTotalEnergyConsumption(h)
            read, self.log.counter = (lambda: float(nv.nvmlDeviceGetTotalEnergyConsumption(h))), True
        except Exception:  # NVMLError_NotSupported before Volta: integrate the power reading instead
            read = lambda: float(nv.nvmlDeviceGetPowerUsage(h))  # noqa: E731  # mW
        self._read_nvml = read
        self._sample_nvml()
        self._thread = threading.Thread(target=self._poll_nvml, daemon=True, name="edgekd-power")
        self._thread.start()

    def _sample_nvml(self) -> None:
        try:
            self.log.samples.append((time.monotonic(), self._read_nvml()))
        except Exception as exc:  # a failing read ends the figure, not the profile
            self.log.unavailable = f"NVML read failed ({exc})"
            self._stop.set()

    def _poll_nvml(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample_nvml()

    def stop(self) -> PowerLog:
        """Stop sampling (idempotent); tegrastats is given one more interval so a sample follows the last window."""
        if self.log.source == "nvml" and not self._stop.is_set():
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._sample_nvml()
        self._stop.set()
        if self._proc is not None:
            n, deadline = len(self.log.samples), time.monotonic() + max(1.0, 3 * self.interval_s)
            while len(self.log.samples) == n and time.monotonic() < deadline and self._proc.poll() is None:
                time.sleep(0.01)
            self._proc.terminate()
            try:
                self._proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=3)
            self._proc = None
            if self._thread is not None:
                self._thread.join(timeout=5)
        return self.log


def target_energy(log: PowerLog, windows: Sequence[Window], inferences: int
                  ) -> tuple[dict[str, Any] | None, str | None]:
    """The report's ``energy`` for one target, or ``(None, reason)``."""
    if log.unavailable:
        return None, log.unavailable
    if log.source is None or log.rail is None:
        return None, "no power source was sampled"
    return energy_summary(log.source, log.rail, log.samples, windows, inferences, counter=log.counter)
