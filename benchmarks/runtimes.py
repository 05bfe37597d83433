"""Runtime benchmark: PyTorch eager FP32, ORT FP32, ORT INT8, OpenVINO FP32 (f32 hint) and
OpenVINO INT8 (NNCF) of one student, at 1 and 2 threads, measured in ONE run, interleaved.

    python benchmarks/runtimes.py                      # the gaze student (untrained weights)
    python benchmarks/runtimes.py --recipe gaze_quick  # a recipe's student (edgekd.tasks)
    python benchmarks/runtimes.py --onnx model.onnx --input x=1x3x320x320

Interleaving: every round runs each (variant, threads) target for a short block, in a new
order each round, so that machine noise (other users of these shared cores, frequency
changes) falls on all variants alike. Reported: median per-call latency over all rounds,
the ratio to eager FP32 at the same thread count, the model's FLOPs (2 x MACs of
Conv/ConvTranspose/Gemm/MatMul from the ONNX graph after shape inference) and the achieved
GFLOP/s against the peak sgemm rate of this machine measured in the same script.
Latency only depends on shapes and the graph, so untrained weights are fine for timing; INT8
calibration uses random inputs here, which affects accuracy, not speed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgekd.profile.estimate import onnx_macs


def peak_sgemm_gflops(threads: int, n: int = 1024, reps: int = 5) -> float:
    """Best-of-``reps`` torch fp32 matmul rate (2 n^3 FLOP per product) at ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.rand(n, n), torch.rand(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def peak_int8_gops(threads: int, n: int = 1024, reps: int = 5) -> float | None:
    """Best-of-``reps`` int8 x int8 -> int32 matmul rate (torch._int_mm); None where unsupported."""
    import torch

    torch.set_num_threads(threads)
    try:
        a = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        b = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        torch._int_mm(a, b)
    except (RuntimeError, AttributeError):
        return None
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch._int_mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def build_model(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """(torch module or None, onnx path or None, input name, input shape, label)."""
    import torch

    if args.onnx:
        from edgekd.iospec import parse_input_shapes

        shapes = parse_input_shapes(args.input or [])
        if len(shapes) != 1:
            sys.exit("--onnx needs exactly one --input NAME=DxDxD")
        (name, shape), = shapes.items()
        return None, Path(args.onnx), name, shape, Path(args.onnx).name
    if args.recipe:
        from edgekd.tasks import build_task
        from edgekd.tasks.recipe import load_recipe

        r = load_recipe(args.recipe)
        task = build_task(r.task, r.seed)
        label = f"recipe {r.name} student"
    else:
        from edgekd.tasks import build_task
        from edgekd.tasks.gaze.config import GazeTaskConfig

        task = build_task(GazeTaskConfig(), 0)
        label = "gaze student (default config)"
    torch.manual_seed(0)
    try:
        student = task.build_student(init="scratch")
    except TypeError:
        student = task.build_student()
    spec = task.io_spec()
    if len(spec.inputs) != 1:
        sys.exit(f"this benchmark handles single-input students; {label} has {spec.input_names}")
    t = spec.inputs[0]
    shape = t.concrete_shape({"batch": args.batch})
    return student.eval(), None, t.name, shape, label


def export(student, name: str, shape: tuple[int, ...], path: Path) -> None:  # type: ignore[no-untyped-def]
    import torch

    try:
        from edgekd.export.onnx import export_onnx  # the export helper's exporter, when present
        from edgekd.iospec import IOSpec, TensorSpec

        out = student(torch.rand(*shape))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        spec = IOSpec((TensorSpec(name, shape),), tuple(TensorSpec(f"out{i}", tuple(o.shape)) for i, o in
                                                        enumerate(outs)))
        export_onnx(student, spec, path, dynamic_batch=False)
        return
    except ImportError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(student, (torch.rand(*shape),), str(path), input_names=[name], opset_version=17,
                          dynamo=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", help="use this recipe's student (edgekd.tasks)")
    ap.add_argument("--onnx", help="benchmark this ONNX model instead (no PyTorch eager row)")
    ap.add_argument("--input", action="append", help="NAME=1x3xHxW for --onnx")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--rounds", type=int, default=8, help="interleaved rounds")
    ap.add_argument("--block-s", type=float, default=0.25, help="seconds per target per round")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    threads_list = [int(t) for t in args.threads.split(",")]

    import onnxruntime as ort
    import torch

    from edgekd.quantize.calibration import model_inputs
    from edgekd.quantize.ort_static import quantize_onnx_static

    student, onnx_path, name, shape, label = build_model(args)
    tmp = Path(tempfile.mkdtemp(prefix="edgekd-bench-"))
    if onnx_path is None:
        onnx_path = tmp / "fp32.onnx"
        export(student, name, shape, onnx_path)
    rng = np.random.default_rng(args.seed)
    feed = {name: rng.uniform(0, 1, size=shape).astype(np.float32)}
    calib = [{name: rng.uniform(0, 1, size=shape).astype(np.float32)} for _ in range(16)]
    in_dtype = model_inputs(onnx_path)[0].dtype
    if in_dtype != "float32":
        sys.exit(f"input dtype {in_dtype}: this benchmark feeds float32")
    ort_int8 = tmp / "int8.onnx"
    q = quantize_onnx_static(onnx_path, ort_int8, calib)
    ov_int8 = None
    try:
        from edgekd.quantize.nncf_ov import compile_f32, quantize_openvino, read_model

        ov_int8 = tmp / "ov_int8.xml"
        quantize_openvino(onnx_path, ov_int8, calib)
    except Exception as exc:  # noqa: BLE001 - report and go on without OpenVINO rows
        print(f"OpenVINO rows skipped: {exc}", file=sys.stderr)
    macs = onnx_macs(onnx_path, {name: tuple(shape)})
    flops = 2 * macs

    targets: dict[tuple[str, int], Callable[[], object]] = {}
    for t in threads_list:
        if student is not None:
            x = torch.from_numpy(feed[name])

            def eager(x=x, t=t) -> object:
                torch.set_num_threads(t)
                with torch.inference_mode():
                    return student(x)

            targets[("torch eager fp32", t)] = eager
        for label_, path in (("ORT fp32", onnx_path), ("ORT int8 (QDQ U8S8)", ort_int8)):
            so = ort.SessionOptions()
            so.intra_op_num_threads, so.inter_op_num_threads = t, 1
            so.log_severity_level = 3
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            targets[(label_, t)] = lambda sess=sess: sess.run(None, feed)
        if ov_int8 is not None:
            for label_, path in (("OpenVINO fp32 (f32 hint)", onnx_path), ("OpenVINO int8 (NNCF)", ov_int8)):
                cm = compile_f32(read_model(path), threads=t)
                req = cm.create_infer_request()
                targets[(label_, t)] = lambda req=req: req.infer(feed)

    # Peak GEMM rates before and after the rounds, best kept: the cores are shared, and a peak
    # measured during someone else's burst would flatter every % of peak.
    peaks = {t: peak_sgemm_gflops(t) for t in threads_list}
    peaks8 = {t: peak_int8_gops(t) for t in threads_list}
    # Burn-in (not measured), then interleaved rounds in a shuffled order.
    for fn in targets.values():
        for _ in range(5):
            fn()
    samples: dict[tuple[str, int], list[float]] = {k: [] for k in targets}
    order = list(targets)
    shuffler = random.Random(args.seed)
    for _ in range(args.rounds):
        shuffler.shuffle(order)
        for key in order:
            fn = targets[key]
            end = time.perf_counter() + args.block_s
            while True:
                t0 = time.perf_counter()
                fn()
                samples[key].append(time.perf_counter() - t0)
                if t0 > end:
                    break
    peaks = {t: max(peaks[t], peak_sgemm_gflops(t)) for t in threads_list}
    peaks8 = {t: max((p for p in (peaks8[t], peak_int8_gops(t)) if p), default=None) for t in threads_list}
    torch.set_num_threads(1)

    print(f"\nmodel: {label}; input {name} {list(shape)}; conv/gemm MACs {macs / 1e6:.1f} M "
          f"({flops / 1e9:.3f} GFLOP per call)")
    print(f"ORT INT8: {len(q.nodes_quantized)} nodes quantized, {len(q.compute_nodes_fp32)} compute nodes in FP32; "
          f"calibration on random data (timing only)")
    print("peak sgemm (torch, n=1024): " + ", ".join(f"{t} thr {p:.1f} GFLOP/s" for t, p in peaks.items()))
    print("peak int8 gemm (torch._int_mm, n=1024): " + ", ".join(
        f"{t} thr {p:.1f} GOP/s" if p else f"{t} thr n/a" for t, p in peaks8.items()))
    print(f"rounds {args.rounds} x {args.block_s:.2f} s per target, interleaved\n")
    head = f"{'variant':28s} {'thr':>3s} {'median ms':>10s} {'p90 ms':>8s} {'n':>6s} {'vs eager':>9s} " \
           f"{'GFLOP/s':>8s} {'% of peak':>10s}"
    print(head)
    print("-" * len(head))
    for t in threads_list:
        base = statistics.median(samples[("torch eager fp32", t)]) if ("torch eager fp32", t) in samples else None
        for key in targets:
            if key[1] != t:
                continue
            xs = sorted(samples[key])
            med = statistics.median(xs)
            p90 = xs[int(0.9 * (len(xs) - 1))]
            ratio = f"{base / med:8.2f}x" if base else "      n/a"
            gfs = flops / med / 1e9
            peak = peaks8[t] if "int8" in key[0] else peaks[t]
            pct = f"{100 * gfs / peak:9.1f}%" if peak else "      n/a"
            print(f"{key[0]:28s} {t:3d} {med * 1e3:10.3f} {p90 * 1e3:8.3f} {len(xs):6d} {ratio:>9s} {gfs:8.1f} "
                  f"{pct:>10s}")
    print("\n(vs eager = eager median / variant median: >1 is faster. % of peak: FP32 rows vs the sgemm peak, "
          "INT8 rows vs the int8 gemm peak, at the same thread count.)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
