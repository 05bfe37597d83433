"""Shared by the benchmark scripts (run as ``python benchmarks/NAME.py``, so this folder is on sys.path).

- ``add_seeds``: ``--seeds`` is a list of seeds in every script (``--seeds 0 1 2``);
- ``mean_std`` / ``fmt_mean_std``: mean and the *sample* standard deviation (n - 1) everywhere;
- ``print_table``: one plain-text/markdown table printer;
- ``time_interleaved``: an interleaved timer for callables that are not artifacts ``edgekd profile`` can load
  (an analytic teacher pipeline, a Python controller). Artifacts are timed with edgekd.profile.protocol.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
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


def add_seeds(ap: argparse.ArgumentParser, default: Sequence[int] = (0, 1, 2)) -> None:
    """``--seeds S [S ...]``: the seeds to run, as a list (the same flag in every benchmark)."""
    ap.add_argument("--seeds", type=int, nargs="+", default=list(default),
                    help=f"seeds to run (default: {' '.join(map(str, default))})")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single value)."""
    v = [float(x) for x in values]
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def fmt_mean_std(values: Sequence[float | None], scale: float = 1.0, digits: int = 2) -> str:
    """``"m +- s"`` over the values that are not None (``-`` when none are), after multiplying by ``scale``."""
    v = [scale * x for x in values if x is not None]
    if not v:
        return "-"
    m, s = mean_std(v)
    return f"{m:.{digits}f} +- {s:.{digits}f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Print (and return) a markdown table: readable in a terminal, pasteable into docs/results.md."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    text = "\n".join(lines)
    print(text)
    return text
