"""``report_tradeoff.png``: accuracy against latency for every variant the run profiled, saved beside
report.md (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: report.json profile name -> the variant whose metric it carries, and its label on the plot
POINTS = {"teacher_torch_fp32": ("teacher", "teacher (torch FP32)"),
          "torch_fp32": ("student_kd", "student KD (torch FP32)"),
          # the baseline is the same network as the KD student, so it runs at the same speed
          "torch_fp32 ": ("student_alone", "student alone (torch FP32, same network)"),
          "onnx_fp32": ("onnx_fp32", "student.onnx (ORT FP32)"),
          "onnx_int8": ("onnx_int8", "student.int8.onnx (ORT INT8)"),
          "openvino_int8": ("openvino_int8", "student.int8.xml (OpenVINO INT8)")}


def tradeoff_points(report: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(label, p50 latency ms, metric) for every profiled variant that has a metric."""
    out = []
    for prof, (variant, label) in POINTS.items():
        p = (report.get("profiles") or {}).get(prof.strip())
        m = (report.get("variants") or {}).get(variant, {}).get("metric")
        if p is not None and m is not None and p["latency_ms"].get("p50") is not None:
            out.append((label, float(p["latency_ms"]["p50"]), float(m)))
    return out


def plot_tradeoff(report: dict[str, Any], path: Path) -> Path | None:
    """Write the plot; None (nothing written) when no variant was profiled."""
    points = tradeoff_points(report)
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = report["metric"]
    unit = f" ({m['unit']})" if m.get("unit") else ""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    try:
        from matplotlib.ticker import FuncFormatter

        markers = "osD^v"
        for i, (label, lat, metric) in enumerate(points):  # the legend names each point: labels would overlap
            ax.scatter([lat], [metric], s=70, color=f"C{i}", marker=markers[i % len(markers)],
                       label=f"{label}: {lat:,.2f} ms, {metric:,.3f}", zorder=3)
        ax.set_xscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:,.3g}")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain)
        ax.margins(x=0.15, y=0.15)
        ax.set_xlabel("latency p50 on this machine (ms, log scale; lower is better)")
        better = "lower" if m["lower_is_better"] else "higher"
        ax.set_ylabel(f"{m['name']}{unit}, {better} is better")
        ax.set_title(f"{report['recipe']} on {report['device']}: accuracy vs latency (test split)", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        from edgekd.fileio import atomic_open

        with atomic_open(path, "wb", encoding=None) as fh:
            fig.savefig(fh, format="png")
    finally:
        plt.close(fig)
    return path
