"""Honest synthetic profile reports for the gate tests: controlled raw samples, the summary recomputed
from them by the profiler's own code, and in-place edits of a saved report (tampering)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np


def session_samples(*, ms: float = 1.0, factor: float = 1.0, noise: float = 0.002, seed: int = 0,
                    sessions: int = 8, iterations: int = 20) -> np.ndarray:
    """(sessions, iterations) latencies in ms: session levels ``ms * factor * exp(N(0, noise))`` with a
    small jitter inside each session, so the session medians carry the controlled noise."""
    rng = np.random.default_rng(seed)
    levels = ms * factor * np.exp(rng.normal(0, noise, sessions))
    return levels[:, None] * (1 + 1e-4 * rng.standard_normal((sessions, iterations)))


def honest(template: Path, dest: Path, samples: np.ndarray, *, results: dict[str, Any] | None = None,
           **top: Any) -> Path:
    """A report saved by :class:`ProfileReport` from ``samples``: its summary recomputed by the
    profiler's own :func:`summarize`, so every figure is what its raw samples say. ``results`` and
    ``top`` replace keys of ``results`` and of the top level (fingerprint, validity, artifact...)."""
    from edgekd.profile.report import ProfileReport
    from edgekd.profile.stats import summarize

    d = copy.deepcopy(json.loads(template.read_text()))
    s = summarize(samples)
    d["results"].update({"latency_ms": s.latency_dict(), "session_medians_ms": s.session_medians_ms,
                         "n_samples": s.n, **(results or {})})
    d.pop("raw_samples", None)
    d.update(top)
    return ProfileReport(d, np.asarray(samples, dtype=np.float64)).save(dest)


def edit(path: Path, change: Any) -> Path:
    """Apply ``change(doc)`` to the JSON of a saved report in place (its samples file untouched)."""
    d = json.loads(path.read_text())
    change(d)
    path.write_text(json.dumps(d))
    return path
