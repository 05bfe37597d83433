"""Stage 2, produce the artifacts: the FP32 ONNX export and its strict parity check, the INT8 artifact
(PTQ on ONNX Runtime or OpenVINO, or the QAT student's own export) and its measured parity, and the
recipe's other ``export.formats``. Which files exist is the run's :class:`ArtifactSet`'s business."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekd.config.recipe import RecipeBase
from edgekd.pipeline.artifacts import Artifact
from edgekd.pipeline.context import RunContext
from edgekd.pipeline.train import TrainedModels


@dataclass
class Produced:
    parity: dict[str, dict[str, Any]] = field(default_factory=dict)  # by variant name
    exports: dict[str, dict[str, Any]] = field(default_factory=dict)  # by export format


def produce_artifacts(ctx: RunContext, trained: TrainedModels) -> Produced:
    arts, out = ctx.artifacts, ctx.out_dir
    done = Produced()
    fp32, int8 = arts.fp32, arts.int8
    if fp32 is None:  # QAT from scratch: the KD student's own export is the INT8 artifact
        with ctx.rec.stage("export_onnx_qat") as r:
            if int8 is None:  # an ArtifactSet invariant: a QAT-from-scratch plan always has its INT8 artifact
                raise RuntimeError("QAT from scratch without an INT8 artifact in the ArtifactSet")
            r.update(_export_qat_int8(ctx, trained.student, int8.path(out)))
    else:
        with ctx.rec.stage("export_onnx") as r:
            r.update(_export_fp32(ctx, trained.student, fp32.path(out)))
        with ctx.rec.stage("parity_fp32") as r:
            done.parity[fp32.variant or ""] = _parity(ctx, trained.student, fp32, exact=True)
            r.update(done.parity[fp32.variant or ""])
        if arts.qat.finetune_arm and int8 is not None:
            with ctx.rec.stage("export_onnx_qat") as r:
                r.update(_export_qat_int8(ctx, trained.int8_student, int8.path(out)))
        elif arts.qat.int8_source == "ptq":
            from edgekd.pipeline.int8 import quantize_int8

            q = ctx.recipe.quantize
            with ctx.rec.stage("quantize_int8", runtime=q.runtime,
                               method="dynamic" if q.mode == "dynamic" else q.calibration.method) as r:
                r.update(quantize_int8(ctx, fp32.path(out)))
    if int8 is not None and int8.path(out).exists():
        with ctx.rec.stage("parity_int8") as r:
            done.parity[int8.variant or ""] = _parity(ctx, trained.int8_student, int8, exact=False)
            r.update(done.parity[int8.variant or ""])
    if set(ctx.recipe.export.formats) - {"onnx"}:
        done.exports = _extra_formats(ctx, trained)
    return done


def public(obj: Any) -> dict[str, Any]:
    """A result dataclass as JSON-ready data (paths as strings)."""
    import dataclasses

    if dataclasses.is_dataclass(obj):
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(obj).items()}  # type: ignore[arg-type]
    return {"result": str(obj)}


def _export_fp32(ctx: RunContext, model: Any, path: Path) -> dict[str, Any]:
    from edgekd.export.onnx import export_onnx

    ex = ctx.recipe.export
    return public(export_onnx(model, ctx.spec, path, opset=ex.opset, exporter=ex.exporter,
                              dynamic_batch=ex.dynamic_batch, simplify=ex.simplify))


def _export_qat_int8(ctx: RunContext, model: Any, int8_path: Path) -> dict[str, Any]:
    """Write the INT8 artifact of a QAT student as ``distill.qat.export`` says: its own QDQ, or its weights
    re-quantized by ONNX Runtime (``edgekd.quantize.fake_quant.strip_qat``). Torch fake-quant vs ORT integer
    kernels differ by about one quantization step, so that parity is measured and judged by the metric."""
    qat = ctx.recipe.distill.qat
    if qat is None or qat.export_kind == "qdq":
        return {"export": _export_fp32(ctx, model, int8_path)}
    from edgekd.quantize.fake_quant import strip_qat
    from edgekd.quantize.ort_static import quantize_onnx_static

    float_path = ctx.out_dir / "train" / "student_qat.float.onnx"
    res = _export_fp32(ctx, strip_qat(model), float_path)
    cal = ctx.recipe.quantize.calibration
    q = quantize_onnx_static(float_path, int8_path, ctx.calibration(), method=cal.method,
                             per_channel=qat.per_channel, percentile=cal.percentile)
    return {"export": res, "requantize": public(q)}


def artifact_predict(artifact: Artifact, path: Path, threads: int | None = None) -> Any:
    """A numpy predict function running an exported artifact on its own runtime."""
    from edgekd.runtime import SessionOptions, get_runtime
    from edgekd.runtime.predict import session_predict

    return session_predict(get_runtime(artifact.runtime).load(path, SessionOptions(threads=threads)))


def _parity(ctx: RunContext, student: Any, artifact: Artifact, *, exact: bool) -> dict[str, Any]:
    """FP32: strict allclose (raises ParityError). INT8: measured differences, judged by the metric instead."""
    from edgekd.errors import ParityError
    from edgekd.export.parity import check_parity
    from edgekd.runtime.predict import torch_predict

    path, par = artifact.path(ctx.out_dir), ctx.recipe.export.parity
    ref, run = torch_predict(student, ctx.spec), artifact_predict(artifact, path)
    kw = dict(output_names=ctx.spec.output_names, atol=par.atol, rtol=par.rtol, artifact=path.name)
    if not exact and ctx.task.parity_compare == "argmax":
        # dense class scores (segmentation): INT8 is judged on the argmax map, not on logits
        return public(check_parity(ref, run, ctx.test_feeds(), **kw, compare="argmax",  # type: ignore[arg-type]
                                   min_agreement=ctx.task.parity_min_agreement,
                                   raise_on_failure=False))
    try:
        rep = check_parity(ref, run, ctx.test_feeds(), **kw)  # type: ignore[arg-type]
    except ParityError as exc:
        if exact:
            raise
        return {"checked": "int8 vs fp32 torch (informative; judged by the metric)",
                "max_abs_diff": {n: a for n, (a, _) in exc.mismatches.items()}}
    return public(rep)


def _extra_formats(ctx: RunContext, trained: TrainedModels) -> dict[str, dict[str, Any]]:
    from edgekd.pipeline.formats import export_extra_formats

    r = ctx.recipe
    with ctx.rec.stage("export_formats", formats=[f for f in r.export.formats if f != "onnx"]) as rec:
        int8 = ctx.artifacts.ONNX_INT8.path(ctx.out_dir)
        trt_onnx, trt_note = tensorrt_source(r, ctx.artifacts.ONNX_FP32.path(ctx.out_dir), int8)
        exports = export_extra_formats(trained.student, ctx.task, r, ctx.device, ctx.out_dir, onnx_path=trt_onnx,
                                       qdq=trt_onnx == int8, tensorrt_note=trt_note, feeds=ctx.test_feeds(),
                                       calib=ctx.calibration(), spec=ctx.spec)
        rec.update(exports)
    return exports


def tensorrt_source(recipe: RecipeBase, onnx_path: Path, int8_path: Path) -> tuple[Path | None, str | None]:
    """Which ONNX model TensorRT gets, and a note when it is not the INT8 artifact. TensorRT parses only
    symmetric signed INT8 Q/DQ: a QAT model with int8 activations goes as it is (explicit INT8); one with
    uint8 activations cannot, so TensorRT gets the FP32 student.onnx (for INT8 edgekd quantizes it to symmetric
    Q/DQ), or, when a QAT-from-scratch
    run has no FP32 export, gets nothing."""
    qat = recipe.distill.qat
    if qat is None:
        return onnx_path, None  # PTQ runs: the FP32 model; for INT8 the plan step writes its symmetric Q/DQ model
    if qat.activation == "int8":
        return int8_path, None
    why = ("the QAT model's activations are uint8 (distill.qat.activation=uint8), and TensorRT parses only "
           "symmetric int8 Q/DQ; set distill.qat.activation=int8 to give TensorRT the QAT model")
    if qat.mode == "scratch":
        return None, f"skipped: {why}"
    return onnx_path, (f"TensorRT gets the FP32 student.onnx (INT8 precision: edgekd quantizes it to symmetric "
                       f"INT8 Q/DQ): {why}")
