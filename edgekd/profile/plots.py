"""PNG plots of a profile report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from edgekd.fileio import atomic_open


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    with atomic_open(path, "wb") as fh:
        fh.write(buf.getvalue())
    return path


def save_plots(rep: Any, report_path: str | Path) -> dict[str, Path]:
    """Latency histogram + session medians (``<stem>.latency.png``) and, when the report has a
    per-layer breakdown, a bar chart of the slowest layers (``<stem>.layers.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    p = Path(report_path)
    d = rep.to_json()
    res = d["results"]
    lat = res["latency_ms"]
    out: dict[str, Path] = {}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    if rep.samples is not None:
        x = np.asarray(rep.samples).ravel()
        hi = np.quantile(x, 0.995)  # keep the rare long tail from squashing the body of the histogram
        ax1.hist(x[x <= hi], bins=60, color="#4477aa")
        ax1.set_title(f"latency ({x.size} samples; {int((x > hi).sum())} above {hi:.3f} ms not shown)",
                      fontsize=9)
    else:
        ax1.text(0.5, 0.5, "raw samples not available", ha="center", va="center", transform=ax1.transAxes)
    for key, color in (("p50", "k"), ("p90", "#cc6677"), ("p90_ucb99", "#882255")):
        if lat.get(key) is not None:
            ax1.axvline(lat[key], color=color, ls="--", lw=1, label=f"{key} {lat[key]:.3f}")
    ax1.set_xlabel("ms")
    ax1.legend(fontsize=8)
    med = res["session_medians_ms"]
    ax2.plot(range(1, len(med) + 1), med, "o-", color="#4477aa")
    cv = res.get("session_cv")
    ax2.set_title("session medians" + (f" (CV {cv:.2%})" if cv is not None else ""), fontsize=9)
    ax2.set_xlabel("session")
    ax2.set_ylabel("ms")
    fig.suptitle(f"{d.get('label', p.stem)}: {'valid' if d['valid'] else 'INVALID'}", fontsize=10)
    out["latency"] = _save(fig, p.with_name(p.stem + ".latency.png"))
    plt.close(fig)
    layers = (d.get("layers") or {}).get("nodes") or []
    if layers:
        top = layers[:20][::-1]
        fig, ax = plt.subplots(figsize=(8, 0.3 * len(top) + 1.2))
        ax.barh([f"{n['node']} ({n.get('op', '')})"[:60] for n in top], [n["ms"] for n in top], color="#117733")
        ax.set_xlabel("ms per inference")
        cov = d["layers"].get("coverage_pct")
        ax.set_title(f"slowest layers ({d['layers'].get('source')}"
                     + (f", coverage {cov:.0f}% of end-to-end)" if cov is not None else ")"), fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        out["layers"] = _save(fig, p.with_name(p.stem + ".layers.png"))
        plt.close(fig)
    return out
