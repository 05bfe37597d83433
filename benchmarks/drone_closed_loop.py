"""Drone recipe, side by side: closed-loop flights and per-image latency of the analytic teacher
pipeline vs the students (torch FP32, ONNX Runtime FP32 and INT8).

Controllers flown on the test split (the paper's 8 start poses + random ones), same noise seed:
  teacher          the analytic IBVS pipeline (segmentation -> box -> corners -> IBVS)
  centroid         naive floor: centre the blob, never turn
  student_alone    1.7M student, task loss on the scarce labels (label_fraction of the frames)
  student_bc       1.7M student distilled from the teacher on teacher-flown frames (= student_kd)
  student_dagger   student_bc + DAgger iterations (the student flies, the teacher labels)
  student_half     half-width student, distilled like student_bc
  onnx_fp32/int8   student_bc exported and quantized, flown through ONNX Runtime

Latency: batch 1, 1 thread, interleaved rounds; the teacher is timed as deployed (median,
thresholds, connected components, PCA box, IBVS pseudo-inverse) on rendered frames. The teacher
pipeline with a learned segmenter (the paper's) is timed by benchmarks/drone_latency.py.

    python benchmarks/drone_closed_loop.py [--preset quick] [--out runs/drone_bench] [--set k=v ...]
                                           [--run runs/drone]   # reuse a distill-and-export run's students
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _common import time_interleaved

from edgekd.fileio import write_json
from edgekd.tasks import build_task
from edgekd.tasks.base import torch_predict
from edgekd.tasks.drone import closed_loop
from edgekd.tasks.drone.dagger import run_dagger
from edgekd.tasks.drone.models import macs, param_count
from edgekd.tasks.drone.plots import plot_trajectories
from edgekd.tasks.drone.teacher import CentroidController, controller_predict
from edgekd.tasks.recipe import load_recipe


def train_student(task: Any, recipe: Any, *, kd: bool, width: float | None = None, progress: bool = False) -> Any:
    from edgekd.distill.loop import fit
    from edgekd.pipeline.teacher_source import val_fn

    common = dict(train_set=task.dataset("train"), input_names=task.io_spec().input_names, cfg=recipe.train,
                  task_loss=task.task_loss, val_fn=val_fn(task), lower_is_better=False, seed=recipe.seed,
                  progress=progress)
    student = task.build_student(width)
    if kd:
        return fit(student, teacher=task.build_teacher(), losses=recipe.distill.losses,
                   task_loss_weight=recipe.distill.task_loss_weight, desc="student kd", **common).student
    return fit(student, desc="student alone", **common).student




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", default="drone")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--out", type=Path, default=Path("runs/drone_bench"))
    ap.add_argument("--run", type=Path, default=None, help="reuse student_*.safetensors and ONNX files of a run")
    ap.add_argument("--dagger-iterations", type=int, default=2)
    ap.add_argument("--dagger-episodes", type=int, default=20)
    ap.add_argument("--dagger-epochs", type=int, default=3)
    ap.add_argument("--no-half", action="store_true", help="skip the half-width student")
    ap.add_argument("--reuse", action="store_true", help="load students already saved in --out instead of training")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(max(1, args.threads))
    recipe = load_recipe(args.recipe, overrides=args.overrides, preset=args.preset)
    task = build_task(recipe.task, recipe.seed)
    tc = task.config  # the DroneTaskConfig (recipe.task is typed as the union's base)
    spec = task.io_spec()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    print(f"recipe {recipe.name} preset {recipe.preset}: image {tc.image_size}px, "
          f"{len(task.dataset('train'))} train frames, label_fraction {tc.label_fraction}")

    students: dict[str, Any] = {}
    timings: dict[str, float] = {}
    from edgekd.weights import load_module_weights, save_module_weights

    for name, kd in (("student_alone", False), ("student_bc", True)):
        t0 = time.perf_counter()
        saved = args.run / {"student_alone": "student_alone.safetensors", "student_bc": "student_kd.safetensors"}[name] \
            if args.run else None
        if args.reuse and (out / f"{name}.safetensors").is_file():
            saved = out / f"{name}.safetensors"
        if saved is not None and saved.is_file():
            students[name] = load_module_weights(task.build_student(), saved).eval()
        else:
            students[name] = train_student(task, recipe, kd=kd)
        timings[name] = time.perf_counter() - t0
        save_module_weights(students[name], out / f"{name}.safetensors")
        print(f"{name}: {timings[name]:.0f}s")

    from edgekd.pipeline.teacher_source import val_fn

    t0 = time.perf_counter()
    dag_history: list[dict[str, Any]] = []
    if args.reuse and (out / "student_dagger.safetensors").is_file():
        students["student_dagger"] = load_module_weights(task.build_student(), out / "student_dagger.safetensors")
    else:
        bc_copy = task.build_student()
        bc_copy.load_state_dict(students["student_bc"].state_dict())
        dcfg = recipe.train.model_copy(update={"epochs": args.dagger_epochs, "warmup_steps": 0,
                                               "lr": recipe.train.lr / 2})
        dag = run_dagger(task, bc_copy, task.frames("train"), iterations=args.dagger_iterations,
                         episodes=args.dagger_episodes, train_cfg=dcfg, seed=recipe.seed, val_fn=val_fn(task))
        students["student_dagger"], dag_history = dag.student, dag.history
        save_module_weights(dag.student, out / "student_dagger.safetensors")
    timings["student_dagger"] = time.perf_counter() - t0
    print(f"student_dagger: {timings['student_dagger']:.0f}s {dag_history}")
    if not args.no_half:
        t0 = time.perf_counter()
        if args.reuse and (out / "student_half.safetensors").is_file():
            students["student_half"] = load_module_weights(task.build_student(0.5), out / "student_half.safetensors")
        else:
            students["student_half"] = train_student(task, recipe, kd=True, width=0.5)
            save_module_weights(students["student_half"], out / "student_half.safetensors")
        timings["student_half"] = time.perf_counter() - t0
        print(f"student_half: {timings['student_half']:.0f}s")

    # ---- export + INT8 of the BC student (or reuse the run's artifacts)
    from edgekd.runtime import SessionOptions, get_runtime
    from edgekd.runtime.predict import session_predict

    fp32, int8 = out / "student.onnx", out / "student.int8.onnx"
    if args.run and (args.run / "student.onnx").is_file() and (args.run / "student.int8.onnx").is_file():
        fp32, int8 = args.run / "student.onnx", args.run / "student.int8.onnx"
    else:
        from edgekd.export.onnx import export_onnx
        from edgekd.quantize.ort_static import quantize_onnx_static
        from edgekd.tasks.base import iterate_numpy

        export_onnx(students["student_bc"], spec, fp32, opset=recipe.export.opset)
        calib = [f for i, (f, _) in enumerate(iterate_numpy(task.dataset("train"), ["image"], 1))
                 if i < recipe.quantize.calibration.samples]
        quantize_onnx_static(fp32, int8, calib, method=recipe.quantize.calibration.method,
                             per_channel=recipe.quantize.per_channel)
    ort = get_runtime("onnxruntime")
    sessions = {k: ort.load(p, SessionOptions(threads=args.threads)) for k, p in (("onnx_fp32", fp32),
                                                                                   ("onnx_int8", int8))}

    # ---- closed loop, side by side
    predicts: dict[str, Any] = {"teacher": controller_predict(task.build_teacher()),
                                "centroid": controller_predict(CentroidController(task.config))}
    predicts.update({k: torch_predict(m, spec) for k, m in students.items()})
    predicts.update({k: session_predict(s) for k, s in sessions.items()})
    bank = task.bank("test")
    episodes = closed_loop.make_episodes(task.config, bank, "test", task.seed)
    summaries, rollouts = {}, {}
    for name, pred in predicts.items():
        t0 = time.perf_counter()
        r = closed_loop.rollout(task.config, bank, episodes, pred, seed=task.seed)
        rollouts[name] = r
        summaries[name] = closed_loop.summarise(r, task.config)
        print(f"  flown {name} in {time.perf_counter() - t0:.1f}s")
    print("\nclosed loop, test split:", len(episodes.starts), "episodes (8 paper starts + random)")
    print(closed_loop.table(summaries))
    png = plot_trajectories(out / "trajectories.png", task.config, bank, episodes.scene_ids,
                            {k: rollouts[k] for k in ("teacher", "centroid", "student_alone", "student_bc",
                                                      "student_dagger") if k in rollouts})

    # ---- latency, batch 1, side by side
    frames = task.dataset("test")
    imgs = [frames[i]["image"][None] for i in range(16)]
    teacher = task.build_teacher()
    k = {"i": 0}

    def nxt() -> torch.Tensor:
        k["i"] = (k["i"] + 1) % len(imgs)
        return imgs[k["i"]]

    bc = students["student_bc"].eval()
    with torch.no_grad():
        fns: dict[str, Callable[[], Any]] = {
            "teacher_pipeline": lambda: teacher(nxt()),
            "student_torch_fp32": lambda: bc(nxt()),
            "student_ort_fp32": lambda: sessions["onnx_fp32"].run({"image": nxt().numpy()}),
            "student_ort_int8": lambda: sessions["onnx_int8"].run({"image": nxt().numpy()}),
        }
        if "student_half" in students:
            half = students["student_half"].eval()
            fns["student_half_torch_fp32"] = lambda: half(nxt())
        # Informative only: a real teacher segments the camera's full frame; at 4x the side
        # (the student still sees 96 px) its cost grows with the pixel count.
        big = tc.model_copy(update={"image_size": 4 * tc.image_size, "val_frames": 8})
        big_task = build_task(big, recipe.seed)
        big_imgs = [big_task.dataset("test")[i]["image"][None] for i in range(4)]
        big_teacher = big_task.build_teacher()
        fns[f"teacher_pipeline@{4 * tc.image_size}px"] = lambda: big_teacher(big_imgs[k["i"] % 4])
        lat = time_interleaved(fns, args.rounds, args.iters)
    t_ms = lat["teacher_pipeline"]["p50"]
    mac = macs(bc, tc.image_size)
    print(f"\nlatency per image, batch 1, {args.threads} thread(s), {args.rounds}x{args.iters} interleaved calls")
    print(f"{'variant':<26}{'p50 ms':>9}{'p90 ms':>9}{'teacher/x':>11}{'GFLOP/s':>9}")
    for name, v in lat.items():
        gf = f"{2 * mac / v['p50'] / 1e6:.1f}" if name.startswith("student_") and "half" not in name else "-"
        name = name + (" (informative)" if "@" in name else "")
        print(f"{name:<26}{v['p50']:>9.3f}{v['p90']:>9.3f}{t_ms / v['p50']:>10.2f}x{gf:>9}")

    result = {
        "recipe": recipe.name, "preset": recipe.preset, "image_size": tc.image_size,
        "params": {k: param_count(m) for k, m in students.items()}, "student_macs": mac,
        "closed_loop": {k: {kk: vv for kk, vv in v.items() if kk != "per_episode"} for k, v in summaries.items()},
        "per_episode": {k: v["per_episode"] for k, v in summaries.items()},
        "latency_ms": lat, "latency_ratio_teacher_over": {k: t_ms / v["p50"] for k, v in lat.items()},
        "dagger": dag_history, "train_seconds": timings, "total_seconds": time.perf_counter() - t_start,
        "trajectories_png": str(png),
    }
    write_json(out / "drone_bench.json", result)
    print(f"\nwrote {out / 'drone_bench.json'} and {png} ({result['total_seconds']:.0f}s)")


if __name__ == "__main__":
    main()
