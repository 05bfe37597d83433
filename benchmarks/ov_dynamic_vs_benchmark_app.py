"""Does `edgekd profile --runtime openvino` time a dynamic-shape model as OpenVINO's own benchmark_app does?

For each PP-OCR model shipped in rapidocr-onnxruntime (detector, recogniser, direction classifier; their H
and W are dynamic), at a size where one inference takes at least 5 ms at one thread:

- A: ``edgekd profile MODEL --runtime openvino --threads 1 --input x=1x3xHxW`` (median and mean from its
  report JSON, and the inference precision it records, ``runtime.inference_precision``);
- B: ``benchmark_app -m MODEL -shape x[1,3,H,W] -hint none -nstreams 1 -nthreads 1 -infer_precision P -t S``
  with P the precision A recorded (edgekd asks f32 by default; OpenVINO's own default on an AVX-512 BF16 CPU
  is bf16, RUNTIME-NOTES), median and average parsed from its stdout, and the precision it reports checked.

A and B alternate (A B A B ...) for ``--rounds`` rounds, so a slow drift of the machine hits both; the table
gives the median over rounds of each tool's median, their ratio, and whether edgekd is within 5%.

    python benchmarks/ov_dynamic_vs_benchmark_app.py [--rounds 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import print_table

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.05
#: edgekd's recorded inference precision -> benchmark_app's -infer_precision, and the type name it prints
PRECISIONS = {"f32": ("f32", "float32"), "bf16": ("bf16", "bf16"), "f16": ("f16", "f16")}


def find_models(sizes: dict[str, tuple[int, int]]) -> dict[str, tuple[Path, tuple[int, int, int, int]]]:
    """name -> (ONNX file, input shape) for the PP-OCR models of rapidocr-onnxruntime (not imported: it
    needs OpenCV, which the models do not)."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("rapidocr-onnxruntime is not installed: pip install rapidocr-onnxruntime (for its models)")
    folder = Path(spec.submodule_search_locations[0]) / "models"
    out = {}
    for name, (h, w) in sizes.items():
        found = sorted(glob.glob(str(folder / f"*{name}*.onnx")))
        if not found:
            sys.exit(f"no *{name}*.onnx in {folder}")
        out[name] = (Path(found[0]), (1, 3, h, w))
    return out


