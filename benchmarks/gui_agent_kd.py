"""GUI-agent recipe over seeds: click accuracy of teacher, student alone, student KD and the MPA
parity stage on the in-distribution, paraphrase and cluttered splits (mean +- std over seeds,
text / icon split), INT8 vs FP32, and student vs teacher latency side by side.

Each seed is one ``edgekd distill-and-export gui_agent`` run (teacher, student_alone, student_kd,
ONNX, INT8, profile). By default seed 0 trains the teacher and the other seeds reuse it
(``teacher.source: checkpoint``): on 2 shared CPU cores one teacher per seed does not fit; pass
``--teacher-per-seed`` to train one per seed. After each run, the MPA-style parity stage
(edgekd/tasks/gui_agent/mpa.py) fine-tunes copies of student_alone and student_kd on the
unlabelled transfer screens pseudo-labelled by the teacher, where the teacher is confident and
the student disagrees.

Latency: batch 1, 1 thread, interleaved sessions of the teacher and the student in torch eager and
in ONNX Runtime FP32 (and the student's INT8), measured on seed 0's models.

    python benchmarks/gui_agent_kd.py [--preset quick] [--seeds 0 1 2] [--out runs/gui_bench] [--set k=v ...]
    python benchmarks/gui_agent_kd.py --runs runs/gui_s0 runs/gui_s1 runs/gui_s2   # analyse finished runs
    python benchmarks/gui_agent_kd.py --runs R0 --no-latency     # analyse one run as soon as it finishes
    python benchmarks/gui_agent_kd.py --summarize R0 R1 R2 --runs R0   # merge, and time R0's models
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import add_seeds, fmt_mean_std, print_table

from edgekd.fileio import write_json
from edgekd.tasks import build_task
from edgekd.tasks.base import torch_predict
from edgekd.tasks.recipe import load_recipe
from edgekd.weights import load_module_weights

SPLITS = ("test", "test_paraphrase", "test_clutter")
ARMS = ("teacher", "student_alone", "student_kd", "student_alone+mpa", "student_kd+mpa", "onnx_fp32", "onnx_int8")


def run_seed(seed: int, preset: str, sets: list[str], out: Path, teacher_ckpt: Path | None) -> Path:
    from edgekd.config.device import load_device
    from edgekd.pipeline.run import run_pipeline

    extra = [f"seed={seed}"]
    if teacher_ckpt is not None:
        extra += ["teacher.source=checkpoint", f"teacher.checkpoint={teacher_ckpt}"]
    recipe = load_recipe("gui_agent", sets + extra, preset=preset)
    run_dir = out / f"seed{seed}"
    run_pipeline(recipe, load_device("host-cpu"), run_dir, progress=False, say=lambda s: print(f"  [seed {seed}] {s}",
                                                                                               flush=True))
    return run_dir


def _recipe_of(run_dir: Path) -> Any:
    """The resolved recipe a run recorded in its manifest."""
    from edgekd.tasks.recipe import recipe_model

    manifest = json.loads((run_dir / "manifest.json").read_text())
    return recipe_model().model_validate(manifest["recipe_config"])


def _load(task: Any, run_dir: Path, recipe: Any) -> dict[str, torch.nn.Module]:
    models = {"teacher": task.build_teacher(), "student_alone": task.build_student(),
              "student_kd": task.build_student()}
    for name, m in models.items():
        path = run_dir / f"{name}.safetensors"
        if name == "teacher" and not path.exists() and recipe.teacher.source == "checkpoint":
            path = Path(recipe.teacher.checkpoint)  # a run with a given teacher does not copy it
        load_module_weights(m, path)
        m.eval()
    return models


def _ort(path: Path) -> Any:
    from edgekd.runtime import SessionOptions, get_runtime
    from edgekd.runtime.predict import session_predict

    return session_predict(get_runtime("onnxruntime").load(path, SessionOptions(threads=1)))


def reexport(student: torch.nn.Module, task: Any, recipe: Any, run_dir: Path) -> dict[str, Path]:
    """Export and INT8-quantize ``student`` with the current model code and the run's settings (as the
    pipeline does), beside the run's own artifacts: a run made before a graph change (same weights,
    same function) is re-measured with the graph the package now ships."""
    from edgekd.export.onnx import export_onnx
    from edgekd.quantize.ort_static import quantize_onnx_static
    from edgekd.tasks.base import iterate_numpy

    spec = task.io_spec()
    fp32, int8 = run_dir / "bench_student.onnx", run_dir / "bench_student.int8.onnx"
    e = recipe.export
    export_onnx(student, spec, fp32, opset=e.opset, exporter=e.exporter, dynamic_batch=e.dynamic_batch,
                simplify=e.simplify)
    q = recipe.quantize

    def calib() -> Any:
        for i, (b, _) in enumerate(iterate_numpy(task.dataset("train"), spec.input_names, 1)):
            if i >= q.calibration.samples:
                return
            yield b

    quantize_onnx_static(fp32, int8, calib(), method=q.calibration.method, per_channel=q.per_channel,
                         percentile=q.calibration.percentile)
    return {"onnx_fp32": fp32, "onnx_int8": int8}


def analyse_run(run_dir: Path, mpa: dict[str, Any], reexport_onnx: bool = True) -> dict[str, Any]:
    """Per-split accuracies (with text/icon) of every arm of one finished run, plus the MPA stage."""
    from edgekd.tasks.gui_agent.mpa import parity_align

    report = json.loads((run_dir / "report.json").read_text())
    recipe = _recipe_of(run_dir)
    task = build_task(recipe.task, recipe.seed)
    spec = task.io_spec()
    models = _load(task, run_dir, recipe)
    torch.manual_seed(recipe.seed)
    lab = task.arrays("train").labelled
    replay = torch.utils.data.Subset(task.dataset("train"), np.flatnonzero(lab).tolist())
    unl = task.arrays("unlabelled")
    mpa_info = {}
    for base in ("student_alone", "student_kd"):
        res = parity_align(copy.deepcopy(models[base]), models["teacher"], task.dataset("unlabelled"),
                           input_names=spec.input_names, task_loss=task.task_loss, replay=replay,
                           truth={"truth": unl.truth, "box": unl.boxes}, image_size=task.config.image_size,
                           n_bins=task.config.n_bins, seed=recipe.seed, **mpa)
        models[f"{base}+mpa"] = res.student
        mpa_info[base] = {"unlabelled": res.n_unlabelled, "selected": res.n_selected,
                          "filter_precision": res.filter_precision, "seconds": round(res.seconds, 1)}
    predicts = {name: torch_predict(m, spec) for name, m in models.items()}
    onnx_paths = reexport(models["student_kd"], task, recipe, run_dir) if reexport_onnx else \
        {"onnx_fp32": run_dir / "student.onnx", "onnx_int8": run_dir / "student.int8.onnx"}
    for name, path in onnx_paths.items():
        if path.exists():
            predicts[name] = _ort(path)
    acc: dict[str, dict[str, Any]] = {}
    for name, pred in predicts.items():
        acc[name] = {}
        for split in SPLITS:
            r = task.evaluate(pred, split)
            acc[name][split] = {"all": r.metric, "text": r.extras["text_accuracy"], "icon": r.extras["icon_accuracy"]}
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items() if "+" not in k}
    return {"run": str(run_dir), "seed": recipe.seed, "accuracy": acc, "mpa": mpa_info, "params": params,
            "teacher_source": report.get("teacher", {}).get("source"),
            "profiles": {k: v["latency_ms"] for k, v in report.get("profiles", {}).items()}}


def latency_side_by_side(run_dir: Path, iterations: int, threads: int = 1) -> dict[str, Any]:
    """Teacher vs student, torch eager and ORT FP32 (+ student INT8), batch 1, ``threads`` threads, interleaved."""
    from edgekd.export.onnx import export_onnx
    from edgekd.profile.protocol import MeasureConfig, ProfileTarget, profile_artifacts
    from edgekd.runtime import SessionOptions

    recipe = _recipe_of(run_dir)
    task = build_task(recipe.task, recipe.seed)
    spec = task.io_spec()
    models = _load(task, run_dir, recipe)
    t_onnx = run_dir / "bench_teacher.onnx"
    export_onnx(models["teacher"], spec, t_onnx, exporter="torchscript", simplify=True)
    opts = SessionOptions(threads=threads)
    feeds = spec.dummy_inputs({"batch": 1}, seed=0)
    targets = {"teacher_torch": ProfileTarget.from_module(models["teacher"], spec, opts, feeds),
               "student_torch": ProfileTarget.from_module(models["student_kd"], spec, opts, feeds),
               "teacher_ort_fp32": ProfileTarget(t_onnx, "onnxruntime", opts, feeds),
               "student_ort_fp32": ProfileTarget(_prefer(run_dir, "student.onnx"), "onnxruntime", opts, feeds),
               "student_ort_int8": ProfileTarget(_prefer(run_dir, "student.int8.onnx"), "onnxruntime", opts,
                                                 feeds)}
    cfg_m = MeasureConfig(warmup_s=0.5, warmup_iters=10, sessions=3, iterations=iterations, min_duration_s=1.0)
    reps = profile_artifacts(list(targets.values()), cfg_m, interleave=True, progress=False)
    out = {}
    for name, rep in zip(targets, reps, strict=True):
        lat = rep.to_json()["results"]["latency_ms"]
        out[name] = {k: lat[k] for k in ("p50", "p90")}
    return out


def _prefer(run_dir: Path, name: str) -> Path:
    """The benchmark's re-exported artifact when there is one, else the run's."""
    p = run_dir / f"bench_{name}"
    return p if p.exists() else run_dir / name


def _ms(xs: list[float | None]) -> str:
    return fmt_mean_std(xs, scale=100, digits=1)


def print_summary(results: list[dict[str, Any]], latency: dict[str, Any] | None, threads: int = 1) -> None:
    seeds = [r["seed"] for r in results]
    print(f"\nclick accuracy (%), mean +- std over seeds {seeds} (teacher source: "
          f"{[r['teacher_source'] for r in results]})")
    rows = []
    for arm in ARMS:
        if not all(arm in r["accuracy"] for r in results):
            continue
        row = [_ms([r["accuracy"][arm][s]["all"] for r in results]) for s in SPLITS]
        row += [_ms([r["accuracy"][arm]["test"][k] for r in results]) for k in ("text", "icon")]
        rows.append([arm, *row])
    print_table(["arm", *SPLITS, "test text", "test icon"], rows)
    for split in SPLITS:
        d = [r["accuracy"]["student_kd"][split]["all"] - r["accuracy"]["student_alone"][split]["all"] for r in results]
        print(f"KD gain over student alone on {split}: {100 * np.mean(d):+.1f} points (per seed: "
              f"{', '.join(f'{100 * x:+.1f}' for x in d)})")
    if all("onnx_int8" in r["accuracy"] and "onnx_fp32" in r["accuracy"] for r in results):
        d = [r["accuracy"]["onnx_int8"]["test"]["all"] - r["accuracy"]["onnx_fp32"]["test"]["all"] for r in results]
        print(f"INT8 - FP32 (ORT) on test: {100 * np.mean(d):+.2f} points (per seed: "
              f"{', '.join(f'{100 * x:+.2f}' for x in d)})")
    for r in results:
        print(f"seed {r['seed']}: MPA {r['mpa']}  params {r['params']}")
    if latency:
        print(f"\nlatency, batch 1, {threads} thread(s), interleaved (ms p50 / p90):")
        for k, v in latency.items():
            print(f"  {k:<18} {v['p50']:8.3f} / {v['p90']:8.3f}")
        t, s = latency["teacher_torch"]["p50"], latency["student_torch"]["p50"]
        print(f"student vs teacher, torch eager: {t / s:.1f}x faster; ORT FP32: "
              f"{latency['teacher_ort_fp32']['p50'] / latency['student_ort_fp32']['p50']:.1f}x; student ORT INT8 vs "
              f"teacher torch: {t / latency['student_ort_int8']['p50']:.1f}x, vs teacher ORT FP32: "
              f"{latency['teacher_ort_fp32']['p50'] / latency['student_ort_int8']['p50']:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="quick")
    add_seeds(ap)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="recipe override a.b=value")
    ap.add_argument("--out", type=Path, default=Path("runs/gui_bench"))
    ap.add_argument("--runs", type=Path, nargs="+", help="analyse these finished runs instead of running")
    ap.add_argument("--teacher-per-seed", action="store_true")
    ap.add_argument("--mpa-threshold", type=float, default=0.5)
    ap.add_argument("--mpa-epochs", type=int, default=2)
    ap.add_argument("--latency-iterations", type=int, default=100)
    ap.add_argument("--latency-threads", type=int, default=1, help="threads of every runtime in the timing")
    ap.add_argument("--jobs", type=int, default=1, help="analyse this many runs in parallel (1 thread each)")
    ap.add_argument("--no-latency", dest="latency", action="store_false", help="skip the side-by-side timing")
    ap.add_argument("--summarize", type=Path, nargs="+", help="only merge these analysed runs' gui_agent_kd.json "
                    "(with --runs R: time R's models side by side)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    if args.summarize:
        summarize_only(args.summarize, args.runs[0] if args.runs and args.latency else None,
                       args.latency_iterations, args.latency_threads)
        return
    runs = list(args.runs or [])
    if not runs:
        for i, seed in enumerate(args.seeds):
            ckpt = None if (args.teacher_per_seed or i == 0) else runs[0] / "teacher.safetensors"
            runs.append(run_seed(seed, args.preset, args.sets, args.out, ckpt))
    mpa = {"threshold": args.mpa_threshold, "epochs": args.mpa_epochs}
    print(f"analysing {', '.join(map(str, runs))} ({args.jobs} at a time) ...", flush=True)
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            results = list(pool.map(analyse_run, runs, [mpa] * len(runs)))
    else:
        results = [analyse_run(r, mpa) for r in runs]
    for r, res in zip(runs, results, strict=True):  # per run, so runs can be analysed as they finish
        write_json(Path(r) / "gui_agent_kd.json", res)
    latency = latency_side_by_side(runs[0], args.latency_iterations, args.latency_threads) if args.latency else None
    out = args.out if not args.runs else Path(args.runs[0]).parent
    write_json(out / "gui_agent_kd.json", {"results": results, "latency": latency,
                                           "seconds": round(time.perf_counter() - t0, 1)})
    print_summary(results, latency, args.latency_threads)
    print(f"\nwrote {out / 'gui_agent_kd.json'} in {time.perf_counter() - t0:.0f}s")


def summarize_only(paths: list[Path], latency_run: Path | None, iterations: int, threads: int = 1) -> None:
    """Merge per-run analyses (``<run>/gui_agent_kd.json``) and print the table."""
    results = [json.loads((Path(p) / "gui_agent_kd.json").read_text()) for p in paths]
    latency = latency_side_by_side(latency_run, iterations, threads) if latency_run is not None else None
    print_summary(results, latency, threads)


if __name__ == "__main__":
    main()
