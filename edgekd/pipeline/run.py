"""``edgekd distill-and-export``: recipe -> teacher -> students -> ONNX -> INT8 -> metrics
-> latency -> report, manifest and budget verdict. Each stage is one function; this
module only composes them and records what each produced."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.config.device import DeviceConfig
from edgekd.config.recipe import RecipeBase, recipe_hash
from edgekd.fileio import sha256_file, write_json, write_text
from edgekd.pipeline.evaluate import evaluate_all, model_predict, param_count
from edgekd.pipeline.manifest import artifact_entry, write_manifest
from edgekd.pipeline.report import REPORT_SCHEMA, render_markdown
from edgekd.tasks.base import calibration_items

log = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    out_dir: Path
    report: dict[str, Any]
    budget_passed: bool | None  # None when no budget applies (or measured off-device)


@dataclass
class _Recorder:
    """Stage timings and the provenance list written to the manifest."""

    say: Callable[[str], None]
    timings: dict[str, float] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str, **info: Any) -> Iterator[dict[str, Any]]:
        self.say(f"[{name}] ...")
        t0 = time.perf_counter()
        record: dict[str, Any] = {"step": name, **info}
        yield record
        dt = time.perf_counter() - t0
        self.timings[name] = round(dt, 2)
        record["seconds"] = round(dt, 2)
        self.steps.append(record)
        self.say(f"[{name}] done in {dt:.1f}s")


def run_pipeline(recipe: RecipeBase, device: DeviceConfig, out_dir: Path, *, progress: bool = True,
                 say: Callable[[str], None] = print) -> PipelineResult:
    from edgekd.distill.loop import fit
    from edgekd.pipeline.capability import check_capabilities
    from edgekd.pipeline.teacher import _val_fn, obtain_teacher
    from edgekd.tasks import build_task
    from edgekd.weights import save_module_weights

    warnings = check_capabilities(recipe, device)
    for w in warnings:
        say(f"warning: {w}")
    out_dir.mkdir(parents=True, exist_ok=True)
    rec = _Recorder(say)
    rhash = recipe_hash(recipe)
    t_start = time.perf_counter()

    import torch

    # Seed before anything builds weights, so a run is reproducible from (recipe, seed).
    torch.manual_seed(recipe.seed)
    np.random.seed(recipe.seed % (2**32))
    with rec.stage("data", task=recipe.task.kind):
        task = build_task(recipe.task, recipe.seed)
        spec = task.io_spec()
        train_set = task.dataset("train")

    with rec.stage("teacher") as r:
        teacher, tinfo = obtain_teacher(recipe, task, out_dir, progress=progress)
        r.update({k: v for k, v in tinfo.items() if k != "history"})

    val_fn = _val_fn(task)
    common = dict(train_set=train_set, input_names=spec.input_names, cfg=recipe.train, task_loss=task.task_loss,
                  val_fn=val_fn, lower_is_better=task.metric.lower_is_better, seed=recipe.seed, progress=progress)
    with rec.stage("student_alone"):
        alone = fit(_scratch_student(task), out_dir=out_dir / "train" / "student_alone", desc="student alone",
                    **common)  # type: ignore[arg-type]
        save_module_weights(alone.student, out_dir / "student_alone.safetensors")
    qat_cfg = recipe.distill.qat
    qat_scratch = qat_cfg is not None and qat_cfg.mode == "scratch"
    tcache = out_dir / "train" / "teacher_cache" if recipe.distill.teacher_cache else None
    with rec.stage("student_kd", losses=[lc.kind for lc in recipe.distill.losses]):
        kd_start = task.build_student()
        if qat_cfg is not None and qat_scratch:
            from edgekd.quantize.fake_quant import prepare_qat

            prepare_qat(kd_start, per_channel=qat_cfg.per_channel, weight_bits=qat_cfg.weight_bits,
                        activation=qat_cfg.activation)
        kd = fit(kd_start, teacher=teacher, losses=recipe.distill.losses,
                 task_loss_weight=recipe.distill.task_loss_weight, out_dir=out_dir / "train" / "student_kd",
                 desc="student KD", teacher_cache=tcache, qat=qat_scratch, **common)  # type: ignore[arg-type]
        student = kd.student
        save_module_weights(student, out_dir / "student_kd.safetensors")

    artifacts: list[dict[str, Any]] = []
    parity: dict[str, Any] = {}
    onnx_path = out_dir / "student.onnx"
    int8_path = out_dir / "student.int8.onnx"
    stale_files = [onnx_path, int8_path, out_dir / "student_qat.safetensors", *(out_dir / "openvino").glob("student.*"),
                   *(out_dir / "tensorrt").glob("student.*")]
    for stale in stale_files:  # a re-used --out folder must not report an earlier run's artifact
        stale.unlink(missing_ok=True)
    from edgekd.export.onnx import export_onnx

    # Quantization-aware distillation: the student's fake-quant scales were learnt, so its export IS the INT8
    # artifact (QDQ). No FP32 ONNX is written and PTQ is skipped (quantizing a QDQ graph again would corrupt
    # it). Torch fake-quant vs ORT integer kernels differ by about one quantization step, so that parity is
    # measured and judged by the metric, as for PTQ.
    # distill.qat.mode=finetune: the FP32 student is exported and checked as usual, then fine-tuned with fake
    # quantization (edgekd.distill.qat_finetune); that model's QDQ export is the INT8 artifact instead of PTQ.
    qat = qat_scratch
    int8_student = student  # the torch model the INT8 artifact is checked against
    with rec.stage("export_onnx_qat" if qat else "export_onnx") as r:
        if qat:
            r.update(_export_qat_int8(student, task, recipe, int8_path, out_dir))
        else:
            res = export_onnx(student, spec, onnx_path, opset=recipe.export.opset, exporter=recipe.export.exporter,
                              dynamic_batch=recipe.export.dynamic_batch, simplify=recipe.export.simplify)
            r.update(_public(res))
    if not qat:
        with rec.stage("parity_fp32") as r:
            parity["onnx_fp32"] = _parity(student, onnx_path, task, recipe, exact=True)
            r.update(parity["onnx_fp32"])
        if qat_cfg is not None and qat_cfg.mode == "finetune":
            from edgekd.distill.qat_finetune import qat_finetune

            with rec.stage("qat_finetune", weight_bits=qat_cfg.weight_bits, per_channel=qat_cfg.per_channel,
                           epochs=qat_cfg.finetune_epochs) as r:
                ft = qat_finetune(student, qat=qat_cfg, train=recipe.train,
                                  calib=calibration_items(task, recipe.quantize.calibration.samples),
                                  teacher=teacher, losses=recipe.distill.losses,
                                  task_loss_weight=recipe.distill.task_loss_weight,
                                  out_dir=out_dir / "train" / "student_qat", desc="student QAT fine-tune",
                                  teacher_cache=tcache,
                                  **{k: v for k, v in common.items() if k not in ("cfg", "input_names")},
                                  input_names=spec.input_names)  # type: ignore[arg-type]
                int8_student = ft.student
                save_module_weights(int8_student, out_dir / "student_qat.safetensors")
                r.update({**ft.extras, "best_val": ft.best_metric, "seconds_train": round(ft.seconds, 1),
                          **_export_qat_int8(int8_student, task, recipe, int8_path, out_dir)})
        elif recipe.quantize.enabled:
            with rec.stage("quantize_int8", runtime=recipe.quantize.runtime,
                           method=("dynamic" if recipe.quantize.mode == "dynamic"
                                   else recipe.quantize.calibration.method)) as r:
                r.update(_quantize(onnx_path, int8_path, task, recipe))
    if int8_path.exists():
        with rec.stage("parity_int8") as r:
            parity["onnx_int8"] = _parity(int8_student, int8_path, task, recipe, exact=False)
            r.update(parity["onnx_int8"])
    exports: dict[str, dict[str, Any]] = {}
    if set(recipe.export.formats) - {"onnx"}:
        from edgekd.pipeline.formats import export_extra_formats

        with rec.stage("export_formats", formats=[f for f in recipe.export.formats if f != "onnx"]) as r:
            trt_onnx, trt_note = _tensorrt_source(recipe, onnx_path, int8_path)
            exports = export_extra_formats(
                student, task, recipe, device, out_dir, onnx_path=trt_onnx, qdq=trt_onnx == int8_path,
                tensorrt_note=trt_note,
                feeds=_test_feeds(task, recipe.export.parity.samples),
                calib=calibration_items(task, recipe.quantize.calibration.samples))
            r.update(exports)

    variants: dict[str, dict[str, Any]] = {}
    with rec.stage("evaluate"):
        models = [("teacher", teacher), ("student_alone", alone.student), ("student_kd", student)]
        if int8_student is not student:
            models.append(("student_qat", int8_student))  # the fake-quant torch model behind student.int8.onnx
        for name, model in models:
            say(f"  evaluating {name}")
            variants[name] = {**evaluate_all(task, model_predict(model, task)), "params": param_count(model)}
        n_params = param_count(student)
        for name, path in (("onnx_fp32", onnx_path), ("onnx_int8", int8_path)):
            if not path.exists():
                continue
            say(f"  evaluating {name}")
            variants[name] = {**evaluate_all(task, _ort_predict(path, threads=None)), "params": n_params,
                              "path": path.name, "sha256": sha256_file(path), "runtime": "onnxruntime",
                              "precision": "fp32" if name == "onnx_fp32" else "int8",
                              "bytes": path.stat().st_size}

    profiles: dict[str, Any] = {}
    if recipe.profile.enabled:
        with rec.stage("profile") as r:
            profiles = _profile(student, teacher, task, {"onnx_fp32": onnx_path, "onnx_int8": int8_path},
                                recipe, device, out_dir, progress)
            for name, p in profiles.items():
                if name in variants:
                    variants[name]["latency_ms"] = {k: p["latency_ms"][k] for k in ("p50", "p90", "p99")}
            r["artifacts"] = list(profiles)

    summary = _summary(task, variants, profiles)
    if "int8_relative_change" in summary:
        # the recipe's quantize.relative_tolerance, in the direction that hurts (worse INT8 metric)
        sign = 1.0 if task.metric.lower_is_better else -1.0
        worse = sign * summary["int8_relative_change"]
        summary["int8_within_tolerance"] = worse <= recipe.quantize.relative_tolerance
        if not summary["int8_within_tolerance"]:
            warnings.append(f"INT8 {task.metric.name} is {worse:.1%} worse than FP32, beyond "
                            f"quantize.relative_tolerance={recipe.quantize.relative_tolerance:g}: set "
                            "quantize.max_metric_drop for the accuracy-aware fallback, or ship FP32")
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "recipe": recipe.name,
        "recipe_hash": rhash,
        "preset": recipe.preset,
        "seed": recipe.seed,
        "device": device.name,
        # concrete model input shapes at the profiled batch, for `edgekd profile --input NAME=SHAPE`
        "inputs": _concrete_inputs(spec, recipe.profile.batch),
        "metric": {"name": task.metric.name, "lower_is_better": task.metric.lower_is_better,
                   "unit": task.metric.unit},
        "variants": variants,
        "summary": summary,
        "parity": parity,
        "exports": exports,
        "profiles": profiles,
        "teacher": {k: v for k, v in tinfo.items() if k != "history"},
        "training": {"student_alone": alone.history, "student_kd": kd.history},
        "warnings": warnings,
    }
    budget_passed = None
    with rec.stage("budget"):
        report["budget"], budget_passed = _budget(report, device, recipe.name, profiles)
    rec.timings["total"] = round(time.perf_counter() - t_start, 2)
    report["timings_s"] = rec.timings

    write_json(out_dir / "report.json", report)
    write_text(out_dir / "report.md", render_markdown(report))
    for name in ("student.onnx", "student.int8.onnx", "student_kd.safetensors", "student_qat.safetensors",
                 "student_alone.safetensors",
                 "teacher.safetensors"):
        p = out_dir / name
        if p.exists():
            v = variants.get({"student.onnx": "onnx_fp32", "student.int8.onnx": "onnx_int8"}.get(name, ""), {})
            artifacts.append(artifact_entry(p, out_dir, runtime=v.get("runtime", "torch"),
                                            precision=v.get("precision", "fp32"), metric=v.get("metric")))
    for fmt, info in exports.items():
        for rel in info.get("files", []):
            artifacts.append(artifact_entry(out_dir / rel, out_dir, runtime=fmt))
    for name in ("report.json", "report.md"):
        artifacts.append(artifact_entry(out_dir / name, out_dir))
    write_manifest(out_dir, recipe_name=recipe.name, recipe_hash=rhash,
                   recipe_config=recipe.model_dump(mode="json"), device=device.name, steps=rec.steps,
                   artifacts=artifacts)
    return PipelineResult(out_dir, report, budget_passed)


def _concrete_inputs(spec: Any, batch: int) -> dict[str, list[int]]:
    """Input shapes at the profiled batch; inputs with other dynamic dims are left out (give them by hand)."""
    from edgekd.errors import EdgekdError

    out: dict[str, list[int]] = {}
    for t in spec.inputs:
        try:
            out[t.name] = list(t.concrete_shape({"batch": batch}))
        except EdgekdError:
            continue
    return out


def _export_qat_int8(model: Any, task: Any, recipe: RecipeBase, int8_path: Path, out_dir: Path) -> dict[str, Any]:
    """Write the INT8 artifact of a QAT student as ``distill.qat.export`` says: its own QDQ, or its weights
    re-quantized by ONNX Runtime (``edgekd.quantize.fake_quant.strip_qat``)."""
    from edgekd.export.onnx import export_onnx

    qat = recipe.distill.qat
    ex = recipe.export
    if qat is None or qat.export_kind == "qdq":
        return {"export": _public(export_onnx(model, task.io_spec(), int8_path, opset=ex.opset, exporter=ex.exporter,
                                              dynamic_batch=ex.dynamic_batch, simplify=ex.simplify))}
    from edgekd.quantize.fake_quant import strip_qat
    from edgekd.quantize.ort_static import quantize_onnx_static

    float_path = out_dir / "train" / "student_qat.float.onnx"
    res = export_onnx(strip_qat(model), task.io_spec(), float_path, opset=ex.opset, exporter=ex.exporter,
                      dynamic_batch=ex.dynamic_batch, simplify=ex.simplify)
    cal = recipe.quantize.calibration
    q = quantize_onnx_static(float_path, int8_path, calibration_items(task, cal.samples), method=cal.method,
                             per_channel=qat.per_channel, percentile=cal.percentile)
    return {"export": _public(res), "requantize": _public(q)}


def _tensorrt_source(recipe: RecipeBase, onnx_path: Path, int8_path: Path) -> tuple[Path | None, str | None]:
    """Which ONNX model TensorRT gets, and a note when it is not the INT8 artifact. TensorRT parses only
    symmetric signed INT8 Q/DQ: a QAT model with int8 activations goes as it is (explicit INT8); one with
    uint8 activations cannot, so TensorRT calibrates the FP32 student.onnx instead, or, when a QAT-from-scratch
    run has no FP32 export, gets nothing."""
    qat = recipe.distill.qat
    if qat is None:
        return onnx_path, None  # PTQ runs: TensorRT calibrates the FP32 model itself (its own INT8 scheme)
    if qat.activation == "int8":
        return int8_path, None
    why = ("the QAT model's activations are uint8 (distill.qat.activation=uint8), and TensorRT parses only "
           "symmetric int8 Q/DQ; set distill.qat.activation=int8 to give TensorRT the QAT model")
    if qat.mode == "scratch":
        return None, f"skipped: {why}"
    return onnx_path, f"TensorRT gets the FP32 student.onnx (INT8 precision: TensorRT calibrates it): {why}"


def _scratch_student(task: Any) -> Any:
    """The baseline student gets nothing from the teacher: tasks whose student copies teacher weights by
    default (DFT Gaze copies stage 1) take ``init='scratch'`` for this arm."""
    import inspect

    if "init" in inspect.signature(task.build_student).parameters:
        return task.build_student(init="scratch")
    return task.build_student()


def _public(obj: Any) -> dict[str, Any]:
    import dataclasses

    if dataclasses.is_dataclass(obj):
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(obj).items()}  # type: ignore[arg-type]
    return {"result": str(obj)}


def _test_feeds(task: Any, n: int) -> list[dict[str, np.ndarray]]:
    from edgekd.tasks.base import iterate_numpy

    feeds: list[dict[str, np.ndarray]] = []
    for batch, _ in iterate_numpy(task.dataset("test"), task.io_spec().input_names, batch_size=8):
        feeds.append(batch)
        if sum(len(next(iter(f.values()))) for f in feeds) >= n:
            break
    return feeds


def _ort_predict(path: Path, threads: int | None) -> Any:
    from edgekd.runtime import SessionOptions, get_runtime
    from edgekd.runtime.predict import session_predict

    return session_predict(get_runtime("onnxruntime").load(path, SessionOptions(threads=threads)))


def _parity(student: Any, path: Path, task: Any, recipe: RecipeBase, *, exact: bool) -> dict[str, Any]:
    """FP32: strict allclose (raises ParityError). INT8: measured differences, judged by the metric instead."""
    from edgekd.errors import ParityError
    from edgekd.export.parity import check_parity
    from edgekd.tasks.base import torch_predict

    spec = task.io_spec()
    feeds = _test_feeds(task, recipe.export.parity.samples)
    kw = dict(output_names=spec.output_names, atol=recipe.export.parity.atol, rtol=recipe.export.parity.rtol,
              artifact=path.name)
    if not exact and getattr(task, "parity_compare", "allclose") == "argmax":
        # dense class scores (segmentation): INT8 is judged on the argmax map, not on logits
        rep = check_parity(torch_predict(student, spec), _ort_predict(path, threads=None), feeds, **kw,
                           compare="argmax", min_agreement=getattr(task, "parity_min_agreement", 0.99),
                           raise_on_failure=False)
        return _public(rep)
    try:
        rep = check_parity(torch_predict(student, spec), _ort_predict(path, threads=None), feeds, **kw)
    except ParityError as exc:
        if exact:
            raise
        return {"checked": "int8 vs fp32 torch (informative; judged by the metric)",
                "max_abs_diff": {n: a for n, (a, _) in exc.mismatches.items()}}
    return _public(rep)


def _quantize(onnx_path: Path, int8_path: Path, task: Any, recipe: RecipeBase) -> dict[str, Any]:
    q = recipe.quantize

    def calib() -> list[dict[str, np.ndarray]]:
        return calibration_items(task, q.calibration.samples)

    if q.runtime == "onnxruntime" and q.max_metric_drop is not None:
        return _quantize_with_fallback(onnx_path, int8_path, task, recipe, calib(), q.max_metric_drop)
    if q.mode == "dynamic":
        from edgekd.quantize.ort_dynamic import quantize_onnx_dynamic

        # no calibration: MatMul/Gemm weights are INT8 offline, activations are quantized per call
        return _public(quantize_onnx_dynamic(onnx_path, int8_path, per_channel=q.per_channel))
    if q.runtime == "onnxruntime":
        from edgekd.quantize.ort_static import quantize_onnx_static

        res = quantize_onnx_static(onnx_path, int8_path, calib(), method=q.calibration.method,
                                   per_channel=q.per_channel, percentile=q.calibration.percentile)
    else:
        from edgekd.quantize.nncf_ov import quantize_openvino

        res = quantize_openvino(onnx_path, int8_path.with_suffix(".xml"), calib(), subset_size=q.calibration.samples)
    return _public(res)


def _quantize_with_fallback(onnx_path: Path, int8_path: Path, task: Any, recipe: RecipeBase,
                            calib: list[dict[str, np.ndarray]], max_drop: float) -> dict[str, Any]:
    """``quantize.max_metric_drop``: quantize everything, then return the most sensitive layers to FP32
    until the metric on the VALIDATION split (never the test split, which reports the result) drops by at
    most that much (edgekd.quantize.fallback). A model that cannot get there is kept at its best and
    flagged in the report, not silently shipped as within tolerance."""
    import tempfile

    from edgekd.quantize.fallback import OrtQuantizer, accuracy_aware_fallback

    q = recipe.quantize

    def val_metric(path: Path) -> float:
        return float(task.evaluate(_ort_predict(path, threads=None), split="val").metric)

    with tempfile.TemporaryDirectory(prefix="edgekd-quant-") as work:
        quantizer = OrtQuantizer(onnx_path, calib, Path(work), method=q.calibration.method,
                                 per_channel=q.per_channel, percentile=q.calibration.percentile)
        res = accuracy_aware_fallback(onnx_path, int8_path, quantizer, val_metric,
                                      lower_is_better=task.metric.lower_is_better, max_drop=max_drop)
    return {"fallback": True, "split": "val", "max_metric_drop": res.max_drop, "metric_fp32": res.metric_fp32,
            "metric_int8_all": res.metric_int8_all, "metric_final": res.metric_final,
            "fp32_layers": res.fallback_layers, "within_tolerance": res.within_tolerance,
            "evaluations": res.evaluations}


def _profile(student: Any, teacher: Any, task: Any, onnx: dict[str, Path], recipe: RecipeBase,
             device: DeviceConfig, out_dir: Path, progress: bool) -> dict[str, Any]:
    """Interleaved sessions of torch eager FP32, ORT FP32 and ORT INT8 (and the teacher) on this machine."""
    from edgekd.profile.protocol import MeasureConfig, ProfileTarget, profile_artifacts
    from edgekd.runtime import SessionOptions

    p = recipe.profile
    threads = p.threads or device.default_threads
    spec = task.io_spec()
    feeds = spec.dummy_inputs({"batch": p.batch}, seed=recipe.seed)
    opts = SessionOptions(threads=threads)
    targets: list[tuple[str, Any]] = [("torch_fp32", ProfileTarget.from_module(student, spec, opts, feeds))]
    teacher_onnx = getattr(teacher, "path", None) if hasattr(teacher, "run_numpy") else None
    if teacher_onnx is not None:  # an ONNX teacher runs in ONNX Runtime, fed by position
        t_feeds = dict(zip(teacher.input_names, [feeds[n] for n in spec.input_names], strict=True))
        targets.append(("teacher_onnx_fp32", ProfileTarget(teacher_onnx, "onnxruntime", opts, t_feeds)))
    elif param_count(teacher):
        targets.append(("teacher_torch_fp32", ProfileTarget.from_module(teacher, spec, opts, feeds)))
    for name, path in onnx.items():
        if path.exists():
            targets.append((name, ProfileTarget(path, "onnxruntime", opts, feeds)))
    cfg = MeasureConfig(warmup_s=p.warmup_s, warmup_iters=p.warmup_iters, sessions=p.sessions,
                        iterations=p.iterations, min_duration_s=p.min_duration_s)
    reports = profile_artifacts([t for _, t in targets], cfg, interleave=True, progress=progress)
    prof_dir = out_dir / "profile"
    out: dict[str, Any] = {}
    for (name, _), rep in zip(targets, reports, strict=True):
        rep.save(prof_dir / f"{name}.json")
        d = rep.to_json()
        res = d["results"]
        out[name] = {"latency_ms": res["latency_ms"], "session_medians_ms": res["session_medians_ms"],
                     "peak_rss_mb": res.get("peak_rss_mb"), "valid": d["valid"],
                     "invalid_reasons": d.get("invalid_reasons", []), "runtime": d["runtime"].get("name"),
                     "threads": threads, "report": f"profile/{name}.json"}
    return out


def _summary(task: Any, variants: dict[str, Any], profiles: dict[str, Any]) -> dict[str, Any]:
    lower = task.metric.lower_is_better
    s: dict[str, Any] = {}
    m = {k: v.get("metric") for k, v in variants.items()}
    if m.get("student_alone") is not None and m.get("student_kd") is not None:
        gain = m["student_alone"] - m["student_kd"] if lower else m["student_kd"] - m["student_alone"]
        s["distillation_gain"] = gain
    if m.get("onnx_int8") is not None and m.get("onnx_fp32"):
        s["int8_relative_change"] = (m["onnx_int8"] - m["onnx_fp32"]) / abs(m["onnx_fp32"])
    p50 = {k: v["latency_ms"]["p50"] for k, v in profiles.items()}
    if "torch_fp32" in p50:
        for k in ("onnx_fp32", "onnx_int8"):
            if k in p50:
                s[f"speedup_{k}_vs_torch_fp32"] = p50["torch_fp32"] / p50[k]
    if "teacher_torch_fp32" in p50 and "torch_fp32" in p50:
        s["latency_ratio_student_vs_teacher_torch"] = p50["torch_fp32"] / p50["teacher_torch_fp32"]
    if "teacher_onnx_fp32" in p50:
        for k in ("onnx_fp32", "onnx_int8"):
            if k in p50:
                s[f"latency_ratio_{k}_vs_teacher_onnx"] = p50[k] / p50["teacher_onnx_fp32"]
    return s


def _budget(report: dict[str, Any], device: DeviceConfig, recipe_name: str,
            profiles: dict[str, Any]) -> tuple[dict[str, Any], bool | None]:
    """Check the device's budget for this recipe. Latency and memory are only judged when they
    were measured on that device (the host profile); metric and size budgets apply anywhere."""
    from edgekd.pipeline.budget import check_pipeline_budget

    return check_pipeline_budget(report, device, recipe_name, profiles)
