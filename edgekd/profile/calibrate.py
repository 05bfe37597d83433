"""Fit a device's machine model (peak rate per precision, bandwidth, per-operator overhead) to real
profile reports, so that ``edgekd estimate`` predicts that device from its characteristics.

Model (see :mod:`edgekd.profile.estimate`; roofline of Williams et al., CACM 2009, plus a per-kernel
overhead): for report ``j`` with kernels ``i``, ``T_j(theta) = sum_i max(F_ij / P_p(i), B_ij / W) + n_j o``.
The parameters ``theta = (log P_p for each precision seen, log W, log o)`` minimise the squared relative
(log) error against the measured medians ``M_j`` (the reports' p50), plus a weak pull towards the prior
``theta_0`` (the device file's datasheet characteristics) so that directions the reports do not
determine (a precision only one report uses, bandwidth when every model is compute-bound) stay put::

    min_theta  sum_j rho((log T_j(theta) - log M_j)^2) + lam^2 * ||theta - theta_0||^2,   lam = PRIOR_WEIGHT

with ``rho`` the soft-L1 (pseudo-Huber) loss ``rho(z) = 2 c^2 (sqrt(1 + z / c^2) - 1)``, ``c = 0.1``: quadratic
for errors below ~10%, linear above, so one report taken on a busy machine does not drag the fit
(on this shared host it lowered the leave-one-out MAPE from 40% to 34%).

The interval the estimate reports comes from leave-one-out: refit without report ``j``, predict it,
keep ``e_j = log(T_j / M_j)``; the band is ``[exp(min(e) - PAD), exp(max(e) + PAD)]`` (always
containing 1). With fewer than :data:`MIN_REPORTS_FOR_BAND` reports there is nothing to hold out and
the band is the datasheet band.

Calibrations are JSON data files (schema ``edgekd.calibration/1``) written atomically: no pickles.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError, ProfileError
from edgekd.profile.estimate import DATASHEET_BAND, GraphWork, Machine, analyze_onnx

SCHEMA = "edgekd.calibration/1"
PRIOR_WEIGHT = 0.05
F_SCALE = 0.1
LOSS = "soft_l1"  # robust loss of scipy.optimize.least_squares; see the module docstring
PAD = 0.05  # log-units added to each side of the leave-one-out band (about 5%)
MIN_REPORTS_FOR_BAND = 3
_OVERHEAD_FLOOR_US = 0.01  # the overhead is fitted in log space, so it needs a floor above zero


@dataclass
class Sample:
    """One calibration point: the graph's work and the measured median latency."""

    label: str
    work: GraphWork
    measured_ms: float
    artifact_sha256: str | None = None


class _Packed:
    """Per-kernel arrays of all samples, for fast evaluation of the model during the fit."""

    def __init__(self, samples: Sequence[Sample], precisions: Sequence[str]) -> None:
        self.samples = list(samples)
        self.precisions = list(precisions)
        self.arrays = []
        for s in samples:
            f = np.array([o.flops for o in s.work.ops], dtype=np.float64)
            b = np.array([o.bytes for o in s.work.ops], dtype=np.float64)
            p = np.array([self.precisions.index(o.precision) for o in s.work.ops], dtype=np.int64)
            self.arrays.append((f, b, p, len(s.work.ops)))
        self.log_measured = np.log(np.array([s.measured_ms for s in samples], dtype=np.float64))

    def predict_ms(self, theta: np.ndarray, which: Sequence[int] | None = None) -> np.ndarray:
        npc = len(self.precisions)
        peaks = np.exp(theta[:npc]) * 1e9
        bw = math.exp(theta[npc]) * 1e9
        over_ms = math.exp(theta[npc + 1]) / 1000.0
        idx = range(len(self.arrays)) if which is None else which
        out = []
        for j in idx:
            f, b, p, n = self.arrays[j]
            t = np.maximum(f / peaks[p], b / bw).sum() * 1000.0 + n * over_ms
            out.append(t)
        return np.asarray(out)


def _theta0(prior: Machine, precisions: Sequence[str]) -> np.ndarray:
    peaks = [prior.peak(p)[0] for p in precisions]
    bw = prior.bandwidth_gbs or 20.0
    return np.log(np.array([*peaks, bw, max(prior.op_overhead_us, _OVERHEAD_FLOOR_US)], dtype=np.float64))


