"""Figures for README.md from a finished run folder of this example.

    python examples/ppocr_det/measure.py runs/ppocr_det

Reads the run's manifest (the resolved recipe: task args and seed) and report.json, then measures on the
held-out test images what the pipeline does not: the agreement of each student artifact with the teacher
(IoU of the probability maps binarised at DB's 0.3, pooled over all test pixels), and its own interleaved
ONNX Runtime latency at 1 thread (teacher, student FP32, student INT8 in turn, one call each per round,
so load on the machine hits all three alike). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _task_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("ppocr_det_task", HERE / "task.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _session(path: Path, threads: int = 1):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def agreement(task, teacher, student, split: str = "test") -> float:  # type: ignore[no-untyped-def]
    """Pooled IoU of the binarised maps (union of all test images' pixels); ``student`` is an ORT session
    or a torch module."""
    import torch

    inter = union = 0
    ds = task.dataset(split)
    t_name = teacher.get_inputs()[0].name
    for i in range(0, len(ds), 16):
        x = np.stack([ds[j]["image"].numpy() for j in range(i, min(i + 16, len(ds)))])
        a = teacher.run(None, {t_name: x})[0] > 0.3
        if isinstance(student, torch.nn.Module):
            with torch.no_grad():
                b = student.eval()(torch.from_numpy(x)).numpy() > 0.3
        else:
            b = student.run(None, {student.get_inputs()[0].name: x})[0] > 0.3
        inter += int(np.logical_and(a, b).sum())
        union += int(np.logical_or(a, b).sum())
    return inter / union if union else 1.0


def _torch_student(task, path: Path):  # type: ignore[no-untyped-def]
    from edgekd.weights import load_module_weights

    return load_module_weights(task.build_student(init="scratch"), path)


def latency(sessions: dict[str, object], x: np.ndarray, rounds: int) -> dict[str, float]:
    """Median ms per call, the sessions called in turn each round (after 10 warm-up rounds)."""
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for r in range(rounds + 10):
        for name, s in sessions.items():
            feed = {s.get_inputs()[0].name: x}  # type: ignore[attr-defined]
            t0 = time.perf_counter()
            s.run(None, feed)  # type: ignore[attr-defined]
            if r >= 10:
                times[name].append((time.perf_counter() - t0) * 1e3)
    return {k: float(np.median(v)) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="the --out folder of `edgekd distill-and-export` on recipe.yaml")
    ap.add_argument("--rounds", type=int, default=200, help="interleaved latency rounds")
    args = ap.parse_args()
    manifest = json.loads((args.run / "manifest.json").read_text())
    report = json.loads((args.run / "report.json").read_text())
    recipe = manifest["recipe_config"]
    t = _task_module()
    task = t.build(recipe["task"]["args"], recipe["seed"])
    teacher = _session(Path(report["teacher"]["path"]))
    arts = {"student_fp32": args.run / "student.onnx", "student_int8": args.run / "student.int8.onnx"}
    agree = {k: agreement(task, teacher, _session(p)) for k, p in arts.items() if p.is_file()}
    for k in ("student_alone", "student_kd"):  # the torch students: does distillation move the map?
        if (args.run / f"{k}.safetensors").is_file():
            agree[k] = agreement(task, teacher, _torch_student(task, args.run / f"{k}.safetensors"))
    size = task.io_spec().inputs[0].shape[-1]
    x = task.dataset("test")[0]["image"].numpy()[None]
    lat = latency({"teacher": teacher, **{k: _session(p) for k, p in arts.items() if p.is_file()}}, x, args.rounds)
    v = report["variants"]
    rows = [("teacher (ONNX, PP-OCRv4 det)", "teacher", None, "teacher"),
            ("student alone (no teacher)", "student_alone", "student_alone", None),
            ("student KD (torch)", "student_kd", "student_kd", None),
            ("student KD, ONNX FP32", "onnx_fp32", "student_fp32", "student_fp32"),
            ("student KD, ONNX INT8", "onnx_int8", "student_int8", "student_int8")]
    print(f"test images: {len(task.dataset('test'))} rendered, {size}x{size}; seed {recipe['seed']}")
    print("| model | params | F-score (IoU>=0.5) | precision | recall | agreement with teacher (IoU) "
          "| ORT latency 1 thread (ms, median) |")
    print("|---|---|---|---|---|---|---|")
    for label, key, agree_key, lat_key in rows:
        if key not in v:
            continue
        e = v[key].get("extras", {})
        ag = f"{agree[agree_key]:.3f}" if agree_key in agree else ""
        la = f"{lat[lat_key]:.2f}" if lat_key in lat else ""
        print(f"| {label} | {v[key].get('params') or ''} | {v[key]['metric']:.3f} | {e.get('precision', 0):.3f} "
              f"| {e.get('recall', 0):.3f} | {ag} | {la} |")
    for k in ("student_fp32", "student_int8"):
        if k in lat:
            print(f"latency {k} / teacher: {lat[k] / lat['teacher']:.3f}")
    print("pipeline summary:", json.dumps(report.get("summary", {}), indent=None))


if __name__ == "__main__":
    main()
