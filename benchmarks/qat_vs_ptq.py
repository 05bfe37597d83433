"""Quantization-aware distillation vs post-training INT8, on a recipe's metric, in ONNX Runtime.

For one recipe (default: gaze, angular error in degrees, lower is better) and one trained
teacher, each student seed trains from the same initialisation, data order and distillation
losses:

- ``ort_fp32``: distilled in FP32, exported with :func:`edgekd.export.onnx.export_onnx`; then
  quantized post-training with ONNX Runtime static INT8 (QDQ, U8S8,
  :func:`edgekd.quantize.ort_static.quantize_onnx_static`, the recipe's calibration method and
  sample count from the train split): ``ptq_all`` (every op type ONNX Runtime can quantize:
  what the pipeline ships) and ``ptq_mm`` (Conv/MatMul/Gemm only: the op set QAT quantizes);
- ``qat``: distilled with fake quantization from the start (``fit(..., qat=True)``, see
  :mod:`edgekd.quantize.fake_quant`: per-tensor uint8 activations, int8 weights, around every
  Conv/Linear), exported as QDQ ONNX with :func:`edgekd.quantize.fake_quant.export_qdq_onnx` (scales
  learnt in training, no calibration); ``--no-scratch-qat`` skips it;
- ``qat_ft`` (``--finetune-epochs N``, default 1): the FP32 student fine-tuned N more epochs at
  lr/10 with fake quantization (QAT from trained weights, as Jacob et al. 2018 do), and its
  control ``ft_fp32`` -> ``ft_ptq_all`` / ``ft_ptq_mm``: the same N epochs without fake
  quantization, then PTQ. Only quantization-awareness differs between the two.

``qat_ft_rq`` (and ``wB_qat_ft_rq``): the same QAT weights re-quantized by ONNX Runtime static QDQ
(``distill.qat.export: requantize``, :func:`edgekd.quantize.fake_quant.strip_qat`); ``--latency`` times the first
seed's FP32, PTQ and QAT artifacts side by side.

``--weight-bits B`` (B < 8) swaps the 8-bit ``qat_ft`` arm for a low-bit one: ``wB_qat_ft``
(QAT fine-tune with B-bit weights, 8-bit activations) vs ``wB_ptq`` (the control's weights
rounded to B bits, activation ranges calibrated on the calibration samples, no training); the
same quantizer and the same exact int8 QDQ export (:func:`edgekd.quantize.fake_quant.bake_low_bit_weights`)
for both, run by ONNX Runtime's int8 kernels. ``wB_ptq_mse`` is the stronger post-training
baseline: weight scales chosen by rounding MSE (:mod:`edgekd.quantize.weight_range`, Nagel et al.
2021 sec. 3.4.1), then activation ranges calibrated; QAT is judged against the better of the two.

``--per-tensor`` uses one weight scale per tensor in PTQ and QAT alike (default: the recipe's
``quantize.per_channel``, per-channel for gaze). Every artifact is scored by the task's own
metric on the test split through ONNX Runtime (CPU). Printed: one row per seed, the mean over
seeds, and how often each QAT arm beats the better PTQ variant of its like-for-like control.

    python benchmarks/qat_vs_ptq.py [--recipe gaze] [--preset quick] [--seeds 0 1 2]
        [--set task.train_size=1500 ...] [--per-tensor] [--finetune-epochs 1] [--no-scratch-qat]
        [--weight-bits 4]

The teacher is trained once (task data seed = recipe seed) and cached like the pipeline's
(``edgekd.pipeline.teacher_source.obtain_teacher``); the seeds vary the student's training seed.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import add_seeds, mean_std

ARMS = ("torch_fp32", "ort_fp32", "ptq_all", "ptq_mm", "qat", "ft_fp32", "ft_ptq_all", "ft_ptq_mm", "qat_ft",
        "qat_ft_rq", *(f"w{b}_{a}" for b in range(2, 8) for a in ("ptq", "ptq_mse", "qat_ft", "qat_ft_rq")))
# Gaze sizes that keep the whole benchmark near 15 minutes on 2 shared CPU cores (measured);
# other recipes run at their preset's sizes.
DEFAULT_SETS = {"gaze": ["task.train_size=1500", "task.val_size=200", "task.test_size=600",
                         "teacher.train.epochs=4", "train.epochs=4", "quantize.calibration.samples=128"]}


def ort_metric(task: Any, path: Path, threads: int) -> float:
    from edgekd.runtime import SessionOptions, get_runtime
    from edgekd.runtime.predict import session_predict

    sess = get_runtime("onnxruntime").load(path, SessionOptions(threads=threads))
    return float(task.evaluate(session_predict(sess), split="test").metric)


def torch_metric(task: Any, model: torch.nn.Module) -> float:
    from edgekd.tasks.base import torch_predict

    return float(task.evaluate(torch_predict(model, task.io_spec()), split="test").metric)


def val_metric(task: Any) -> Any:
    """The validation metric each epoch (best epoch kept), as the pipeline does."""
    from edgekd.tasks.base import torch_predict

    def val(model: torch.nn.Module) -> float:
        was = model.training
        res = float(task.evaluate(torch_predict(model, task.io_spec()), split="val").metric)
        model.train(was)
        return res

    return val


def calib_feeds(task: Any, n: int) -> Iterator[dict[str, np.ndarray]]:
    from edgekd.tasks.base import iterate_numpy

    seen = 0
    for feeds, _ in iterate_numpy(task.dataset("train"), task.io_spec().input_names, batch_size=1):
        yield feeds
        seen += 1
        if seen >= n:
            return


def fused_ops(path: Path) -> dict[str, int]:
    """Op counts of the graph ONNX Runtime actually runs (after its QDQ fusions)."""
    import collections

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        ops = collections.Counter(n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node)
    keys = ("QLinearConv", "QLinearMatMul", "MatMulIntegerToFloat", "QGemm", "Conv", "MatMul", "FusedConv",
            "FusedMatMul", "Gemm", "QuantizeLinear", "DequantizeLinear")
    return {k: ops[k] for k in keys if ops[k]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="gaze")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--set", dest="sets", action="append", default=[],
                    help="recipe override a.b=value (applied after the benchmark's defaults)")
    add_seeds(ap)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--per-tensor", action="store_true", help="per-tensor weight scales in both PTQ and QAT "
                    "(default: the recipe's quantize.per_channel)")
    ap.add_argument("--finetune-epochs", type=int, default=1,
                    help="fine-tune the FP32 student this many epochs with QAT (qat_ft) and, as the control, "
                         "without it followed by PTQ (ft_ptq_*); 0 = off")
    ap.add_argument("--weight-bits", type=int, default=8,
                    help="< 8: also compare low-bit weights (int8 activations): wB_ptq (the fine-tuned FP32 "
                         "control, weights rounded to B bits, activation ranges calibrated) vs wB_qat_ft (QAT "
                         "fine-tune with B-bit weights); both exported exactly as int8 QDQ and run in ORT. "
                         "Replaces the 8-bit qat_ft arm")
    ap.add_argument("--no-fold-bn", dest="fold_bn", action="store_false",
                    help="fine-tune arms keep their BatchNorms (default: fold them into the convolutions "
                         "first, in both arms, as Jacob et al. 2018 do for QAT)")
    ap.add_argument("--no-scratch-qat", dest="scratch_qat", action="store_false",
                    help="skip the arm trained with QAT from the start (it costs ~1.8x an FP32 training)")
    ap.add_argument("--out", type=Path, default=None, help="folder for artifacts and results.json (default: temp)")
    ap.add_argument("--latency", action="store_true", help="also time the first seed's FP32, PTQ and QAT artifacts "
                    "side by side (ONNX Runtime, batch 1, --threads, 5 interleaved sessions x 200)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from edgekd.distill.fold_bn import fold_batchnorm
    from edgekd.distill.loop import fit
    from edgekd.export.onnx import export_onnx
    from edgekd.pipeline.teacher_source import obtain_teacher
    from edgekd.quantize.fake_quant import (
        bake_low_bit_weights,
        export_qdq_onnx,
        freeze_qat,
        prepare_qat,
        set_mse_weight_scales,
        strip_qat,
    )
    from edgekd.quantize.ort_static import COMPUTE_OPS, quantize_onnx_static
    from edgekd.tasks import build_task
    from edgekd.tasks.recipe import load_recipe

    recipe = load_recipe(args.recipe, [*DEFAULT_SETS.get(args.recipe, []), *args.sets], preset=args.preset)
    tmp_ctx = tempfile.TemporaryDirectory(prefix="edgekd-qat-vs-ptq-") if args.out is None else None
    out = Path(tmp_ctx.name) if tmp_ctx is not None else args.out
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    torch.manual_seed(recipe.seed)
    task = build_task(recipe.task, recipe.seed)
    spec = task.io_spec()
    t0 = time.perf_counter()
    teacher, tinfo = obtain_teacher(recipe, task, out / "teacher", progress=False)
    teacher_s = time.perf_counter() - t0
    teacher_metric = torch_metric(task, teacher)
    per_channel = recipe.quantize.per_channel and not args.per_tensor
    q = recipe.quantize.calibration
    print(f"qat_vs_ptq: recipe {recipe.name} (preset {recipe.preset}), metric {task.metric.name} "
          f"({'lower' if task.metric.lower_is_better else 'higher'} is better), train {len(task.dataset('train'))} / "
          f"test {len(task.dataset('test'))} images, {recipe.train.epochs} student epochs, "
          f"losses {[lc.kind for lc in recipe.distill.losses]}, PTQ {q.method} on {q.samples} samples, "
          f"per_channel={per_channel}; ORT {args.threads} thread(s); torch {torch.__version__}")
    print(f"teacher ({tinfo['source']}, {teacher_s:.0f} s): test {teacher_metric:.3f}")
    common = dict(train_set=task.dataset("train"), input_names=spec.input_names, cfg=recipe.train,
                  task_loss=task.task_loss, task_loss_weight=recipe.distill.task_loss_weight, teacher=teacher,
                  losses=recipe.distill.losses, val_fn=val_metric(task), lower_is_better=task.metric.lower_is_better,
                  progress=False)
    rows: list[dict[str, Any]] = []
    dummy = spec.dummy_inputs(seed=0)
    x = tuple(torch.from_numpy(dummy[n]) for n in spec.input_names)  # every input (the GUI agent has two)
    sign = 1.0 if task.metric.lower_is_better else -1.0

    def ptq(d: Path, fp32: Path, prefix: str, row: dict[str, Any]) -> None:
        for arm, ops in ((f"{prefix}ptq_all", None), (f"{prefix}ptq_mm", COMPUTE_OPS)):
            quantize_onnx_static(fp32, d / f"{arm}.onnx", calib_feeds(task, q.samples), method=q.method,
                                 per_channel=per_channel, percentile=q.percentile, op_types=ops)
            row[arm] = ort_metric(task, d / f"{arm}.onnx", args.threads)

    def calibrate(model: torch.nn.Module) -> torch.nn.Module:
        """Observer ranges from the recipe's calibration samples, in one batch (so min/max over all
        of them), in eval mode (BatchNorm statistics untouched; FakeQuantize observes in any mode)."""
        feeds = list(calib_feeds(task, q.samples))
        batch = [torch.from_numpy(np.concatenate([f[n] for f in feeds])) for n in spec.input_names]
        model.eval()
        with torch.no_grad():
            model(*batch)
        return model

    def qdq(model: torch.nn.Module, path: Path) -> float:
        export_qdq_onnx(model, x, path, input_names=list(spec.input_names), output_names=list(spec.output_names),
                        opset=recipe.export.opset)
        return ort_metric(task, path, args.threads)

    for seed in args.seeds:
        d = out / f"seed{seed}"
        d.mkdir(exist_ok=True)
        row: dict[str, Any] = {"seed": seed}
        # as the pipeline: no cache where the recipe turns it off (segmentation flips its images afresh
        # at every access, so cached teacher maps would not match the student's input)
        tcache = d / "tcache" if recipe.distill.teacher_cache else None
        t0 = time.perf_counter()
        fp = fit(task.build_student(), seed=seed, teacher_cache=tcache, **common)  # type: ignore[arg-type]
        row["train_fp32_s"] = time.perf_counter() - t0
        row["torch_fp32"] = torch_metric(task, fp.student)
        export_onnx(fp.student, spec, d / "fp32.onnx", opset=recipe.export.opset, exporter=recipe.export.exporter,
                    simplify=recipe.export.simplify)
        row["ort_fp32"] = ort_metric(task, d / "fp32.onnx", args.threads)
        ptq(d, d / "fp32.onnx", "", row)
        if args.scratch_qat:
            t0 = time.perf_counter()
            qat = fit(prepare_qat(task.build_student(), per_channel=per_channel), seed=seed, qat=True,
                      teacher_cache=tcache, **common)  # type: ignore[arg-type]
            row["train_qat_s"] = time.perf_counter() - t0
            row["qat"] = qdq(qat.student, d / "qat.onnx")
        if args.finetune_epochs > 0:
            # Same start (the FP32 student), same extra epochs, same lr: with fake quantization
            # (qat_ft) and without it, then PTQ (ft_ptq_*). Only quantization-awareness differs.
            ft_cfg = recipe.train.model_copy(update={"epochs": args.finetune_epochs, "warmup_steps": 0,
                                                     "lr": recipe.train.lr / 10})
            bits = args.weight_bits
            t0 = time.perf_counter()
            base = copy.deepcopy(fp.student).eval()
            if args.fold_bn:
                # both arms fine-tune the folded network: the tensors QAT trains are the ones PTQ
                # quantizes after export, and neither arm has BatchNorm statistics to drift
                row["bn_folded"], row["bn_left"] = fold_batchnorm(base)
            start = prepare_qat(copy.deepcopy(base), per_channel=per_channel, weight_bits=bits)
            if bits < 8:
                calibrate(start)  # low-bit weights need a sensible start for the activation ranges
            ft = fit(start.train(), seed=seed, qat=True, teacher_cache=tcache,
                     **{**common, "cfg": ft_cfg})  # type: ignore[arg-type]
            row["train_qat_ft_s"] = time.perf_counter() - t0
            name = "qat_ft" if bits == 8 else f"w{bits}_qat_ft"
            bake_low_bit_weights(freeze_qat(ft.student))
            row[name] = qdq(ft.student, d / f"{name}.onnx")
            # distill.qat.export=requantize: the QAT weights (on their grid), re-quantized by ONNX Runtime
            export_onnx(strip_qat(ft.student), spec, d / f"{name}_float.onnx", opset=recipe.export.opset,
                        exporter=recipe.export.exporter, simplify=recipe.export.simplify)
            quantize_onnx_static(d / f"{name}_float.onnx", d / f"{name}_rq.onnx", calib_feeds(task, q.samples),
                                 method=q.method, per_channel=per_channel, percentile=q.percentile)
            row[f"{name}_rq"] = ort_metric(task, d / f"{name}_rq.onnx", args.threads)
            ctl = fit(copy.deepcopy(base).train(), seed=seed, teacher_cache=tcache,
                      **{**common, "cfg": ft_cfg})  # type: ignore[arg-type]
            export_onnx(ctl.student, spec, d / "ft_fp32.onnx", opset=recipe.export.opset,
                        exporter=recipe.export.exporter, simplify=recipe.export.simplify)
            row["ft_fp32"] = ort_metric(task, d / "ft_fp32.onnx", args.threads)
            ptq(d, d / "ft_fp32.onnx", "ft_", row)
            if bits < 8:
                # PTQ with the same quantizer as QAT (same scheme, same exact export): round the
                # control's weights to B bits, calibrate the activation ranges, no training.
                low = calibrate(prepare_qat(copy.deepcopy(ctl.student), per_channel=per_channel, weight_bits=bits))
                bake_low_bit_weights(freeze_qat(low))
                row[f"w{bits}_ptq"] = qdq(low, d / f"w{bits}_ptq.onnx")
                # the stronger post-training baseline: weight ranges chosen by rounding MSE
                # (edgekd.quantize.weight_range), set before the activation ranges are calibrated
                # so that those see the low-bit weights
                low = prepare_qat(copy.deepcopy(ctl.student), per_channel=per_channel, weight_bits=bits)
                set_mse_weight_scales(low)
                bake_low_bit_weights(freeze_qat(calibrate(low)))
                row[f"w{bits}_ptq_mse"] = qdq(low, d / f"w{bits}_ptq_mse.onnx")
        row["ops"] = {a: fused_ops(d / f"{a}.onnx") for a in ("ptq_all", "ptq_mm", "qat", "qat_ft", "qat_ft_rq",
                                                               f"w{args.weight_bits}_qat_ft",
                                                               f"w{args.weight_bits}_qat_ft_rq")
                      if (d / f"{a}.onnx").exists()}
        rows.append(row)
        arms = [a for a in ARMS if a in row and a not in ("torch_fp32",)]
        print(f"seed {seed}: " + ", ".join(f"{a} {row[a]:.3f}" for a in arms)
              + f" | train {row['train_fp32_s']:.0f} s fp32" + (f", {row['train_qat_s']:.0f} s qat"
                                                                 if "train_qat_s" in row else ""))
        print(f"  ORT-optimised int8 graphs: {json.dumps(row['ops'])}")

    arms = [a for a in ARMS if a in rows[0]]
    print(f"mean over {len(rows)} seed(s) ({task.metric.name}, test split, ORT, {len(task.dataset('test'))} images):")
    for a in arms:
        vals = [r[a] for r in rows]
        base = "ft_fp32" if a.startswith(("ft_", "w", "qat_ft")) else "ort_fp32"
        drops = [r[a] - r[base] for r in rows]
        m, sd = mean_std(vals)
        print(f"  {a:12s} {m:.3f} +- {sd:.3f}   change vs {base} {statistics.mean(drops):+.3f}")
    low = f"w{args.weight_bits}"
    if f"{low}_qat_ft" in rows[0]:
        best = [min(r[f"{low}_ptq"], r[f"{low}_ptq_mse"], key=lambda v: sign * v) for r in rows]
        for qa in (f"{low}_qat_ft", f"{low}_qat_ft_rq"):
            wins = sum(sign * (r[qa] - b) < 0 for r, b in zip(rows, best, strict=True))
            print(f"{qa} better than the better of {low}_ptq/{low}_ptq_mse in {wins}/{len(rows)} seeds (mean "
                  f"{statistics.mean(r[qa] for r in rows):.3f} vs {statistics.mean(best):.3f})")
    for qa, prefix in (("qat", ""), ("qat_ft", "ft_"), ("qat_ft_rq", "ft_")):
        if qa not in rows[0]:
            continue
        best = [min(r[f"{prefix}ptq_all"], r[f"{prefix}ptq_mm"], key=lambda v: sign * v) for r in rows]
        wins = sum(sign * (r[qa] - b) < 0 for r, b in zip(rows, best, strict=True))
        print(f"{qa} INT8 better than the better of {prefix}ptq_all/{prefix}ptq_mm in {wins}/{len(rows)} seeds "
              f"(mean {statistics.mean(r[qa] for r in rows):.3f} vs {statistics.mean(best):.3f})")
    if args.latency and args.finetune_epochs > 0:
        from edgekd.profile.protocol import MeasureConfig, ProfileTarget, profile_artifacts
        from edgekd.runtime import SessionOptions

        d = out / f"seed{args.seeds[0]}"
        qa = "qat_ft" if args.weight_bits == 8 else f"w{args.weight_bits}_qat_ft"
        names = ["ft_fp32", "ft_ptq_all", "ft_ptq_mm", qa, f"{qa}_rq"]
        feeds = next(iter(calib_feeds(task, 1)))
        targets = [ProfileTarget(d / f"{n}.onnx", "onnxruntime", SessionOptions(threads=args.threads), feeds, label=n)
                   for n in names]
        reps = profile_artifacts(targets, MeasureConfig(sessions=5, iterations=200), progress=False)
        base_ms = reps[0].latency_ms["p50"]
        print(f"latency, seed {args.seeds[0]}'s artifacts, batch 1, {args.threads} thread(s), interleaved (p50):")
        for n, r in zip(names, reps, strict=True):
            print(f"  {n:16s} {r.latency_ms['p50']:.3f} ms  ({r.latency_ms['p50'] / base_ms:.2f}x ft_fp32)")
    print(f"total {time.perf_counter() - t_start:.0f} s")
    from edgekd.fileio import write_json

    write_json(out / "results.json", {"recipe": recipe.name, "teacher_metric": teacher_metric, "rows": rows})
    if tmp_ctx is not None:
        tmp_ctx.cleanup()


if __name__ == "__main__":
    main()
