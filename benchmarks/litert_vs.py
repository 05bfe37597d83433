"""LiteRT (TFLite + XNNPACK) against ONNX Runtime and OpenVINO on the shipped students, FP32 and INT8, 1 thread.

    OMP_NUM_THREADS=1 python benchmarks/litert_vs.py                 # the four recipes' students
    OMP_NUM_THREADS=1 python benchmarks/litert_vs.py --recipes gaze  # one

Needs the litert, litert-export and openvino extras (litert-export in its own environment: see
pyproject.toml). For each recipe's student (smoke preset, untrained weights: latency depends on the graph
only; parity against the same torch model is what an export must keep):
- exports: ONNX (torchscript exporter, batch 1) -> ORT FP32, ORT INT8 (edgekd's static QDQ), OpenVINO FP32
  (f32 hint) and INT8 (NNCF); .tflite FP32 and INT8 (PT2E, int8 I/O) with edgekd.export.litert;
- parity of both .tflite files against the torch model on 8 random batch-1 inputs (max |diff| and that
  difference over the reference's standard deviation; INT8 is judged by the second);
- latency: every artifact through edgekd.profile.protocol.profile_artifacts(interleave=True) at 1 thread,
  so machine noise falls on all runtimes alike; p50 and p90 in ms, and the ratio to LiteRT at the same
  precision. The load average is printed with the table: these cores are shared.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _common import print_table

RECIPES = ("gaze", "segmentation", "drone", "gui_agent")


def build(recipe: str) -> tuple[Any, Any]:
    from edgekd.tasks import build_task
    from edgekd.tasks.recipe import load_recipe

    task = build_task(load_recipe(recipe, preset="smoke").task, 0)
    return task.build_student().eval(), task.io_spec()


def artifacts(student: Any, spec: Any, folder: Path, calib: list[dict[str, np.ndarray]]) -> dict[str, Path]:
    from edgekd.export.litert import export_litert
    from edgekd.export.onnx import export_onnx
    from edgekd.quantize.nncf_ov import quantize_openvino
    from edgekd.quantize.ort_static import quantize_onnx_static

    onnx = export_onnx(student, spec, folder / "fp32.onnx", opset=17, exporter="torchscript",
                       dynamic_batch=False).path
    quantize_onnx_static(onnx, folder / "ort_int8.onnx", calib)
    out = {"ort fp32": onnx, "ort int8": folder / "ort_int8.onnx"}
    try:
        quantize_openvino(onnx, folder / "ov_int8.xml", calib)
        out.update({"ov fp32": onnx, "ov int8": folder / "ov_int8.xml"})
    except Exception as exc:  # noqa: BLE001 - OpenVINO cannot read every ONNX graph: say so, time the rest
        print(f"  OpenVINO rows skipped: {str(exc).strip().splitlines()[-1][:160]}")
    for p in ("fp32", "int8"):
        # batch 1 fixed: what a board runs (and litert-torch 0.10 failed on every student's dynamic batch)
        r = export_litert(student, spec, folder / f"{p}.tflite", precision=p, calibration=calib, dynamic=False)
        out[f"litert {p}"] = r.path
    return out


def parity(student: Any, spec: Any, path: Path) -> tuple[float, float]:
    """(max |tflite - torch|, that over the reference's std), worst output, 8 batch-1 inputs."""
    import torch

    from edgekd.runtime import SessionOptions, get_runtime

    sess = get_runtime("litert").load(path, SessionOptions(threads=1))
    worst_abs = worst_rel = 0.0
    for seed in range(8):
        feeds = spec.dummy_inputs({"batch": 1}, seed=1000 + seed)
        with torch.no_grad():
            ref = student(*(torch.from_numpy(feeds[n]) for n in spec.input_names))
        refs = (ref,) if isinstance(ref, torch.Tensor) else tuple(ref)
        for got, want in zip(sess.run(_as_session_dtypes(feeds, sess)), refs, strict=True):
            w = want.numpy()
            d = float(np.abs(got - w).max())
            worst_abs = max(worst_abs, d)
            worst_rel = max(worst_rel, d / max(float(w.std()), 1e-12))
    return worst_abs, worst_rel


def _as_session_dtypes(feeds: dict[str, np.ndarray], sess: Any) -> dict[str, np.ndarray]:
    """litert-torch narrows int64 inputs (token ids) to int32: feed what the .tflite declares."""
    return {t.name: feeds[t.name].astype(t.dtype) for t in sess.inputs}


def latency(paths: dict[str, Path], feeds: dict[str, np.ndarray], sessions: int) -> dict[str, tuple[float, float]]:
    from edgekd.profile.protocol import MeasureConfig, ProfileTarget, profile_artifacts
    from edgekd.runtime import SessionOptions, get_runtime

    runtime = {"ort": "onnxruntime", "ov": "openvino", "litert": "litert"}
    targets = []
    for k, p in paths.items():
        rt, prec = runtime[k.split()[0]], k.split()[1]
        f = feeds if rt != "litert" else _as_session_dtypes(feeds, get_runtime(rt).load(p, SessionOptions()))
        targets.append(ProfileTarget(p, rt, SessionOptions(threads=1, precision=prec), f, label=k))
    cfg = MeasureConfig(sessions=sessions, iterations=50, min_duration_s=1.5, warmup_s=0.3)
    reps = profile_artifacts(targets, cfg, interleave=True, progress=False)
    return {t.label or "": (r.latency_ms["p50"], r.latency_ms["p90"]) for t, r in zip(targets, reps, strict=True)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES))
    ap.add_argument("--sessions", type=int, default=6, help="interleaved rounds")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    par_rows, lat_rows = [], []
    for recipe in args.recipes:
        student, spec = build(recipe)
        calib = [spec.dummy_inputs({"batch": 1}, seed=s) for s in range(16)]
        with tempfile.TemporaryDirectory(prefix="edgekd-litert-vs-") as tmp:
            paths = artifacts(student, spec, Path(tmp), calib)
            for p in ("fp32", "int8"):
                try:
                    a, r = parity(student, spec, paths[f"litert {p}"])
                    par_rows.append([recipe, p, f"{a:.2e}", f"{r:.2e}"])
                except Exception as exc:  # noqa: BLE001 - a broken conversion is a result: report it, time the rest
                    par_rows.append([recipe, p, "does not run", str(exc).splitlines()[0][:100]])
                    del paths[f"litert {p}"]
            load0 = os.getloadavg()[0]
            lat = latency(paths, spec.dummy_inputs({"batch": 1}, seed=7), args.sessions)
            load1 = os.getloadavg()[0]
        for p in ("fp32", "int8"):
            base = lat.get(f"litert {p}", (float("nan"), 0.0))[0]
            for rt in ("litert", "ort", "ov"):
                if f"{rt} {p}" not in lat:
                    continue
                p50, p90 = lat[f"{rt} {p}"]
                lat_rows.append([recipe, f"{rt} {p}", f"{p50:.3f}", f"{p90:.3f}", f"{p50 / base:.2f}",
                                 f"{load0:.1f}/{load1:.1f}"])
        print_table(["recipe", "precision", "max |diff|", "max |diff| / ref std"], par_rows[-2:])
        print_table(["recipe", "runtime", "p50", "p90", "ratio", "load avg before/after"],
                    [r for r in lat_rows if r[0] == recipe])
    print("\nParity of the .tflite against torch (8 inputs, worst output):")
    print_table(["recipe", "precision", "max |diff|", "max |diff| / ref std"], par_rows)
    print("\nLatency at 1 thread, interleaved (ms; ratio = p50 / LiteRT p50 at the same precision):")
    print_table(["recipe", "runtime", "p50", "p90", "ratio", "load avg before/after"], lat_rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
