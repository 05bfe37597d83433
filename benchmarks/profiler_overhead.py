"""Does `edgekd profile` report what ONNX Runtime itself measures, and what does profiling cost?

    python benchmarks/profiler_overhead.py            # ~1 minute on one core
    python benchmarks/profiler_overhead.py --rounds 12 --det-size 320

Models (ONNX Runtime, 1 intra-op thread, sequential, all graph optimizations, CPU provider):
  - gaze:      the gaze student built by edgekd.tasks.build_task from recipes/gaze.yaml (fresh weights:
               latency depends on shapes, not on trained values), exported by edgekd.export.onnx;
  - gaze_int8: its INT8 QDQ version (edgekd.quantize.ort_static.quantize_onnx_static, random calibration);
  - ppocr_det: the PP-OCRv4 detector shipped inside rapidocr_onnxruntime (an external model).

1. edgekd vs bare ONNX Runtime, interleaved in one process: each round runs one edgekd session of every
   model (edgekd.profile.protocol.InterleavedRun: its Session wrapper, feed checks and timed loop) and a
   block of the same length of a bare loop around `InferenceSession.run` built with the same session
   settings (the order of the two flips every round). Printed: both p50s and their difference (target:
   within 5%).
2. The profiler's own overhead in the timed loop: the median cost of one iteration of the loop around a
   no-op call (clock read, call, store), as a share of each model's p50 (target < 1%); and the extra
   cost of edgekd's Session.run wrapper over the bare call, measured on the smallest possible graph.
3. A/A: the gaze student loaded twice as two targets, interleaved sessions; the coefficient of variation
   of the session medians of each, the p50 difference between the two, and whether the report flagged
   the run noisy (results.noisy is set when the CV exceeds results.noisy_threshold).

Every report's validity and noise flags are printed: the machine is shared with other developers.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import mean_std

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def bare_session(path: Path) -> Any:
    """The same settings as edgekd.runtime.onnxruntime with SessionOptions(threads=1)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def bare_block(sess: Any, feeds: dict[str, np.ndarray], n: int) -> list[float]:
    """ONNX Runtime's own timing as a user would write it: perf_counter around run(None, feeds)."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def build_models(folder: Path, det_size: int) -> list[tuple[str, Path, dict[str, np.ndarray]]]:
    import torch

    from edgekd.export.onnx import export_onnx
    from edgekd.quantize.ort_static import quantize_onnx_static
    from edgekd.tasks import build_task
    from edgekd.tasks.recipe import load_recipe

    recipe = load_recipe("gaze")
    task = build_task(recipe.task, recipe.seed)
    student = task.build_student(init="scratch").eval()
    spec = task.io_spec()
    gaze = folder / "gaze_student.onnx"
    with torch.no_grad():
        export_onnx(student, spec, gaze)
    feeds = spec.dummy_inputs({"batch": 1})
    calib = [spec.dummy_inputs({"batch": 1}, seed=s) for s in range(8)]
    gaze_q = folder / "gaze_student_int8.onnx"
    quantize_onnx_static(gaze, gaze_q, calib)
    models = [("gaze", gaze, feeds), ("gaze_int8", gaze_q, feeds)]
    try:
        import importlib.util

        spec_ocr = importlib.util.find_spec("rapidocr_onnxruntime")
    except Exception:  # noqa: BLE001 - a broken install counts as absent
        spec_ocr = None
    det = None
    if spec_ocr is not None and spec_ocr.submodule_search_locations:
        det = Path(list(spec_ocr.submodule_search_locations)[0]) / "models" / "ch_PP-OCRv4_det_infer.onnx"
    if det is not None and det.is_file():
        x = np.random.default_rng(0).random((1, 3, det_size, det_size), dtype=np.float32)
        models.append(("ppocr_det", det, {"x": x}))
    else:
        print("rapidocr_onnxruntime (PP-OCR detector) not installed: 2 models only", file=sys.stderr)
    return models


def wrapper_overhead_us(folder: Path, n: int = 20000) -> tuple[float, float]:
    """Median per-call time of edgekd's Session.run vs the bare InferenceSession.run on an Identity graph."""
    import onnx
    from onnx import TensorProto, helper

    from edgekd.runtime import get_runtime
    from edgekd.runtime.base import SessionOptions

    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    p = folder / "identity.onnx"
    onnx.save(m, str(p))
    feeds = {"x": np.ones((1, 4), np.float32)}
    ek = get_runtime("onnxruntime").load(p, SessionOptions(threads=1))
    bare = bare_session(p)
    a, b = [], []
    for _ in range(5):  # interleaved blocks
        for sess, out in ((ek, a), (None, b)):
            clock = time.perf_counter_ns
            for _ in range(n // 5):
                t0 = clock()
                if sess is None:
                    bare.run(None, feeds)
                else:
                    sess.run(feeds)
                out.append(clock() - t0)
    return float(np.median(a)) / 1000.0, float(np.median(b)) / 1000.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=8, help="interleaved rounds (edgekd session + bare block)")
    ap.add_argument("--iterations", type=int, default=60, help="iterations per session (raised for 0.15 s)")
    ap.add_argument("--det-size", type=int, default=256, help="PP-OCR detector input side")
    ap.add_argument("--aa-sessions", type=int, default=10)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from edgekd.profile.protocol import InterleavedRun, MeasureConfig, ProfileTarget, timer_overhead_ns
    from edgekd.runtime.base import SessionOptions

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = build_models(folder, args.det_size)
        print(f"models ready in {time.perf_counter() - t_start:.1f} s: {[m[0] for m in models]}", flush=True)
        opts = SessionOptions(threads=1)

        # ---- 1 + 2: edgekd vs bare ORT, interleaved ---------------------------------------------------------
        targets = [ProfileTarget(p, "onnxruntime", opts, feeds, label=name) for name, p, feeds in models]
        cfg = MeasureConfig(warmup_s=0.3, warmup_iters=10, sessions=args.rounds, iterations=args.iterations,
                            min_duration_s=0.15 * args.rounds)
        bare = [bare_session(p) for _, p, _ in models]
        bare_samples: list[list[float]] = [[] for _ in models]
        with InterleavedRun(targets, cfg, progress=False) as run:
            for i, (_, _, feeds) in enumerate(models):  # warm the bare sessions the same way
                bare_block(bare[i], dict(feeds), max(10, run.states[i].warmup_iters))
            for r in range(args.rounds):
                # edgekd's sessions of every model, then the bare blocks (reversed order), or the other way
                # round on odd rounds: a slow drift of the machine hits both alike.
                if r % 2 == 0:
                    run.run_rounds(1)
                for i in (reversed(range(len(models))) if r % 2 == 0 else range(len(models))):
                    bare_samples[i] += bare_block(bare[i], dict(models[i][2]), run.states[i].iterations)
                if r % 2 == 1:
                    run.run_rounds(1)
            reports = run.reports()
        print("\n1. p50, edgekd profiler vs a bare ONNX Runtime loop (same session settings, interleaved); "
              "2. the timed loop's own cost")
        print(f"{'model':<11} {'edgekd p50':>11} {'bare p50':>10} {'diff':>7} {'<=5%':>5} {'loop cost':>10} "
              f"{'of p50':>8} {'<1%':>4}  validity / noise")
        loop_ns = timer_overhead_ns()
        for (name, _, _), rep, bs in zip(models, reports, bare_samples, strict=True):
            ek = rep.p50
            bm = float(np.median(bs))
            diff = 100.0 * (ek - bm) / bm
            res = rep.data["results"]
            share = 100.0 * loop_ns / 1e6 / ek
            print(f"{name:<11} {ek:9.4f}ms {bm:8.4f}ms {diff:+6.2f}% {'yes' if abs(diff) <= 5 else 'NO':>5} "
                  f"{loop_ns:8.0f}ns {share:7.4f}% {'yes' if share < 1 else 'NO':>4}  valid={rep.valid} "
                  f"noisy={res['noisy']} (session CV {res['session_cv']:.1%}, bare-loop session CV "
                  f"{_cv(bs, args.rounds):.1%}) contended={res.get('contended')} ({_threads(rep)})"
                  f"{'' if rep.valid else ' reasons: ' + '; '.join(rep.invalid_reasons)}")
        ek_us, bare_us = wrapper_overhead_us(folder)
        print(f"edgekd Session.run wrapper on an Identity graph: {ek_us:.2f} us vs bare run {bare_us:.2f} us "
              f"(+{ek_us - bare_us:.2f} us per call, i.e. "
              + ", ".join(f"{name} {100 * (ek_us - bare_us) / 1000 / rep.p50:.3f}%" for (name, _, _), rep
                          in zip(models, reports, strict=True)) + " of p50)")

        # ---- 3: A/A --------------------------------------------------------------------------------------------
        name, p, feeds = models[0]
        aa_cfg = MeasureConfig(warmup_s=0.3, warmup_iters=10, sessions=args.aa_sessions, iterations=args.iterations,
                               min_duration_s=0.1 * args.aa_sessions)
        aa_targets = [ProfileTarget(p, "onnxruntime", opts, feeds, label=f"{name}-A{k}") for k in (1, 2)]
        with InterleavedRun(aa_targets, aa_cfg, progress=False) as run:
            run.run_rounds(args.aa_sessions)
            aa = run.reports()
        print(f"\n3. A/A: {name} profiled as two targets, {args.aa_sessions} interleaved sessions each")
        for rep in aa:
            res = rep.data["results"]
            flagged_right = res["noisy"] == (res["session_cv"] > res["noisy_threshold"])
            print(f"  {rep.data['label']}: p50 {rep.p50:.4f} ms, session medians CV {res['session_cv']:.2%} "
                  f"(threshold {res['noisy_threshold']:.0%}) -> noisy={res['noisy']} "
                  f"({'consistent' if flagged_right else 'INCONSISTENT'}), valid={rep.valid}, "
                  f"contended={res.get('contended')} ({_threads(rep)})")
        d = 100.0 * (aa[1].p50 - aa[0].p50) / aa[0].p50
        m, sd = mean_std(aa[0].session_medians_ms + aa[1].session_medians_ms)
        pooled = sd / m
        print(f"  A/A p50 difference {d:+.2f}%; CV of all {2 * args.aa_sessions} session medians {pooled:.2%}")
    print(f"\ntotal {time.perf_counter() - t_start:.1f} s")
    return 0


def _threads(rep: Any) -> str:
    c = (rep.data.get("sensors") or {}).get("cpu_contention") or {}
    return f"{c.get('runnable_threads_mean', float('nan')):.1f} runnable threads / {c.get('cpus')} CPUs"


def _cv(samples: list[float], sessions: int) -> float:
    blocks = np.array_split(np.asarray(samples), sessions)
    med = [float(np.median(b)) for b in blocks]
    return float(np.std(med, ddof=1) / np.mean(med))


if __name__ == "__main__":
    sys.exit(main())