def run_edgekd(model: Path, shape: tuple[int, ...], seconds: float, precision: str) -> dict[str, Any]:
    """A: ``edgekd profile`` in a child process; median, mean (ms) and the inference precision it recorded."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.json"
        cmd = [sys.executable, "-m", "edgekd", "profile", str(model), "--runtime", "openvino", "--threads", "1",
               "--input", "x=" + "x".join(map(str, shape)), "--precision", precision, "--sessions", "5",
               "--min-duration-s", str(seconds), "--no-markdown", "--out", str(out)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if not out.is_file():
            sys.exit(f"edgekd profile failed ({res.returncode}): {res.stderr[-2000:]}")
        doc = json.loads(out.read_text())
    lat, rt = doc["results"]["latency_ms"], doc["runtime"]
    return {"median": float(lat["p50"]), "mean": float(lat["mean"]), "precision": str(rt.get("inference_precision")),
            "threads": rt.get("threads"), "streams": rt.get("num_streams"), "contended": doc["results"].get("contended")}


def run_benchmark_app(model: Path, shape: tuple[int, ...], seconds: float, precision: str) -> dict[str, Any]:
    """B: ``benchmark_app`` with the same shape, one stream, one thread and the same inference precision."""
    arg, _ = PRECISIONS[precision]
    cmd = ["benchmark_app", "-m", str(model), "-shape", "x[" + ",".join(map(str, shape)) + "]", "-hint", "none",
           "-nstreams", "1", "-nthreads", "1", "-infer_precision", arg, "-t", str(int(round(seconds)))]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    text = res.stdout + res.stderr
    parsed = parse_benchmark_app(text)
    if res.returncode != 0 or parsed is None:
        sys.exit(f"benchmark_app failed ({res.returncode}): {text[-2000:]}")
    return parsed


def parse_benchmark_app(text: str) -> dict[str, Any] | None:
    """Median and average latency (ms) and the inference precision from benchmark_app's output; None when
    the latency lines are missing."""
    median = re.search(r"Median:\s*([\d.]+)\s*ms", text)
    average = re.search(r"Average:\s*([\d.]+)\s*ms", text)
    hint = re.search(r"INFERENCE_PRECISION_HINT:\s*<Type: '([^']+)'>", text)
    if median is None or average is None:
        return None
    return {"median": float(median.group(1)), "mean": float(average.group(1)),
            "precision": hint.group(1) if hint else "?"}


def measure(models: dict[str, tuple[Path, tuple[int, int, int, int]]], rounds: int, seconds: float,
            precision: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every round: for each model, A then B (A B A B ...)."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {m: {"edgekd": [], "benchmark_app": []} for m in models}
    for r in range(rounds):
        for name, (path, shape) in models.items():
            a = run_edgekd(path, shape, seconds, precision)
            b = run_benchmark_app(path, shape, seconds, a["precision"])
            runs[name]["edgekd"].append(a)
            runs[name]["benchmark_app"].append(b)
            print(f"round {r + 1}/{rounds} {name} {'x'.join(map(str, shape))}: edgekd median {a['median']:.3f} ms "
                  f"(mean {a['mean']:.3f}, {a['precision']}), benchmark_app median {b['median']:.3f} ms "
                  f"(average {b['mean']:.3f}, {b['precision']})", flush=True)
    return runs


def within(ratio: float) -> bool:
    """edgekd within 5% of benchmark_app; 5% itself passes (rounding must not fail the boundary)."""
    return abs(ratio - 1.0) <= TOLERANCE + 1e-9


def table(models: dict[str, tuple[Path, tuple[int, int, int, int]]],
          runs: dict[str, dict[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Median over rounds of each tool's median (and mean); the ratio and the 5% verdict."""
    rows = []
    for name, (path, shape) in models.items():
        a, b = runs[name]["edgekd"], runs[name]["benchmark_app"]
        am, bm = statistics.median(x["median"] for x in a), statistics.median(x["median"] for x in b)
        same = all(PRECISIONS.get(x["precision"], ("", ""))[1] == y["precision"] for x, y in zip(a, b, strict=True))
        rows.append({"model": name, "file": path.name, "shape": "x".join(map(str, shape)), "edgekd_median_ms": am,
                     "edgekd_mean_ms": statistics.median(x["mean"] for x in a), "benchmark_app_median_ms": bm,
                     "benchmark_app_average_ms": statistics.median(x["mean"] for x in b), "ratio": am / bm,
                     "within_5pct": within(am / bm), "same_precision": same,
                     "precision": a[0]["precision"], "at_least_5ms": min(am, bm) >= 5.0,
                     "edgekd_contended": any(x["contended"] for x in a), "rounds": len(a)})
    print_table(["model", "shape", "precision", "edgekd median ms", "benchmark_app median ms", "ratio",
                 "within 5%?", "edgekd mean ms", "benchmark_app avg ms", ">= 5 ms?"],
                [[r["model"], r["shape"], r["precision"] + ("" if r["same_precision"] else " (MISMATCH)"),
                  f"{r['edgekd_median_ms']:.3f}", f"{r['benchmark_app_median_ms']:.3f}", f"{r['ratio']:.3f}",
                  "yes" if r["within_5pct"] else "NO", f"{r['edgekd_mean_ms']:.3f}",
                  f"{r['benchmark_app_average_ms']:.3f}", "yes" if r["at_least_5ms"] else "no: pick a larger size"]
                 for r in rows])
    return rows


def _hw(text: str) -> tuple[int, int]:
    h, w = text.lower().split("x")
    return int(h), int(w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="A B rounds per model")
    ap.add_argument("--seconds", type=float, default=10.0, help="timed seconds per run of each tool (-t)")
    ap.add_argument("--det-size", type=_hw, default=(640, 640), help="HxW of the detector's input")
    ap.add_argument("--rec-size", type=_hw, default=(48, 320), help="HxW of the recogniser's input")
    ap.add_argument("--cls-size", type=_hw, default=(96, 640),
                    help="HxW of the classifier's input (48x192, its usual size, runs in under 5 ms)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="edgekd profile --precision")
    ap.add_argument("--json", type=Path, help="also write the rows and every run here")
    args = ap.parse_args()
    t0 = time.perf_counter()
    models = find_models({"det": args.det_size, "rec": args.rec_size, "cls": args.cls_size})
    runs = measure(models, args.rounds, args.seconds, args.precision)
    rows = table(models, runs)
    took = time.perf_counter() - t0
    print(f"took {took:.0f} s ({args.rounds} round(s), {args.seconds:g} s per run); "
          f"{sum(r['within_5pct'] for r in rows)}/{len(rows)} within 5%")
    if any(r["edgekd_contended"] for r in rows):
        print("note: edgekd found the CPUs contended during a run: measure again on a quiet machine")
    if args.json:
        from edgekd.fileio import write_json

        write_json(args.json, {"rows": rows, "runs": runs, "seconds": took})


if __name__ == "__main__":
    main()
