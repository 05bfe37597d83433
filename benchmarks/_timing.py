"""Shared by the benchmark scripts (run as ``python benchmarks/NAME.py``, so this folder is on sys.path):
a plain interleaved timer for callables that are not artifacts ``edgekd profile`` can load (an analytic
teacher pipeline, a Python controller). Artifacts are timed with edgekd.profile.protocol instead."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def time_interleaved(fns: dict[str, Callable[[], Any]], rounds: int, iters: int) -> dict[str, dict[str, float]]:
    """Per-call latency (ms): every round runs each candidate ``iters`` times in turn, so background load
    hits all of them alike. Five untimed warm-up calls each first."""
    for f in fns.values():
        for _ in range(5):
            f()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            for _ in range(iters):
                t0 = time.perf_counter()
                f()
                samples[name].append((time.perf_counter() - t0) * 1e3)
    return {k: {"p50": float(np.percentile(v, 50)), "p90": float(np.percentile(v, 90)), "mean": float(np.mean(v)),
                "min": float(np.min(v)), "n": len(v)} for k, v in samples.items()}