def _fit(packed: _Packed, theta0: np.ndarray, which: Sequence[int]) -> np.ndarray:
    from scipy.optimize import least_squares

    which = list(which)
    target = packed.log_measured[which]

    def resid(theta: np.ndarray) -> np.ndarray:
        pred = np.log(packed.predict_ms(theta, which))
        return np.concatenate([pred - target, PRIOR_WEIGHT * (theta - theta0)])

    lo = np.full_like(theta0, -np.inf)
    lo[-1] = math.log(_OVERHEAD_FLOOR_US)
    # The max() makes the objective piecewise smooth: start from the prior and from a few scalings of it
    # (peaks and bandwidth together e^-1 and e^1 times the prior), keep the best.
    fits = []
    for shift in (0.0, -1.0, 1.0):
        x0 = theta0 + np.array([shift] * (len(theta0) - 1) + [0.0])
        x0 = np.maximum(x0, lo + 1e-9)
        fits.append(least_squares(resid, x0, bounds=(lo, np.full_like(theta0, np.inf)), method="trf", x_scale=1.0,
                                  max_nfev=400, loss=LOSS, f_scale=F_SCALE))
    return np.asarray(min(fits, key=lambda r: float(r.cost)).x)


@dataclass
class Calibration:
    machine: Machine
    device: str | None
    runtime: dict[str, Any]
    cpu: str | None
    points: list[dict[str, Any]]
    rms_log_error: float

    def to_json(self) -> dict[str, Any]:
        m = self.machine
        return {
            "schema": SCHEMA,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "device": self.device, "cpu": self.cpu, "runtime": self.runtime,
            "characteristics": {"peak_gflops": dict(m.peak_gflops), "bandwidth_gbs": m.bandwidth_gbs,
                                "op_overhead_us": m.op_overhead_us},
            "band": list(m.band),
            "fit": {"n_reports": len(self.points), "rms_log_error": self.rms_log_error,
                    "prior_weight": PRIOR_WEIGHT, "points": self.points},
        }


def calibrate_samples(samples: Sequence[Sample], prior: Machine, *, device: str | None = None,
                      runtime: Mapping[str, Any] | None = None, cpu: str | None = None,
                      source: str = "calibration") -> Calibration:
    """Fit ``prior``'s parameters to ``samples``; leave-one-out errors give the band."""
    if not samples:
        raise ConfigError("calibrate: no reports to fit", hint="pass profile reports: edgekd calibrate A.json B.json ...")
    precisions = sorted({o.precision for s in samples for o in s.work.ops})
    packed = _Packed(samples, precisions)
    theta0 = _theta0(prior, precisions)
    theta = _fit(packed, theta0, range(len(samples)))
    pred = packed.predict_ms(theta)
    err = np.log(pred) - packed.log_measured
    loo: list[float | None] = [None] * len(samples)
    if len(samples) >= MIN_REPORTS_FOR_BAND:
        for j in range(len(samples)):
            rest = [i for i in range(len(samples)) if i != j]
            th = _fit(packed, theta0, rest)
            loo[j] = float(packed.predict_ms(th, [j])[0])
        e = np.log(np.array(loo, dtype=np.float64)) - packed.log_measured
        band = (float(math.exp(min(float(e.min()), 0.0) - PAD)), float(math.exp(max(float(e.max()), 0.0) + PAD)))
    else:
        band = DATASHEET_BAND
    npc = len(precisions)
    peaks = {p: float(math.exp(theta[i])) for i, p in enumerate(precisions)}
    for p, v in prior.peak_gflops.items():  # keep the prior's figure for precisions no report exercised
        peaks.setdefault(p, float(v))
    machine = Machine(peaks, float(math.exp(theta[npc])), float(math.exp(theta[npc + 1])), source, band)
    points = [{"label": s.label, "artifact_sha256": s.artifact_sha256, "measured_ms": s.measured_ms,
               "predicted_ms": float(pred[j]), "loo_predicted_ms": loo[j],
               "kernels": len(s.work.ops), "gflops": sum(o.flops for o in s.work.ops) / 1e9}
              for j, s in enumerate(samples)]
    return Calibration(machine, device, dict(runtime or {}), cpu, points, float(np.sqrt(np.mean(err ** 2))))


