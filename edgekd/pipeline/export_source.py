"""``edgekd export SOURCE``: a finished run's student (rebuilt from its manifest) or an ONNX file from elsewhere."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edgekd.errors import ConfigError, UnknownNameError
from edgekd.export.dispatch import FORMATS, ExportSummary, _public, export_onnx_file
from edgekd.feeds import InputArgs
from edgekd.iospec import IOSpec
from edgekd.runtime.predict import iterate_numpy, onnx_predict, torch_predict
from edgekd.tasks.run_student import load_run_student


def export_source(source: str | os.PathLike[str], fmt: str, out: str | os.PathLike[str], *, opset: int | None = None,
                  exporter: str | None = None, simplify: bool = True, dynamic_batch: bool = True,
                  input_shapes: dict[str, tuple[int, ...]] | None = None,
                  profiles: dict[str, tuple[list[int], list[int], list[int]]] | None = None,
                  precision: str = "fp16", max_batch: int = 8, workspace_mb: int = 1024,
                  calib: str | os.PathLike[str] | None = None, calib_count: int = 32,
                  atol: float | None = None, rtol: float | None = None,
                  weights: str | None = None, input_args: InputArgs | None = None) -> ExportSummary:
    """``weights``: a run folder's weights file to export (default ``student_kd.safetensors``; a QAT fine-tune
    run also has ``student_qat.safetensors``). ``input_args``: --input/--feed values for the parity inputs of
    an ONNX source (:mod:`edgekd.feeds`)."""
    if fmt not in FORMATS:
        raise UnknownNameError("export format (--format)", fmt, FORMATS)
    src = Path(source)
    if not src.exists():
        raise ConfigError(f"SOURCE {str(src)!r} does not exist",
                          hint="pass an .onnx file or the output folder of an edgekd run")
    if weights is not None and not src.is_dir():
        raise ConfigError(f"--weights {weights!r} applies to a run folder, and SOURCE {str(src)!r} is a file",
                          hint="drop --weights, or pass the run's output folder")
    if src.is_dir():
        if input_args is not None and any(a.shape is None for a in input_args.args.values()):
            raise ConfigError("--input NAME=VALUE and --feed apply to an ONNX SOURCE; a run folder's parity "
                              "inputs come from its recipe's input spec", hint="give shapes only (NAME=1x3x64x64)")
        return _export_run(src, fmt, Path(out), weights=weights, opset=opset, exporter=exporter, simplify=simplify,
                           dynamic_batch=dynamic_batch, precision=precision, max_batch=max_batch,
                           workspace_mb=workspace_mb, profiles=profiles, input_shapes=input_shapes,
                           calib_count=calib_count, atol=atol, rtol=rtol)
    return export_onnx_file(src, fmt, Path(out), input_shapes=input_shapes or {}, profiles=profiles,
                             precision=precision, max_batch=max_batch, workspace_mb=workspace_mb, calib=calib,
                             calib_count=calib_count, atol=atol, rtol=rtol, input_args=input_args)


# --- a finished run ----------------------------------------------------------------------------------------

def _export_run(run_dir: Path, fmt: str, out: Path, *, weights: str | None = None, opset: int | None, exporter: str | None, simplify: bool,
                dynamic_batch: bool, precision: str, max_batch: int, workspace_mb: int,
                profiles: dict[str, Any] | None, input_shapes: dict[str, tuple[int, ...]] | None, calib_count: int,
                atol: float | None, rtol: float | None) -> ExportSummary:
    from edgekd.export.onnx import export_onnx
    from edgekd.export.parity import check_parity

    run = load_run_student(run_dir, weights=weights)
    ecfg = run.recipe.export
    atol = ecfg.parity.atol if atol is None else atol
    rtol = ecfg.parity.rtol if rtol is None else rtol
    spec: IOSpec = run.spec
    # parity inputs: the spec's dummy inputs at two batch sizes (the test split would need the task's data)
    feeds = [spec.dummy_inputs({"batch": b}, seed=b) if dynamic_batch else spec.dummy_inputs({"batch": 1}, seed=b)
             for b in (1, 2)]
    kw = dict(opset=opset or ecfg.opset, exporter=exporter or ecfg.exporter, dynamic_batch=dynamic_batch,
              simplify=simplify)
    if fmt == "litert":
        from edgekd.export.litert import check_litert_parity, export_litert

        tfl = out if out.suffix == ".tflite" else out / "student.tflite"
        lt = export_litert(run.module, spec, tfl, dynamic=dynamic_batch)
        lt_rep = check_litert_parity(run.module, spec, lt.path, feeds, atol=atol, rtol=rtol)
        return ExportSummary(fmt, "run", [lt.path], asdict(lt_rep), _public(lt),
                             [f"batch fixed: {lt.fallback_reason}"] if lt.fallback_reason else [])
    if fmt == "openvino":
        from edgekd.export.openvino import check_openvino_parity, export_openvino_from_torch

        xml = out if out.suffix == ".xml" else out / "student.xml"
        ov_res = export_openvino_from_torch(run.module, spec, xml, dynamic_batch=dynamic_batch)
        ov_rep = check_openvino_parity(run.module, spec, ov_res.xml, feeds, atol=atol, rtol=rtol)
        return ExportSummary(fmt, "run", [ov_res.xml, ov_res.bin], asdict(ov_rep), _public(ov_res))
    onnx_out = out if fmt == "onnx" and out.suffix == ".onnx" else out / "student.onnx"
    res = export_onnx(run.module, spec, onnx_out, **kw)  # type: ignore[arg-type]
    from edgekd.quantize.fake_quant import is_qat

    qat = is_qat(run.module)
    rep = check_parity(torch_predict(run.module, spec), onnx_predict(onnx_out), feeds, output_names=spec.output_names,
                       atol=atol, rtol=rtol, artifact=onnx_out.name, raise_on_failure=not qat)
    notes = [f"ONNX exporter fell back to TorchScript: {res.fallback_reason}"] if res.fallback_reason else []
    if qat and not rep.passed:
        diffs = ", ".join(f"{o.name} {o.max_abs_diff:.3g}" for o in rep.outputs)
        notes.append(f"quantization-aware student: torch's fake quantization and ONNX Runtime's integer kernels round "
                     f"differently (max abs diff {diffs}); measured, not judged: judge the INT8 model by its metric "
                     "(edgekd distill-and-export reports it)")
    if res.simplify_note:
        notes.append(f"simplification: {res.simplify_note}")
    if fmt == "onnx":
        return ExportSummary(fmt, "run", [onnx_out], asdict(rep), _public(res), notes)
    from edgekd.export.tensorrt import write_build_plan

    calib_batches = None
    if precision == "int8":
        calib_batches = []
        for batch, _ in iterate_numpy(run.task.dataset("train"), spec.input_names, batch_size=1):
            calib_batches.append(batch)
            if len(calib_batches) >= calib_count:
                break
    plan = write_build_plan(onnx_out, out, precision=precision, shapes=input_shapes, ranges=profiles,
                            max_batch=max_batch, workspace_mb=workspace_mb, calib=calib_batches,
                            method=run.recipe.quantize.calibration.method,
                            parity_feeds=[spec.dummy_inputs({"batch": 1}, seed=7)], atol=atol, rtol=rtol,
                            compare=run.task.parity_compare, min_agreement=run.task.parity_min_agreement)
    return ExportSummary(fmt, "run", [onnx_out, plan], asdict(rep), _public(res), notes)
