"""A trained gaze student (a `edgekd distill-and-export gaze` run folder): OpenVINO/NNCF INT8 metric vs FP32 on
the test split, and latency of torch eager FP32, OpenVINO FP32/INT8 and ORT INT8, interleaved in one run.

Run: python benchmarks/gaze_runtimes.py RUN_DIR   (e.g. runs/gaze after `edgekd distill-and-export`; ~1 min)
"""
import sys
from pathlib import Path

from edgekd.config import load_recipe
from edgekd.pipeline.evaluate import evaluate_all
from edgekd.profile.protocol import MeasureConfig, ProfileTarget, profile_artifacts
from edgekd.quantize.nncf_ov import quantize_openvino
from edgekd.runtime import SessionOptions, get_runtime
from edgekd.runtime.predict import session_predict
from edgekd.tasks import build_task
from edgekd.tasks.base import iterate_numpy
from edgekd.weights import load_module_weights

run = Path(sys.argv[1])
recipe = load_recipe("gaze")
task = build_task(recipe.task, recipe.seed)
spec = task.io_spec()
calib = [b for b, _ in iterate_numpy(task.dataset("train"), spec.input_names, 1)][:128]
xml = run / "student.ov.int8.xml"
quantize_openvino(run / "student.onnx", xml, calib, subset_size=128)
ov = get_runtime("openvino")
for name, path in (("ov_fp32(onnx)", run / "student.onnx"), ("ov_int8", xml)):
    m = evaluate_all(task, session_predict(ov.load(path, SessionOptions(threads=None))))["metric"]
    print(f"{name}: angular error {m:.3f} deg")
student = task.build_student(init="scratch")
load_module_weights(student, run / "student_kd.safetensors")
student.eval()
feeds = spec.dummy_inputs({"batch": 1}, seed=0)
opts = SessionOptions(threads=None)
targets = [ProfileTarget.from_module(student, spec, opts, feeds),
           ProfileTarget(run / "student.onnx", "openvino", opts, feeds),
           ProfileTarget(xml, "openvino", opts, feeds),
           ProfileTarget(run / "student.int8.onnx", "onnxruntime", opts, feeds)]
reps = profile_artifacts(targets, MeasureConfig(sessions=5, iterations=100, warmup_iters=20), interleave=True,
                         progress=False)
labels = ["torch eager fp32", "openvino fp32", "openvino int8", "ort int8"]
eager = reps[0].p50
for label, rep in zip(labels, reps, strict=True):
    print(f"{label}: p50 {rep.p50:.3f} ms, speed-up vs eager {eager / rep.p50:.2f}x, valid={rep.valid}")
