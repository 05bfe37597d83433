"""Latency statistics of one profiled artifact.

The quantiles use the "nearest rank" definition on the sorted samples (no interpolation), so
every reported figure is a latency that was actually observed.

The p90 upper confidence bound is distribution-free, from order statistics, as MLPerf's
single-stream early stopping does it (MLPerf Inference rules, "Early stopping"): with ``n``
samples sorted ascending ``x_(1) <= ... <= x_(n)``, the number of samples below the true
90th percentile ``q`` is Binomial(n, 0.9). Take the smallest ``k`` with

    P(Binom(n, 0.9) < k) = P(Binom(n, 0.9) <= k - 1) >= 0.99;

then ``P(x_(k) >= q) >= 0.99``, i.e. ``x_(k)`` is a 99% upper bound on ``q`` whatever the
distribution. With fewer than 44 samples no such ``k <= n`` exists (1 - 0.9^n < 0.99) and the
bound is None. The samples of a timed loop are not strictly independent (sessions drift), which is
why session medians and their coefficient of variation are kept beside it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

QUANTILES = (50, 90, 95, 99)
# Above this coefficient of variation of the session medians a run is flagged noisy: measured A/A
# runs on a quiet 2-core host stay below ~2%; a shared, busy host reaches 5-10%.
DEFAULT_NOISY_CV = 0.05


def nearest_rank(sorted_x: np.ndarray, pct: float) -> float:
    """The ``pct`` percentile by nearest rank: x_(ceil(pct/100 * n))."""
    n = len(sorted_x)
    if n == 0:
        return float("nan")
    k = max(1, math.ceil(pct / 100.0 * n))
    return float(sorted_x[k - 1])


def order_statistic_ucb_rank(n: int, quantile: float = 0.9, confidence: float = 0.99) -> int | None:
    """Smallest 1-based rank k with P(Binom(n, quantile) <= k - 1) >= confidence, or None if k > n."""
    from scipy.stats import binom

    if n <= 0:
        return None
    ks = np.arange(1, n + 1)
    cdf = binom.cdf(ks - 1, n, quantile)
    ok = np.nonzero(cdf >= confidence)[0]
    return int(ks[ok[0]]) if ok.size else None


def quantile_ucb(samples: np.ndarray, quantile: float = 0.9, confidence: float = 0.99) -> float | None:
    x = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    k = order_statistic_ucb_rank(len(x), quantile, confidence)
    return None if k is None else float(x[k - 1])


@dataclass(frozen=True)
class LatencyStats:
    """All figures in milliseconds except ``throughput_per_s`` and ``session_cv`` (a ratio)."""

    n: int
    p50: float
    p90: float
    p95: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    p90_ucb99: float | None
    throughput_per_s: float
    session_medians_ms: list[float]
    session_cv: float | None
    noisy: bool
    noisy_threshold: float

    def latency_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: d[k] for k in ("p50", "p90", "p95", "p99", "mean", "std", "min", "max", "p90_ucb99")}


def summarize(samples_ms: np.ndarray, *, noisy_cv: float = DEFAULT_NOISY_CV) -> LatencyStats:
    """``samples_ms``: shape (sessions, iterations) or flat (one session)."""
    arr = np.asarray(samples_ms, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"samples must be a non-empty (sessions, iterations) array, got shape {arr.shape}")
    flat = np.sort(arr.ravel())
    medians = [float(np.median(row)) for row in arr]
    cv = session_cv(medians)
    mean = float(flat.mean())
    return LatencyStats(
        n=int(flat.size),
        p50=nearest_rank(flat, 50), p90=nearest_rank(flat, 90), p95=nearest_rank(flat, 95),
        p99=nearest_rank(flat, 99),
        mean=mean, std=float(flat.std(ddof=1)) if flat.size > 1 else 0.0,
        min=float(flat[0]), max=float(flat[-1]),
        p90_ucb99=quantile_ucb(flat, 0.9, 0.99),
        throughput_per_s=1000.0 / mean if mean > 0 else float("inf"),
        session_medians_ms=medians, session_cv=cv,
        noisy=bool(cv is not None and cv > noisy_cv), noisy_threshold=noisy_cv,
    )


def session_cv(medians: list[float] | np.ndarray) -> float | None:
    """Coefficient of variation (sample std / mean) of the session medians; None with < 2 sessions."""
    m = np.asarray(medians, dtype=np.float64)
    if m.size < 2 or m.mean() <= 0:
        return None
    return float(m.std(ddof=1) / m.mean())


#: tolerance when a stored summary is compared with the one recomputed from its raw samples: JSON keeps
#: a float64 exactly (shortest repr round-trips), so only a different summation order may differ
SUMMARY_RTOL = 1e-9


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=SUMMARY_RTOL, abs_tol=1e-12)


def summary_mismatch(latency_ms: dict[str, Any], session_medians_ms: list[Any], samples_ms: np.ndarray,
                     n_samples: Any = None) -> str | None:
    """Compare a stored summary with :func:`summarize` of the raw samples it claims to describe.

    Returns None when they agree within :data:`SUMMARY_RTOL`, else one line naming the first field that
    does not (``results.latency_ms.p90_ucb99 is 0.001 but the raw samples give 1.2345``). The raw
    samples must be a finite, non-negative (sessions, iterations) array."""
    arr = np.asarray(samples_ms)
    if arr.ndim != 2 or arr.size == 0 or not np.issubdtype(arr.dtype, np.floating):
        return f"raw samples are a {arr.dtype} array of shape {list(arr.shape)}, expected float (sessions, iterations)"
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        return "raw samples hold negative or non-finite latencies"
    s = summarize(arr)
    fresh = s.latency_dict()
    for k, v in fresh.items():
        stored = latency_ms.get(k)
        if v is None or stored is None:
            if v is not stored:
                return f"results.latency_ms.{k} is {stored!r} but the raw samples give {v!r}"
        elif not _close(float(stored), v):
            return f"results.latency_ms.{k} is {stored!r} but the raw samples give {v!r}"
    if len(session_medians_ms) != len(s.session_medians_ms):
        return (f"results.session_medians_ms has {len(session_medians_ms)} sessions but the raw samples "
                f"have {len(s.session_medians_ms)}")
    for i, (a, b) in enumerate(zip(session_medians_ms, s.session_medians_ms, strict=True)):
        if not _close(float(a), b):
            return f"results.session_medians_ms[{i}] is {a!r} but the raw samples give {b!r}"
    if n_samples is not None and int(n_samples) != s.n:
        return f"results.n_samples is {n_samples!r} but there are {s.n} raw samples"
    return None
