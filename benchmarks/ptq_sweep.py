"""Which post-training INT8 settings cost accuracy on a trained student? One recipe, one run folder.

Quantizes the run's ``student.onnx`` with ONNX Runtime static QDQ in every combination of weight
granularity (per-channel / per-tensor), activation type (uint8 asymmetric / int8 "symmetric") and
calibration (min/max, percentile, entropy; entropy only with int8 activations), calibrated on the
first 64 training items, and scores each on the test split with the recipe's own metric, next to
the FP32 ONNX model. A setting that loses accuracy here is one where quantization-aware training
has something to recover (benchmarks/qat_vs_ptq.py).

    python benchmarks/ptq_sweep.py RECIPE RUN_DIR [--samples 64]   # e.g. segmentation runs/segmentation
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe")
    ap.add_argument("run", type=Path, help="a distill-and-export run folder (holds student.onnx)")
    ap.add_argument("--samples", type=int, default=64, help="calibration items from the train split")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from edgekd.quantize.ort_static import quantize_onnx_static
    from edgekd.runtime import SessionOptions, get_runtime
    from edgekd.runtime.predict import session_predict
    from edgekd.tasks import build_task
    from edgekd.tasks.base import iterate_numpy
    from edgekd.tasks.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    task = build_task(recipe.task, recipe.seed)
    spec = task.io_spec()
    calib = [b for b, _ in iterate_numpy(task.dataset("train"), spec.input_names, 1)][:args.samples]
    ort = get_runtime("onnxruntime")

    def score(path: Path) -> float:
        return float(task.evaluate(session_predict(ort.load(path, SessionOptions(threads=1))), split="test").metric)

    fp32 = args.run / "student.onnx"
    base = score(fp32)
    print(f"{recipe.name}: {task.metric.name} ({'lower' if task.metric.lower_is_better else 'higher'} is better), "
          f"test split, {len(calib)} calibration items")
    print(f"{'weights':<12}{'activations':<13}{'calibration':<13}{'metric':>9}{'change':>9}")
    print(f"{'FP32':<38}{base:>9.4f}")
    with tempfile.TemporaryDirectory(prefix="edgekd-ptq-sweep-") as tmp:
        for per_channel in (True, False):
            for act in ("uint8", "int8"):
                for method in ("minmax", "percentile", "entropy"):
                    if method == "entropy" and act == "uint8":
                        continue  # the entropy (KL) search here is the symmetric one
                    out = Path(tmp) / f"{per_channel}_{act}_{method}.onnx"
                    quantize_onnx_static(fp32, out, calib, method=method, per_channel=per_channel, activation=act)
                    m = score(out)
                    print(f"{'per-channel' if per_channel else 'per-tensor':<12}{act:<13}{method:<13}{m:>9.4f}"
                          f"{m - base:>+9.4f}", flush=True)


if __name__ == "__main__":
    main()
