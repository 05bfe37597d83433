"""The DFT Gaze protocol (GazeGen, arXiv:2411.04335) on held-out synthetic wearers.

For each seed (data and initialisation both change with it):
  1. teacher: FCMAE-style masked-autoencoder pre-training on unlabelled wearers, then supervised
     training on the generalised-phase data (train split balanced over 15 k-means gaze clusters);
  2. student from scratch (supervised only);
  3. student with MAE distillation (stage 1 copied from the teacher; output regression + masked
     pixel reconstruction + gamma=0.5 x stage-3/4 feature MSE, as recipes/gaze.yaml);
  4. mean angular error of all three on the held-out test wearers, the gap of each student to the
     teacher's error, and fidelity: the mean angle between each student's and the teacher's predictions;
  5. 5-shot personalisation of the distilled student (last-stage adapters only) on each test wearer:
     error on that wearer's test images before and after.
Then, on this CPU: latency of teacher and student side by side (ONNX Runtime FP32, 1 thread,
interleaved sessions; torch eager too), the student's INT8 latency (static QDQ U8S8, all ops and
MatMul-only, and dynamic: what recipes/gaze.yaml ships), and the student/teacher ratio. Latency uses
the recipe's 64x96 input even when training used a smaller one (the networks are fully convolutional
with global pooling, so trained weights run at any size).

Usage: python benchmarks/gaze_protocol.py --parallel [--seeds 0 1 2 3 4] [--height 32 --width 48] [--tiny]
Defaults: 5 seeds, 3000 training images at 32x48, teacher 20 epochs, students 10, output-KD weight 0.5.
Measured with --parallel on 2 cores: 1350 s (teachers 680 s of each worker's time). ``--teachers DIR``
loads the teachers an earlier run saved in its work folder (same data and teacher settings): 573 s.
``--tiny`` checks the script in ~1 min.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import add_seeds, mean_std


def _train_cfg(epochs: int, lr: float = 4e-3, warmup: int = 50) -> Any:
    from edgekd.config.recipe import TrainConfig

    return TrainConfig(epochs=epochs, batch_size=64, lr=lr, weight_decay=0.05, warmup_steps=warmup,
                       schedule="cosine")


def _kd_losses(output_weight: float = 0.5) -> list[Any]:
    from edgekd.distill.losses.mae_feature import MAEFeatureConfig
    from edgekd.distill.losses.regression import RegressionConfig

    return [RegressionConfig(loss="l1", weight=output_weight),
            MAEFeatureConfig(student=["stages.2", "stages.3"], teacher=["stages.2", "stages.3"], mask_ratio=0.5,
                             patch_size=8, image_channels=1, feature_weight=0.5, pixel_weight=1.0)]


def _eval(task: Any, model: Any, split: str = "test") -> float:
    from edgekd.tasks.base import torch_predict

    return float(task.evaluate(torch_predict(model, task.io_spec()), split).metric)


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    from edgekd.distill.loop import fit
    from edgekd.pipeline.teacher_source import val_fn
    from edgekd.tasks.gaze import GazeTaskConfig, synth
    from edgekd.tasks.gaze.config import GazeMAEConfig
    from edgekd.tasks.gaze.metric import mean_angular_error_deg
    from edgekd.tasks.gaze.personalize import PersonalizeConfig, personalize
    from edgekd.tasks.gaze.task import GazeTask, param_counts

    cfg = GazeTaskConfig(height=args.height, width=args.width, train_size=args.train_size,
                         val_size=args.val_size, test_size=args.test_size, train_wearers=args.train_wearers,
                         val_wearers=4, test_wearers=args.test_wearers, balance_clusters=args.clusters,
                         label_fraction=args.label_fraction,
                         mae=GazeMAEConfig(enabled=args.mae_images > 0, images=max(8, args.mae_images),
                                           epochs=args.mae_epochs, batch_size=64, lr=2e-3,
                                           finetune=args.teacher_finetune))
    task = GazeTask(cfg, seed=seed)
    out: dict[str, Any] = {"seed": seed}
    t0 = time.perf_counter()
    train_set = task.dataset("train")
    names = task.io_spec().input_names
    val = val_fn(task)
    out["data_s"] = time.perf_counter() - t0

    torch.manual_seed(seed)
    teacher = task.build_teacher()
    saved = args.teachers / f"teacher{seed}.safetensors" if args.teachers is not None else None
    t = time.perf_counter()
    if saved is not None:
        # the teacher an earlier run of this script trained with the same data and teacher settings (the
        # students' runs never change it; fit reseeds, so what follows is as if it had been trained here)
        from edgekd.weights import load_module_weights

        teacher = load_module_weights(teacher, saved).eval()
        out["mae"] = {"loaded": str(saved)}
    else:
        pre = task.pretrain_teacher(teacher)
        out["mae"] = {k: pre[k] for k in ("masked_pixel_mse", "seconds") if k in pre}
        teacher = fit(teacher, train_set=train_set, input_names=names, cfg=_train_cfg(args.teacher_epochs),
                      task_loss=task.task_loss, val_fn=val, seed=seed, progress=False, desc="teacher").student
    out["teacher_s"] = time.perf_counter() - t
    task._teacher = teacher  # build_student copies stage 1 from the TRAINED teacher

    t = time.perf_counter()
    scratch = fit(task.build_student(init="scratch"), train_set=train_set, input_names=names,
                  cfg=_train_cfg(args.student_epochs), task_loss=task.task_loss, val_fn=val, seed=seed,
                  progress=False, desc="scratch").student
    out["scratch_s"] = time.perf_counter() - t
    t = time.perf_counter()
    kd = fit(task.build_student(), train_set=train_set, input_names=names, cfg=_train_cfg(args.student_epochs),
             task_loss=task.task_loss, teacher=teacher, losses=_kd_losses(args.kd_weight), val_fn=val, seed=seed,
             progress=False, desc="kd").student
    out["kd_s"] = time.perf_counter() - t
    out["params"] = param_counts(teacher, kd)
    out["test_deg"] = {"teacher": _eval(task, teacher), "student_mae_kd": _eval(task, kd),
                       "student_scratch": _eval(task, scratch)}
    # Fidelity (Stanton et al., "Does Knowledge Distillation Really Work?", NeurIPS 2021): how far a
    # student's predictions are from the teacher's, image by image (mean angle between the two gazes).
    x_test = torch.from_numpy(task.arrays("test").images).float() / 255.0
    with torch.no_grad():
        t_pred = teacher.eval()(x_test).double().numpy()
        out["to_teacher_deg"] = {name: mean_angular_error_deg(m.eval()(x_test).double().numpy(), t_pred)
                                 for name, m in (("student_mae_kd", kd), ("student_scratch", scratch))}

    # 5-shot personalisation on each held-out test wearer
    pcfg = PersonalizeConfig(steps=args.personal_steps, seed=seed)
    test = task.arrays("test")
    per: list[dict[str, float]] = []
    t = time.perf_counter()
    for k in range(cfg.test_wearers):
        wid = synth.WEARER_BASE["test"] + k
        sel = test.wearer == wid
        shots = synth.generate(cfg, np.full(args.shots, wid), seed, synth.STREAM["personal"] * 1000 + k)
        res = personalize(kd, torch.from_numpy(shots.images).float() / 255.0, torch.from_numpy(shots.gaze), pcfg)
        x = torch.from_numpy(test.images[sel]).float() / 255.0
        with torch.no_grad():
            before = mean_angular_error_deg(kd(x).double().numpy(), test.gaze[sel])
            after = mean_angular_error_deg(res.model(x).double().numpy(), test.gaze[sel])
        kap = synth.wearer_params(np.array([wid]), cfg, seed)
        per.append({"wearer": k, "before": before, "after": after,
                    "kappa_h": float(kap["kappa_h"][0]), "kappa_v": float(kap["kappa_v"][0])})
    out["personal_s"] = time.perf_counter() - t
    out["personal"] = per
    b = float(np.mean([p["before"] for p in per]))
    a = float(np.mean([p["after"] for p in per]))
    out["personal_before_deg"], out["personal_after_deg"] = b, a
    out["personal_reduction"] = 1 - a / b
    out["_models"] = (teacher, kd)
    return out


def latency(args: argparse.Namespace, teacher: Any, student: Any) -> dict[str, Any]:
    from edgekd.export.onnx import export_onnx
    from edgekd.iospec import IOSpec, TensorSpec
    from edgekd.profile.protocol import MeasureConfig, ProfileTarget, profile_artifacts
    from edgekd.quantize.ort_dynamic import quantize_onnx_dynamic
    from edgekd.quantize.ort_static import quantize_onnx_static
    from edgekd.runtime import SessionOptions
    from edgekd.tasks.gaze import GazeTaskConfig, synth

    h, w = args.latency_height, args.latency_width
    spec = IOSpec(inputs=(TensorSpec("image", ("batch", 1, h, w), "float32", 0.0, 1.0),),
                  outputs=(TensorSpec("gaze", ("batch", 2), "float32"),))
    tmp = Path(tempfile.mkdtemp(prefix="gaze_protocol_"))
    calib_cfg = GazeTaskConfig(height=h, width=w)
    calib = synth.generate(calib_cfg, np.arange(args.calib) % 8, 0, synth.STREAM["unlabelled"]).images
    feeds_c = [{"image": calib[i:i + 8].astype(np.float32) / 255.0} for i in range(0, len(calib), 8)]
    paths: dict[str, Path] = {}
    for name, model in (("teacher", teacher), ("student", student)):
        paths[f"{name}_fp32"] = export_onnx(model.eval(), spec, tmp / f"{name}.onnx").path
        paths[f"{name}_int8"] = quantize_onnx_static(paths[f"{name}_fp32"], tmp / f"{name}.int8.onnx", feeds_c,
                                                     method="minmax", per_channel=True).path
    # INT8 restricted to the MatMul/Gemm (pointwise) layers: the LayerNorm/GELU/GRN between them stay FP32,
    # so a full QDQ graph pays a Quantize/Dequantize pair around every small op; both variants are timed.
    paths["student_int8_matmul"] = quantize_onnx_static(paths["student_fp32"], tmp / "student.int8mm.onnx", feeds_c,
                                                        method="minmax", per_channel=True,
                                                        op_types=("MatMul", "Gemm")).path
    # dynamic INT8 (the recipe's quantize.mode): INT8 MatMul weights, activations quantized per call, one fused
    # DynamicQuantizeMatMul node per MatMul, so no extra nodes around the small ops
    paths["student_int8_dynamic"] = quantize_onnx_dynamic(paths["student_fp32"], tmp / "student.int8dyn.onnx").path
    opts = SessionOptions(threads=args.latency_threads)
    feeds = {"image": calib[:1].astype(np.float32) / 255.0}
    targets = [ProfileTarget(p, "onnxruntime", opts, feeds, label=f"ort_{n}") for n, p in paths.items()]
    targets += [ProfileTarget.from_module(m, spec, opts, feeds, label=f"torch_{n}_fp32")
                for n, m in (("teacher", teacher), ("student", student))]
    mc = MeasureConfig(warmup_iters=10, sessions=args.sessions, iterations=args.iterations, min_duration_s=1.0)
    reps = profile_artifacts(targets, mc, interleave=True, progress=False)
    out: dict[str, Any] = {}
    for tg, rep in zip(targets, reps, strict=True):
        d = rep.to_json()
        out[tg.name] = {"p50_ms": float(d["results"]["latency_ms"]["p50"]),
                        "p90_ms": d["results"]["latency_ms"].get("p90"), "valid": d["valid"],
                        "session_medians_ms": d["results"]["session_medians_ms"]}
    # INT8 accuracy check of the student: angle between FP32 and INT8 outputs on the calibration-free images
    from edgekd.runtime import get_runtime
    from edgekd.tasks.gaze.metric import mean_angular_error_deg

    test = synth.generate(calib_cfg, 200_000 + np.arange(64) % 8, 1, synth.STREAM["test"])
    x = test.images.astype(np.float32) / 255.0
    rt = get_runtime("onnxruntime")
    y32 = rt.load(paths["student_fp32"], opts).run({"image": x})[0]
    for key, name in (("student_int8_vs_fp32_deg", "student_int8"), ("student_int8_dynamic_vs_fp32_deg",
                                                                       "student_int8_dynamic")):
        y8 = rt.load(paths[name], opts).run({"image": x})[0]
        out[key] = mean_angular_error_deg(np.asarray(y8, np.float64), np.asarray(y32, np.float64))
    return out


def _run_parallel(raw: list[str], seeds: list[int], args: argparse.Namespace) -> list[dict[str, Any]]:
    """One worker process per seed; returns their results with the seed-0 models loaded."""
    import json
    import subprocess

    from edgekd.tasks.gaze import models
    from edgekd.tasks.gaze.config import GazeModelConfig
    from edgekd.weights import load_module_weights

    work = Path(tempfile.mkdtemp(prefix="gaze_protocol_work_"))
    procs = []
    for s in seeds:
        log = (work / f"seed{s}.log").open("w")
        cmd = [sys.executable, str(Path(__file__).resolve()), *raw, "--only-seed", str(s), "--work", str(work)]
        procs.append((s, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log))
    for s, p, log in procs:
        rc = p.wait()
        log.close()
        if rc != 0:
            tail = (work / f"seed{s}.log").read_text()[-3000:]
            raise SystemExit(f"seed {s} worker failed (rc {rc}):\n{tail}")
    runs = [json.loads((work / f"seed{s}.json").read_text()) for s in seeds]
    cfg = GazeModelConfig()
    teacher = load_module_weights(models.build_teacher(cfg), work / f"teacher{seeds[0]}.safetensors").eval()
    student = load_module_weights(models.build_student(cfg), work / f"student{seeds[0]}.safetensors").eval()
    print(f"(per-seed logs and weights in {work})")
    runs[0]["_models"] = (teacher, student)
    return runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_seeds(ap, default=(0, 1, 2, 3, 4))
    ap.add_argument("--height", type=int, default=32)
    ap.add_argument("--width", type=int, default=48)
    ap.add_argument("--train-size", type=int, default=3000)
    ap.add_argument("--val-size", type=int, default=200)
    ap.add_argument("--test-size", type=int, default=600)
    ap.add_argument("--train-wearers", type=int, default=40)
    ap.add_argument("--test-wearers", type=int, default=10)
    ap.add_argument("--clusters", type=int, default=15, help="k-means gaze clusters balancing the train split")
    ap.add_argument("--label-fraction", type=float, default=1.0,
                    help="share of train images with a gaze label (task.label_fraction): the teacher and the "
                         "scratch student learn from that share, the distilled student also from the teacher's "
                         "outputs on every image")
    ap.add_argument("--mae-images", type=int, default=1000, help="unlabelled images (0 = no MAE pre-training)")
    ap.add_argument("--mae-epochs", type=int, default=2)
    ap.add_argument("--teacher-finetune", choices=("full", "adapters"), default="full",
                    help="after MAE pre-training, the teacher's supervised phase trains every weight (full) or "
                         "only the adapters and head on the frozen backbone (adapters)")
    ap.add_argument("--teacher-epochs", type=int, default=20,
                    help="the teacher trains twice as long as the students: it is trained once and reused")
    ap.add_argument("--student-epochs", type=int, default=10)
    ap.add_argument("--teachers", type=Path, default=None,
                    help="folder holding teacher<seed>.safetensors of an earlier run with the SAME data and teacher "
                         "settings (its printed work folder): load them instead of training the teachers again")
    ap.add_argument("--kd-weight", type=float, default=0.5,
                    help="weight of the output regression to the teacher (L1 in degrees; as recipes/gaze.yaml)")
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--personal-steps", type=int, default=200)
    ap.add_argument("--latency-height", type=int, default=64)
    ap.add_argument("--latency-width", type=int, default=96)
    ap.add_argument("--latency-threads", type=int, default=1)
    ap.add_argument("--sessions", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--calib", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes: checks that the script runs (seconds)")
    ap.add_argument("--parallel", action="store_true", help="one process per seed (each with --threads torch "
                    "threads), results combined here")
    ap.add_argument("--only-seed", type=int, default=None, help=argparse.SUPPRESS)  # a --parallel worker
    ap.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    raw = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    if args.tiny:
        args.seeds, args.train_size, args.val_size, args.test_size = args.seeds[:2], 128, 16, 32
        args.train_wearers, args.test_wearers, args.mae_images, args.mae_epochs = 8, 2, 64, 1
        args.teacher_epochs = args.student_epochs = 1
        args.personal_steps, args.sessions, args.iterations, args.calib = 10, 1, 10, 16
    torch.set_num_threads(args.threads)
    t_all = time.perf_counter()
    print(f"gaze protocol: seeds {args.seeds}, train {args.train_size} images at {args.height}x{args.width} "
          f"({args.train_wearers} wearers, balanced over {args.clusters} gaze clusters), test {args.test_size} "
          f"images of {args.test_wearers} held-out wearers, {100 * args.label_fraction:.0f}% of train labelled; "
          f"MAE pre-training {args.mae_images} unlabelled images x "
          f"{args.mae_epochs} epochs; teacher {args.teacher_epochs} ({args.teacher_finetune}) / students "
          f"{args.student_epochs} epochs (output KD weight {args.kd_weight}); "
          f"torch threads {args.threads}", flush=True)
    if args.only_seed is not None:  # worker of --parallel: results and seed-0 models into --work
        from edgekd.fileio import write_json
        from edgekd.weights import save_module_weights

        r = run_seed(args, args.only_seed)
        save_module_weights(r["_models"][0], args.work / f"teacher{args.only_seed}.safetensors")
        save_module_weights(r["_models"][1], args.work / f"student{args.only_seed}.safetensors")
        write_json(args.work / f"seed{args.only_seed}.json", {k: v for k, v in r.items() if k != "_models"})
        return 0
    seeds = list(args.seeds)
    if args.parallel:
        runs = _run_parallel(raw, seeds, args)
    else:
        runs = [run_seed(args, s) for s in seeds]
    for r in runs:
        s = r["seed"]
        td = r["test_deg"]
        print(f"seed {s}: teacher {td['teacher']:.2f} deg, student MAE-KD {td['student_mae_kd']:.2f}, "
              f"scratch {td['student_scratch']:.2f}; 5-shot personalisation {r['personal_before_deg']:.2f} -> "
              f"{r['personal_after_deg']:.2f} deg ({100 * r['personal_reduction']:.0f}% less) | times: data "
              f"{r['data_s']:.0f}s, MAE {r['mae'].get('seconds', 0):.0f}s, teacher {r['teacher_s']:.0f}s, scratch "
              f"{r['scratch_s']:.0f}s, kd {r['kd_s']:.0f}s, personal {r['personal_s']:.0f}s", flush=True)
        if "masked_pixel_mse" in r["mae"]:
            print(f"  MAE masked-pixel MSE per epoch: {[round(v, 4) for v in r['mae']['masked_pixel_mse']]}")
        print("  per wearer (before -> after, kappa h/v): " + "; ".join(
            f"{p['before']:.1f}->{p['after']:.1f} ({p['kappa_h']:+.1f}/{p['kappa_v']:+.1f})" for p in r["personal"]),
            flush=True)
    pc = runs[0]["params"]
    print(f"\nparameters: teacher {pc['teacher']:,} ({pc['teacher_no_adapters']:,} without adapters), student "
          f"{pc['student']:,} ({pc['student_no_adapters']:,} without adapters)")

    def ms(key: str) -> tuple[float, float]:
        return mean_std([r["test_deg"][key] for r in runs])

    print(f"\nmean angular error on held-out wearers over {len(runs)} seeds (mean +- std):")
    summary: dict[str, Any] = {"seeds": len(runs)}
    for key in ("teacher", "student_mae_kd", "student_scratch"):
        m, sd = ms(key)
        summary[key] = {"mean_deg": m, "std_deg": sd}
        print(f"  {key:16s} {m:6.2f} +- {sd:.2f} deg")
    gap_kd = [abs(r["test_deg"]["student_mae_kd"] - r["test_deg"]["teacher"]) for r in runs]
    gap_sc = [abs(r["test_deg"]["student_scratch"] - r["test_deg"]["teacher"]) for r in runs]
    print(f"  gap to the teacher: MAE-KD student {np.mean(gap_kd):.2f} deg, scratch student {np.mean(gap_sc):.2f} deg"
          f" -> distilled student nearer the teacher: {np.mean(gap_kd) < np.mean(gap_sc)} "
          f"(per seed: {[bool(a < b) for a, b in zip(gap_kd, gap_sc, strict=True)]})")
    fid_kd = [r["to_teacher_deg"]["student_mae_kd"] for r in runs]
    fid_sc = [r["to_teacher_deg"]["student_scratch"] for r in runs]
    summary["to_teacher_deg"] = {"student_mae_kd": float(np.mean(fid_kd)), "student_scratch": float(np.mean(fid_sc))}
    print(f"  mean angle between student and teacher predictions (fidelity): MAE-KD student {np.mean(fid_kd):.2f} "
          f"deg, scratch student {np.mean(fid_sc):.2f} deg (per seed: "
          f"{[f'{a:.2f}/{b:.2f}' for a, b in zip(fid_kd, fid_sc, strict=True)]})")
    red = np.array([r["personal_reduction"] for r in runs])
    bef = np.array([r["personal_before_deg"] for r in runs])
    aft = np.array([r["personal_after_deg"] for r in runs])
    summary["personalisation"] = {"before_deg": float(bef.mean()), "after_deg": float(aft.mean()),
                                  "reduction_mean": float(red.mean()), "reduction_std": float(red.std(ddof=1))
                                  if len(red) > 1 else 0.0}
    print(f"5-shot personalisation (last-stage adapters, {args.personal_steps} steps) on {args.test_wearers} new "
          f"wearers: {bef.mean():.2f} -> {aft.mean():.2f} deg, error reduced by {100 * red.mean():.1f} +- "
          f"{100 * (red.std(ddof=1) if len(red) > 1 else 0):.1f}% (target >= 33.3%: {red.mean() >= 1 / 3})",
          flush=True)

    teacher, student = runs[0]["_models"]
    for r in runs:
        r.pop("_models", None)
    t = time.perf_counter()
    lat = latency(args, teacher, student)
    p = {k: v["p50_ms"] for k, v in lat.items() if isinstance(v, dict)}
    print(f"\nlatency at {args.latency_height}x{args.latency_width}, batch 1, {args.latency_threads} thread(s), "
          f"interleaved sessions (p50 ms; measured in {time.perf_counter() - t:.0f}s):")
    for k, v in lat.items():
        if isinstance(v, dict):
            print(f"  {k:20s} p50 {v['p50_ms']:.3f} ms  session medians {[round(x, 3) for x in v['session_medians_ms']]}"
                  f"{'' if v['valid'] else '  (INVALID)'}")
    r_ort = p["ort_student_fp32"] / p["ort_teacher_fp32"]
    r_torch = p["torch_student_fp32"] / p["torch_teacher_fp32"]
    best8 = min(("ort_student_int8", "ort_student_int8_matmul", "ort_student_int8_dynamic"), key=lambda k: p[k])
    r_int8 = p[best8] / p["ort_teacher_fp32"]
    print(f"  student/teacher latency ratio: ORT FP32 {r_ort:.2f}, torch eager {r_torch:.2f} (target <= 0.5: "
          f"{r_ort <= 0.5}); best student INT8 ({best8}) / teacher FP32 {r_int8:.2f}; student INT8 vs FP32 "
          f"speed-up {p['ort_student_fp32'] / p[best8]:.2f}x (INT8 faster still: {p[best8] < p['ort_student_fp32']})")
    print(f"  student INT8 vs FP32 outputs: mean angle {lat['student_int8_vs_fp32_deg']:.3f} deg (static), "
          f"{lat['student_int8_dynamic_vs_fp32_deg']:.3f} deg (dynamic)")
    summary["latency"] = {**lat, "ratio_ort_fp32": r_ort, "ratio_torch": r_torch, "ratio_int8_vs_teacher_fp32": r_int8}
    print(f"\ntotal {time.perf_counter() - t_all:.0f}s")
    if args.json:
        from edgekd.fileio import write_json

        write_json(args.json, {"summary": summary, "runs": [{k: v for k, v in r.items() if k != "_models"}
                                                            for r in runs], "args": vars(args)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
