"""``edgekd export SOURCE --format onnx|openvino|tensorrt --out PATH``: one entry for both kinds of source.

SOURCE is either an edgekd run folder (the student is rebuilt from the manifest's recipe and its
weights; parity is checked against the torch model) or an ONNX file edgekd did not make (Constant-node
weights moved to initializers and folded; parity is checked against ONNX Runtime running the
original file). Every artifact is checked before the command reports success.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekd.errors import ConfigError, UnknownNameError
from edgekd.export.iospec import IOSpec

FORMATS = ("onnx", "openvino", "tensorrt")


@dataclass
class ExportSummary:
    format: str
    source_kind: str  # "run" | "onnx"
    artifacts: list[Path]
    parity: dict[str, Any] | None
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def parse_profiles(items: list[str]) -> dict[str, tuple[list[int], list[int], list[int]]]:
    """``["x=1x3x32x32:1x3x640x640:1x3x1280x1280"]`` -> {"x": (min, opt, max)}."""
    out: dict[str, tuple[list[int], list[int], list[int]]] = {}
    for item in items:
        name, sep, rest = item.partition("=")
        parts = rest.split(":")
        if not sep or len(parts) != 3:
            raise ConfigError(f"--profile {item!r}: expected NAME=MIN:OPT:MAX, e.g. --profile "
                              "x=1x3x32x32:1x3x640x640:4x3x1280x1280")
        try:
            shapes = [[int(d) for d in p.lower().split("x")] for p in parts]
        except ValueError:
            raise ConfigError(f"--profile {item!r}: dimensions must be integers separated by 'x'") from None
        if any(d <= 0 for s in shapes for d in s):
            raise ConfigError(f"--profile {item!r}: dimensions must be positive")
        out[name.strip()] = (shapes[0], shapes[1], shapes[2])
    return out


def export_source(source: str | os.PathLike[str], fmt: str, out: str | os.PathLike[str], *, opset: int | None = None,
                  exporter: str | None = None, simplify: bool = True, dynamic_batch: bool = True,
                  input_shapes: dict[str, tuple[int, ...]] | None = None,
                  profiles: dict[str, tuple[list[int], list[int], list[int]]] | None = None,
                  precision: str = "fp16", max_batch: int = 8, workspace_mb: int = 1024,
                  calib: str | os.PathLike[str] | None = None, calib_count: int = 32,
                  atol: float | None = None, rtol: float | None = None,
                  weights: str | None = None) -> ExportSummary:
    """``weights``: a run folder's weights file to export (default ``student_kd.safetensors``; a QAT fine-tune
    run also has ``student_qat.safetensors``)."""
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
        return _export_run(src, fmt, Path(out), weights=weights, opset=opset, exporter=exporter, simplify=simplify,
                           dynamic_batch=dynamic_batch, precision=precision, max_batch=max_batch,
                           workspace_mb=workspace_mb, profiles=profiles, input_shapes=input_shapes,
                           calib_count=calib_count, atol=atol, rtol=rtol)
    return _export_onnx_file(src, fmt, Path(out), input_shapes=input_shapes or {}, profiles=profiles,
                             precision=precision, max_batch=max_batch, workspace_mb=workspace_mb, calib=calib,
                             calib_count=calib_count, atol=atol, rtol=rtol)


# --- a finished run ----------------------------------------------------------------------------------------

def _export_run(run_dir: Path, fmt: str, out: Path, *, weights: str | None = None, opset: int | None, exporter: str | None, simplify: bool,
                dynamic_batch: bool, precision: str, max_batch: int, workspace_mb: int,
                profiles: dict[str, Any] | None, input_shapes: dict[str, tuple[int, ...]] | None, calib_count: int,
                atol: float | None, rtol: float | None) -> ExportSummary:
    from edgekd.export.external import load_run_student
    from edgekd.export.onnx import export_onnx
    from edgekd.export.parity import check_parity
    from edgekd.tasks.base import torch_predict

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
    if fmt == "openvino":
        from edgekd.export.openvino import check_openvino_parity, export_openvino_from_torch

        xml = out if out.suffix == ".xml" else out / "student.xml"
        ov_res = export_openvino_from_torch(run.module, spec, xml, dynamic_batch=dynamic_batch)
        ov_rep = check_openvino_parity(run.module, spec, ov_res.xml, feeds, atol=atol, rtol=rtol)
        return ExportSummary(fmt, "run", [ov_res.xml, ov_res.bin], asdict(ov_rep), _public(ov_res))
    onnx_out = out if fmt == "onnx" and out.suffix == ".onnx" else out / "student.onnx"
    res = export_onnx(run.module, spec, onnx_out, **kw)  # type: ignore[arg-type]
    from edgekd.distill.qat import is_qat

    qat = is_qat(run.module)
    rep = check_parity(torch_predict(run.module, spec), _ort(onnx_out), feeds, output_names=spec.output_names,
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
        from edgekd.tasks.base import iterate_numpy

        calib_batches = []
        for batch, _ in iterate_numpy(run.task.dataset("train"), spec.input_names, batch_size=1):
            calib_batches.append(batch)
            if len(calib_batches) >= calib_count:
                break
    plan = write_build_plan(onnx_out, out, precision=precision, shapes=input_shapes, ranges=profiles,
                            max_batch=max_batch, workspace_mb=workspace_mb, calib=calib_batches,
                            parity_feeds=[spec.dummy_inputs({"batch": 1}, seed=7)], atol=atol, rtol=rtol)
    return ExportSummary(fmt, "run", [onnx_out, plan], asdict(rep), _public(res), notes)


# --- an ONNX file from elsewhere ---------------------------------------------------------------------------

def _export_onnx_file(src: Path, fmt: str, out: Path, *, input_shapes: dict[str, tuple[int, ...]],
                      profiles: dict[str, Any] | None, precision: str, max_batch: int, workspace_mb: int,
                      calib: str | os.PathLike[str] | None, calib_count: int, atol: float | None,
                      rtol: float | None) -> ExportSummary:
    from edgekd.export.external import concrete_feeds, prepare_external_onnx
    from edgekd.export.parity import check_parity

    atol = 1e-4 if atol is None else atol
    rtol = 1e-3 if rtol is None else rtol
    em = prepare_external_onnx(src, input_shapes=input_shapes)
    feeds = [concrete_feeds(em.spec, input_shapes, seed=s) for s in (1, 2)]
    details = {"constants_converted": em.constants_converted, "folded": em.folded,
               "inputs": [asdict(t) for t in em.spec.inputs]}
    if fmt == "onnx":
        dst = out if out.suffix == ".onnx" else out / src.name
        _save_onnx(em.proto, dst)
        rep = check_parity(_ort(src), _ort(dst), feeds, output_names=em.spec.output_names, atol=atol, rtol=rtol,
                           artifact=dst.name)
        return ExportSummary(fmt, "onnx", [dst], asdict(rep), details, em.notes)
    if fmt == "openvino":
        from edgekd.export.openvino import export_openvino_from_onnx
        from edgekd.runtime import SessionOptions, get_runtime
        from edgekd.runtime.predict import session_predict

        xml = out if out.suffix == ".xml" else out / (src.stem + ".xml")
        xml.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".edgekd-ov-", dir=xml.parent))
        try:
            tmp = work / src.name
            _save_onnx(em.proto, tmp)
            res = export_openvino_from_onnx(tmp, xml)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        sess = get_runtime("openvino").load(res.xml, SessionOptions(precision="fp32"))
        rep = check_parity(_ort(src), session_predict(sess), feeds, output_names=em.spec.output_names, atol=atol,
                           rtol=rtol, artifact=res.xml.name)
        return ExportSummary(fmt, "onnx", [res.xml, res.bin], asdict(rep), {**details, **_public(res)}, em.notes)
    from edgekd.export.tensorrt import write_build_plan

    out.mkdir(parents=True, exist_ok=True)
    dst = out / src.name
    _save_onnx(em.proto, dst)
    calib_batches = None
    if calib is not None:
        from edgekd.quantize.calibration import model_inputs, npy_feeds

        calib_batches = list(npy_feeds(Path(calib), model_inputs(dst), limit=calib_count))
    elif precision == "int8":
        raise ConfigError("--precision int8 for TensorRT needs --calib DIR (a folder of .npy/.npz inputs at the "
                          "profile's opt shape)", hint="or build fp16 (--precision fp16)")
    from edgekd.export.tensorrt import profile_shapes
    from edgekd.quantize.calibration import model_inputs

    prof = profile_shapes(model_inputs(dst), shapes=input_shapes, ranges=profiles, max_batch=max_batch)
    opt_feeds = [concrete_feeds(em.spec, {k: tuple(v["opt"]) for k, v in prof.items()}, seed=3)]
    plan = write_build_plan(dst, out, precision=precision, shapes=input_shapes, ranges=profiles, max_batch=max_batch,
                            workspace_mb=workspace_mb, calib=calib_batches, parity_feeds=opt_feeds, atol=atol,
                            rtol=rtol)
    return ExportSummary(fmt, "onnx", [dst, plan], None, details, em.notes)


def _save_onnx(proto: Any, dst: Path) -> None:
    import onnx

    from edgekd.export.onnx import EXTERNAL_DATA_BYTES
    from edgekd.fileio import atomic_path

    if proto.ByteSize() > EXTERNAL_DATA_BYTES:
        dst.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
        try:
            onnx.save_model(proto, str(work / dst.name), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=dst.name + ".data", size_threshold=0)
            os.replace(work / (dst.name + ".data"), dst.with_name(dst.name + ".data"))
            os.replace(work / dst.name, dst)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    with atomic_path(dst) as tmp:
        onnx.save_model(proto, str(tmp))


def _ort(path: Path) -> Any:
    from edgekd.runtime import SessionOptions, get_runtime
    from edgekd.runtime.predict import session_predict

    return session_predict(get_runtime("onnxruntime").load(path, SessionOptions(threads=None)))


def _public(obj: Any) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(obj).items()}

