"""Latency vs held-out accuracy of every measured candidate, the Pareto front marked (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgekd.pipeline.optimize.report import CandidateEntry


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """``(latency, accuracy)`` pairs -> True where no other point is at least as fast AND as accurate, and
    strictly better in one of them."""
    flags = []
    for i, (lat, acc) in enumerate(points):
        dominated = any(j != i and l2 <= lat and a2 >= acc and (l2 < lat or a2 > acc)
                        for j, (l2, a2) in enumerate(points))
        flags.append(not dominated)
    return flags


def plot_candidates(entries: Sequence[CandidateEntry], out: Path, *, title: str, accuracy_label: str) -> None:
    """Write ``out`` (PNG) atomically; entries without latency or accuracy are left out of the plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgekd.fileio import atomic_path

    pts = [(e, float(e.latency_p50_ms), float(e.accuracy)) for e in entries
           if e.latency_p50_ms is not None and e.accuracy is not None]
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    for e, lat, acc in pts:
        color = "tab:green" if e.status == "picked" else ("tab:blue" if e.within_budget else "tab:red")
        ax.scatter(lat, acc, s=70 if e.pareto else 30, color=color,
                   edgecolors="black" if e.pareto else "none", zorder=3)
        ax.annotate(e.name, (lat, acc), fontsize=7, xytext=(4, 3), textcoords="offset points")
    front = sorted((lat, acc) for e, lat, acc in pts if e.pareto)
    if front:
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="black", lw=1, ls="--",
                label="Pareto front", zorder=2)
    ax.scatter([], [], color="tab:green", label="picked")
    ax.scatter([], [], color="tab:blue", label="within budget")
    ax.scatter([], [], color="tab:red", label="outside the budget")
    ax.set_xlabel("latency p50 (ms, interleaved)")
    ax.set_ylabel(accuracy_label)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