# ---------------------------------------------------------------------------------------------------
# From report files
# ---------------------------------------------------------------------------------------------------
def _resolve_artifact(report_path: Path, art: Mapping[str, Any], artifact_dir: Path | None) -> Path:
    from edgekd.fileio import sha256_file

    raw = art.get("path")
    if not raw:
        raise ProfileError(f"{report_path}: the report names no artifact file (artifact.path is empty); an in-memory "
                           "torch profile cannot be used for calibration", hint="profile an .onnx file")
    cands = [Path(raw), report_path.parent / raw, report_path.parent / Path(raw).name]
    if artifact_dir is not None:
        cands.insert(0, artifact_dir / Path(raw).name)
    for c in cands:
        if c.is_file():
            want = art.get("sha256")
            if want and sha256_file(c) != want:
                raise ProfileError(f"{report_path}: artifact {c} has a different SHA-256 than the one profiled "
                                   f"({str(want)[:12]}...): it was changed after profiling",
                                   hint="profile the file again, or pass --artifact-dir with the original")
            return c
    raise ProfileError(f"{report_path}: its artifact {raw!r} was not found (looked in {[str(c) for c in cands]})",
                       hint="pass --artifact-dir FOLDER holding the profiled .onnx files")


def samples_from_reports(paths: Sequence[str | Path], *, artifact_dir: Path | None = None,
                         allow_invalid: bool = False) -> tuple[list[Sample], dict[str, Any], str | None]:
    """Read reports (validated), find and hash-check their ONNX artifacts, analyze them at the profiled
    input shapes. Returns the samples, the runtime settings they share and the CPU model."""
    from edgekd.profile.report import ProfileReport

    samples: list[Sample] = []
    runtimes: set[str] = set()
    rt0: dict[str, Any] = {}
    cpu = None
    problems = []
    for p in paths:
        rp = Path(p)
        rep = ProfileReport.from_json(rp)
        d = rep.data
        if not rep.valid and not allow_invalid:
            problems.append(f"{rp}: the run is invalid ({'; '.join(rep.invalid_reasons)})")
            continue
        art = d.get("artifact") or {}
        if not str(art.get("path") or "").lower().endswith(".onnx"):
            problems.append(f"{rp}: artifact {art.get('path')!r} is not an .onnx file (the estimator reads ONNX)")
            continue
        path = _resolve_artifact(rp, art, artifact_dir)
        shapes = {k: tuple(v["shape"]) for k, v in (d.get("inputs") or {}).items()}
        work = analyze_onnx(path, shapes)
        rt = d["runtime"]
        runtimes.add(f"{rt.get('name')} threads={rt.get('threads')}")
        rt0 = rt0 or {k: rt.get(k) for k in ("name", "version", "threads", "providers")}
        cpu = cpu or (d.get("device", {}).get("cpu") or {}).get("model")
        samples.append(Sample(str(d.get("label") or rp.name), work, float(rep.p50), art.get("sha256")))
    if problems:
        raise ProfileError("calibrate: some reports cannot be used:\n" + "\n".join(f"  - {x}" for x in problems),
                           hint="profile again on a quiet device, or pass --allow-invalid to use them anyway")
    if len(runtimes) > 1:
        raise ConfigError(f"calibrate: the reports mix runtime settings {sorted(runtimes)}; a calibration describes "
                          "one runtime at one thread count", hint="calibrate each setting separately")
    return samples, rt0, cpu


def save_calibration(cal: Calibration, out: str | Path) -> Path:
    from edgekd.fileio import write_json

    write_json(out, cal.to_json())
    return Path(out)


def load_calibration(path: str | Path) -> tuple[Machine, dict[str, Any]]:
    """Read a calibration file (validated) into a Machine; also returns the whole document."""
    p = Path(path)
    where = f"--calibration {str(p)!r}"
    if not p.is_file():
        raise ConfigError(f"{where}: no such file", hint="write one with `edgekd calibrate REPORTS... --out FILE`")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: not a JSON file ({exc})",
                          hint="write one with `edgekd calibrate REPORTS... --out FILE`") from None
    if not isinstance(d, dict) or d.get("schema") != SCHEMA:
        got = d.get("schema") if isinstance(d, dict) else type(d).__name__
        raise ConfigError(f"{where}: schema {got!r}, expected {SCHEMA!r}",
                          hint="write one with `edgekd calibrate REPORTS... --out FILE`")
    from edgekd.config.device import Characteristics

    try:
        ch = d["characteristics"]
        chars = Characteristics(peak_gflops=ch["peak_gflops"], bandwidth_gbs=ch["bandwidth_gbs"],
                                op_overhead_us=ch["op_overhead_us"], source=str(p))
        band = d["band"]
        lo, hi = float(band[0]), float(band[1])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ConfigError(f"{where}: malformed calibration ({type(exc).__name__}: {exc})",
                          hint="write it again with `edgekd calibrate`") from None
    if not (0 < lo <= 1 <= hi):
        raise ConfigError(f"{where}: band {band!r} must satisfy 0 < low <= 1 <= high",
                          hint="write it again with `edgekd calibrate`")
    return Machine.from_characteristics(chars, (lo, hi)), d
