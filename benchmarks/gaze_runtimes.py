"""A trained gaze run (a `edgekd distill-and-export gaze` run folder): teacher and student side by side in
every runtime, and the OpenVINO/NNCF INT8 student's metric against FP32 on the test split.

Measured in one interleaved profile (same feeds, batch 1, same thread count): the teacher and the student
in torch eager FP32, ONNX Runtime FP32 and OpenVINO FP32, and the student in ORT INT8 both ways (static
QDQ, min/max per-channel, and dynamic: MatMul weights INT8, activations quantized per call; the recipe
ships the dynamic one) and OpenVINO INT8 (NNCF PTQ), all made here from the run's ``student.onnx``.
Printed: each INT8 model's angular error next to FP32, per runtime the student/teacher p50 ratio (issue:
<= 0.5; DFT Gaze measured 0.46 on a Raspberry Pi 4) and INT8/FP32 for the student.

Run: python benchmarks/gaze_runtimes.py RUN_DIR [--threads 1]   (e.g. runs/gaze; ~2 min)
"""
import argparse
import os
import tempfile
from pathlib import Path

from edgekd.export.onnx import export_onnx
from edgekd.pipeline.evaluate import evaluate_all
from edgekd.profile.protocol import MeasureConfig, ProfileTarget, profile_artifacts
from edgekd.quantize.nncf_ov import quantize_openvino
from edgekd.quantize.ort_dynamic import quantize_onnx_dynamic
from edgekd.quantize.ort_static import quantize_onnx_static
from edgekd.runtime import SessionOptions, get_runtime
from edgekd.runtime.predict import session_predict
from edgekd.tasks import build_task
from edgekd.tasks.base import iterate_numpy
from edgekd.tasks.recipe import load_recipe
from edgekd.weights import load_module_weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--threads", type=int, default=1, help="threads for every runtime (0 = runtime default)")
    ap.add_argument("--sessions", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=100)
    args = ap.parse_args()
    run: Path = args.run
    threads = args.threads or None
    import torch

    if threads:
        torch.set_num_threads(threads)
    recipe = load_recipe("gaze")
    task = build_task(recipe.task, recipe.seed)
    spec = task.io_spec()
    calib = [b for b, _ in iterate_numpy(task.dataset("train"), spec.input_names, 1)][:128]
    tmp = Path(tempfile.mkdtemp(prefix="edgekd-gaze-rt-"))
    xml = tmp / "student.ov.int8.xml"
    quantize_openvino(run / "student.onnx", xml, calib, subset_size=128)
    static8, dynamic8 = tmp / "student.int8.static.onnx", tmp / "student.int8.dynamic.onnx"
    quantize_onnx_static(run / "student.onnx", static8, calib, method="minmax", per_channel=True)
    quantize_onnx_dynamic(run / "student.onnx", dynamic8)
    ov, ort = get_runtime("openvino"), get_runtime("onnxruntime")
    for name, rt, path in (("ort fp32", ort, run / "student.onnx"), ("ort int8 static", ort, static8),
                           ("ort int8 dynamic", ort, dynamic8), ("openvino fp32", ov, run / "student.onnx"),
                           ("openvino int8", ov, xml)):
        m = evaluate_all(task, session_predict(rt.load(path, SessionOptions(threads=threads))))["metric"]
        print(f"student {name:<17} angular error {m:.3f} deg")

    teacher = task.build_teacher()
    load_module_weights(teacher, run / "teacher.safetensors")
    teacher.eval()
    student = task.build_student(init="scratch")
    load_module_weights(student, run / "student_kd.safetensors")
    student.eval()
    export_onnx(teacher, spec, tmp / "teacher.onnx", opset=recipe.export.opset)
    feeds = spec.dummy_inputs({"batch": 1}, seed=0)
    opts = SessionOptions(threads=threads)
    targets = {
        "teacher torch eager fp32": ProfileTarget.from_module(teacher, spec, opts, feeds, label="teacher_eager"),
        "student torch eager fp32": ProfileTarget.from_module(student, spec, opts, feeds, label="student_eager"),
        "teacher ort fp32": ProfileTarget(tmp / "teacher.onnx", "onnxruntime", opts, feeds, label="teacher_ort"),
        "student ort fp32": ProfileTarget(run / "student.onnx", "onnxruntime", opts, feeds, label="student_ort"),
        "student ort int8 static": ProfileTarget(static8, "onnxruntime", opts, feeds, label="student_ort8s"),
        "student ort int8 dynamic": ProfileTarget(dynamic8, "onnxruntime", opts, feeds, label="student_ort8d"),
        "teacher openvino fp32": ProfileTarget(tmp / "teacher.onnx", "openvino", opts, feeds, label="teacher_ov"),
        "student openvino fp32": ProfileTarget(run / "student.onnx", "openvino", opts, feeds, label="student_ov"),
        "student openvino int8": ProfileTarget(xml, "openvino", opts, feeds, label="student_ov8"),
    }
    reps = dict(zip(targets, profile_artifacts(list(targets.values()),
                                               MeasureConfig(sessions=args.sessions, iterations=args.iterations,
                                                             warmup_iters=20), interleave=True, progress=False),
                    strict=True))
    print(f"\nbatch 1, {threads or 'default'} thread(s), {args.sessions} interleaved sessions x {args.iterations} "
          f"iterations, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for label, rep in reps.items():
        print(f"  {label:<28} p50 {rep.p50:7.3f} ms  p90 {rep.latency_ms.get('p90') or float('nan'):7.3f} ms  valid={rep.valid}")
    print("student/teacher p50 ratio (target <= 0.5):")
    for rt, key in (("torch eager", "torch eager fp32"), ("onnxruntime", "ort fp32"), ("openvino", "openvino fp32")):
        r = reps[f"student {key}"].p50 / reps[f"teacher {key}"].p50
        print(f"  {rt:<12} {r:.3f}  {'ok' if r <= 0.5 else 'MISSED'}")
    print("student INT8 / FP32 p50 in the same runtime (< 1 = INT8 faster):")
    for rt, a, b in (("ort static", "ort int8 static", "ort fp32"), ("ort dynamic", "ort int8 dynamic", "ort fp32"),
                     ("openvino", "openvino int8", "openvino fp32")):
        r = reps[f"student {a}"].p50 / reps[f"student {b}"].p50
        print(f"  {rt:<12} {r:.3f}  {'INT8 faster' if r < 1 else 'INT8 NOT faster'}")


if __name__ == "__main__":
    main()
