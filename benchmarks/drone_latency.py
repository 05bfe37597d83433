"""Drone recipe: latency of the teacher pipeline with a *learned* segmenter vs the student,
side by side (batch 1, same thread count, interleaved rounds), and how well that segmenter
segments and flies.

NSER-IBVS's teacher segments the target with a network, then fits the box and runs IBVS; the
paper reports that pipeline at 20.69 ms vs 1.85 ms for the 1.7M student (about 11x). Here:

  teacher_learned        compact U-Net (task.ibvs.learned, default 1.96M params, BN folded, torch
                         eager) + largest blob + PCA box + corner order + IBVS, as IBVSTeacher runs it
  teacher_learned_ortseg the same pipeline with the U-Net run by ONNX Runtime FP32 (informative:
                         a deployed teacher could export its segmenter too)
  teacher_classical      the default colour-threshold segmenter (median, thresholds, components)
  student_torch_fp32     the 1.7M student, torch eager
  student_ort_fp32       ONNX Runtime FP32
  student_ort_int8       ORT static QDQ INT8, per-channel weights, uint8 activations (the recipe's)
  student_ort_int8_pt    the same with per-tensor weights
  student_ort_int8_cg    per-channel, only Conv/MatMul/Gemm quantized (no Q/DQ around pool, GELU)

Student weights: ``--student`` (e.g. runs/drone_bench/student_bc.safetensors), else the
untrained initialisation (same graph, same latency; INT8 is calibrated on its activations).

    python benchmarks/drone_latency.py [--preset quick] [--out runs/drone_latency]
        [--segmenter-weights FILE | --save-segmenter FILE] [--student FILE] [--no-fly]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import time_interleaved


def _runner(session: Any, nxt: Callable[[], torch.Tensor]) -> Callable[[], Any]:
    return lambda: session.run({"image": nxt().numpy()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", default="drone")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--out", type=Path, default=Path("runs/drone_latency"))
    ap.add_argument("--segmenter-weights", type=Path, default=None, help="trained U-Net (.safetensors) to load")
    ap.add_argument("--save-segmenter", type=Path, default=None, help="where to write the trained U-Net")
    ap.add_argument("--student", type=Path, default=None, help="student weights (.safetensors)")
    ap.add_argument("--no-fly", action="store_true", help="skip the closed-loop flights of the teachers")
    # many short rounds: under a fluctuating load, fine interleaving keeps the ratios meaningful
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(max(1, args.threads))
    from edgekd.export.onnx import export_onnx
    from edgekd.fileio import write_json
    from edgekd.iospec import IOSpec, TensorSpec
    from edgekd.quantize.ort_static import COMPUTE_OPS, quantize_onnx_static
    from edgekd.runtime import SessionOptions, get_runtime
    from edgekd.runtime.predict import session_predict
    from edgekd.tasks import build_task
    from edgekd.tasks.drone import closed_loop
    from edgekd.tasks.drone import segmenter as seg
    from edgekd.tasks.drone.models import macs, param_count
    from edgekd.tasks.drone.teacher import IBVSTeacher, controller_predict, fit_boxes
    from edgekd.tasks.recipe import load_recipe
    from edgekd.weights import load_module_weights, save_module_weights

    overrides = ["task.ibvs.segmenter=learned", *args.overrides]
    if args.segmenter_weights is not None:
        overrides.append(f"task.ibvs.learned.weights={args.segmenter_weights}")
    recipe = load_recipe(args.recipe, overrides=overrides, preset=args.preset)
    task = build_task(recipe.task, recipe.seed)
    cfg = task.config
    classical_cfg = cfg.model_copy(update={"ibvs": cfg.ibvs.model_copy(update={"segmenter": "classical"})})
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    print(f"recipe {recipe.name} preset {recipe.preset}: {cfg.image_size}px, {args.threads} thread(s), "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")

    t0 = time.perf_counter()
    net = seg.trained_segmenter(cfg) if cfg.ibvs.learned.weights else seg.train_segmenter(cfg, progress=True)
    seg._TRAINED[seg.segmenter_key(cfg)] = net  # the teacher below reuses it
    seg_s = time.perf_counter() - t0
    if args.save_segmenter is not None:
        save_module_weights(net, args.save_segmenter)
    lc = cfg.ibvs.learned
    seg_mac = macs(net, cfg.image_size)
    print(f"segmenter U-Net base {lc.base_channels} depth {lc.depth}: {param_count(net):,} params, "
          f"{seg_mac / 1e6:.0f} MMAC at {cfg.image_size}px; {'loaded' if lc.weights else 'trained'} in {seg_s:.0f}s")

    # ---- segmentation quality on held-out renders (the test split's scenes, never trained on)
    bank = task.bank("test")
    img, lab = seg.random_views(cfg, bank, 64, np.random.default_rng([recipe.seed, 99]), aug=False)
    truth = lab.numpy()
    visible = (truth > 0).reshape(len(truth), -1).sum(1) > 0.5 * (truth > 0).reshape(len(truth), -1).sum(1).max()
    learned = seg.LearnedSegmenter(net)
    tm, fm = learned(img)
    iou_t = seg.mask_iou(tm, truth > 0)[visible]
    iou_f = seg.mask_iou(fm, truth == seg.FRONT)[visible]
    print(f"held-out mask IoU over {int(visible.sum())} views with the target in view: target mean "
          f"{iou_t.mean():.3f} min {iou_t.min():.3f}; front mark mean {iou_f.mean():.3f}")

    teacher = IBVSTeacher(cfg)
    classical = IBVSTeacher(classical_cfg)
    fly: dict[str, Any] = {}
    if not args.no_fly:
        eps = closed_loop.make_episodes(cfg, bank, "test", task.seed)
        for name, ctrl in (("teacher_classical", classical), ("teacher_learned", teacher)):
            t1 = time.perf_counter()
            r = closed_loop.rollout(cfg, bank, eps, controller_predict(ctrl), seed=task.seed)
            fly[name] = {k: v for k, v in closed_loop.summarise(r, cfg).items() if k != "per_episode"}
            print(f"  flown {name} in {time.perf_counter() - t1:.1f}s")
        print(f"\nclosed loop, test split, {len(eps.starts)} episodes")
        print(closed_loop.table(fly))

    # ---- ONNX artifacts: the student (FP32, three INT8 variants) and the segmenter (FP32)
    student = task.build_student()
    if args.student is not None:
        student = load_module_weights(student, args.student)
    student.eval()
    spec = task.io_spec()
    n = cfg.image_size
    export_onnx(student, spec, out / "student.onnx", opset=recipe.export.opset)
    frames = task.dataset("test")
    calib = [{"image": frames[i]["image"][None].numpy()} for i in range(min(64, len(frames)))]
    variants: dict[str, dict[str, Any]] = {"student_ort_int8": {"per_channel": True},
                                           "student_ort_int8_pt": {"per_channel": False},
                                           "student_ort_int8_cg": {"per_channel": True, "op_types": COMPUTE_OPS}}
    for name, kw in variants.items():
        quantize_onnx_static(out / "student.onnx", out / f"{name}.onnx", calib, method="minmax", **kw)
    seg_spec = IOSpec(inputs=(TensorSpec("image", ("batch", 3, n, n), "float32", 0.0, 1.0),),
                      outputs=(TensorSpec("logits", ("batch", 3, n, n), "float32", -50.0, 50.0),))
    fused = seg.fuse_for_inference(net)
    export_onnx(fused, seg_spec, out / "segmenter.onnx", opset=recipe.export.opset)
    ort = get_runtime("onnxruntime")
    opts = SessionOptions(threads=args.threads)
    sess = {"student_ort_fp32": ort.load(out / "student.onnx", opts),
            **{k: ort.load(out / f"{k}.onnx", opts) for k in variants}}
    seg_sess = ort.load(out / "segmenter.onnx", opts)

    # the INT8 students still agree with FP32 on held-out frames (mean |command difference|)
    test_imgs = np.stack([frames[i]["image"].numpy() for i in range(min(64, len(frames)))])
    ref = session_predict(sess["student_ort_fp32"])({"image": test_imgs})[0]
    for k in variants:
        d = np.abs(session_predict(sess[k])({"image": test_imgs})[0] - ref).mean()
        print(f"{k}: mean |INT8 - FP32| command {d:.4f} vs mean |FP32| {np.abs(ref).mean():.4f} "
              f"(normalised units{'' if args.student else '; untrained student: a weak check'})")

    def ort_seg_teacher(x: torch.Tensor) -> np.ndarray:
        cls = seg_sess.run({"image": x.numpy()})[0].argmax(1)
        det = fit_boxes(cls != seg.BACKGROUND, cls == seg.FRONT, min_pixels=teacher.min_pixels)
        return teacher.commands_from_corners(det.corners_px, det.found)

    imgs = [frames[i]["image"][None] for i in range(16)]
    pos = {"i": 0}

    def nxt() -> torch.Tensor:
        pos["i"] = (pos["i"] + 1) % len(imgs)
        return imgs[pos["i"]]

    with torch.no_grad():
        fns: dict[str, Callable[[], Any]] = {
            "teacher_learned": lambda: teacher(nxt()),
            "teacher_learned_ortseg": lambda: ort_seg_teacher(nxt()),
            "teacher_classical": lambda: classical(nxt()),
            **{name: _runner(s, nxt) for name, s in sess.items()},
            "student_torch_fp32": lambda: student(nxt()),
        }
        lat = time_interleaved(fns, args.rounds, args.iters)
    st_mac = macs(student, n)
    t_ms = lat["teacher_learned"]["p50"]
    print(f"\nlatency per image, batch 1, {args.threads} thread(s), {args.rounds}x{args.iters} interleaved calls, "
          f"load average now {os.getloadavg()[0]:.1f}")
    # ratios on p50 (what a loaded machine delivers) and on min (the least disturbed call: under
    # heavy load the p50 of a ~2 ms call depends on whether the scheduler preempts it)
    t_min = lat["teacher_learned"]["min"]
    print(f"{'variant':<26}{'p50 ms':>9}{'p90 ms':>9}{'min ms':>9}{'teacher/x p50':>15}{'teacher/x min':>15}")
    for name, v in lat.items():
        print(f"{name:<26}{v['p50']:>9.3f}{v['p90']:>9.3f}{v['min']:>9.3f}{t_ms / v['p50']:>14.2f}x"
              f"{t_min / v['min']:>14.2f}x")
    ratio = {k: t_ms / lat[k]["p50"] for k in lat if k.startswith("student")}
    print("\nlearned teacher pipeline (torch eager) p50 / student p50: "
          + ", ".join(f"{k} {v:.2f}x" for k, v in ratio.items()))
    # like for like: both in torch eager, both through ONNX Runtime FP32
    same = {"torch eager": lat["teacher_learned"]["p50"] / lat["student_torch_fp32"]["p50"],
            "ORT FP32": lat["teacher_learned_ortseg"]["p50"] / lat["student_ort_fp32"]["p50"]}
    print("same runtime for both (p50): " + ", ".join(f"{k} {v:.2f}x ({'>= 8x' if v >= 8 else 'MISSED 8x'})"
                                                      for k, v in same.items()))
    # the deployed comparison: both pipelines in ONNX Runtime, the student in INT8 too
    deployed = lat["teacher_learned_ortseg"]["p50"] / lat["student_ort_int8"]["p50"]
    print(f"deployed, both in ONNX Runtime (teacher segmenter FP32, student INT8), p50: {deployed:.2f}x")
    same_min = {"torch eager": t_min / lat["student_torch_fp32"]["min"],
                "ORT FP32": lat["teacher_learned_ortseg"]["min"] / lat["student_ort_fp32"]["min"]}
    print("same runtime for both (min): " + ", ".join(f"{k} {v:.2f}x" for k, v in same_min.items()))
    print("learned teacher (eager) / student, on min: " + ", ".join(
        f"{k} {t_min / lat[k]['min']:.2f}x" for k in lat if k.startswith("student")))
    i8, f32 = lat["student_ort_int8"]["p50"], lat["student_ort_fp32"]["p50"]
    print(f"INT8 (per-channel) vs FP32: {f32 / i8:.2f}x ({'faster' if i8 < f32 else 'NOT faster'})")
    print(f"MACs: segmenter {seg_mac / 1e6:.0f}M, student {st_mac / 1e6:.0f}M ({seg_mac / st_mac:.1f}x)")
    write_json(out / "drone_latency.json", {
        "image_size": n, "threads": args.threads, "load_average_start": load, "segmenter": lc.model_dump(),
        "segmenter_params": param_count(net), "segmenter_macs": seg_mac, "student_macs": st_mac,
        "student_weights": str(args.student) if args.student else "untrained init (latency only)",
        "iou_target_mean": float(iou_t.mean()), "iou_target_min": float(iou_t.min()),
        "iou_front_mean": float(iou_f.mean()), "closed_loop": fly, "latency_ms": lat,
        "ratio_learned_teacher_over": ratio, "ratio_same_runtime": same,
        "ratio_same_runtime_min": same_min, "ratio_deployed_ort_int8": deployed,
        "ratio_learned_teacher_over_min": {k: t_min / lat[k]["min"] for k in lat if k.startswith("student")},
    })
    print(f"wrote {out / 'drone_latency.json'}")


if __name__ == "__main__":
    main()
