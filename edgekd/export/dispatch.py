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

import numpy as np

from edgekd.errors import ConfigError
from edgekd.feeds import InputArgs
from edgekd.runtime.predict import onnx_predict

FORMATS = ("onnx", "openvino", "tensorrt", "litert")


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


# --- an ONNX file from elsewhere ---------------------------------------------------------------------------

def export_onnx_file(src: Path, fmt: str, out: Path, *, input_shapes: dict[str, tuple[int, ...]],
                      profiles: dict[str, Any] | None, precision: str, max_batch: int, workspace_mb: int,
                      calib: str | os.PathLike[str] | None, calib_count: int, atol: float | None,
                      rtol: float | None, input_args: InputArgs | None = None) -> ExportSummary:
    """An ONNX file -> ``fmt``, its outputs checked against the original (ONNX Runtime) on two inputs:
    ``input_args`` (--input/--feed) values as given, the others random (:mod:`edgekd.feeds`)."""
    from edgekd.export.external import concrete_feeds, prepare_external_onnx
    from edgekd.export.parity import check_parity
    from edgekd.feeds import gather_index_bounds

    if fmt == "litert":
        # litert-torch converts torch programs; there is no maintained ONNX -> .tflite path to vouch for
        raise ConfigError(f"--format litert converts a torch model, and SOURCE {src.name!r} is an ONNX file",
                          hint="pass the output folder of an edgekd run (its student is rebuilt in torch)")
    atol = 1e-4 if atol is None else atol
    rtol = 1e-3 if rtol is None else rtol
    input_shapes, values = _given_inputs(src, input_shapes, input_args)
    em = prepare_external_onnx(src, input_shapes=input_shapes, input_values=values)
    bounds = gather_index_bounds(em.proto)
    feeds = [concrete_feeds(em.spec, input_shapes, seed=s, values=values, index_bounds=bounds) for s in (1, 2)]
    details = {"constants_converted": em.constants_converted, "folded": em.folded,
               "inputs": [asdict(t) for t in em.spec.inputs]}
    if fmt == "onnx":
        dst = out if out.suffix == ".onnx" else out / src.name
        _save_onnx(em.proto, dst)
        rep = check_parity(onnx_predict(src), onnx_predict(dst), feeds, output_names=em.spec.output_names, atol=atol, rtol=rtol,
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
        rep = check_parity(onnx_predict(src), session_predict(sess), feeds, output_names=em.spec.output_names, atol=atol,
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
    from edgekd.export.tensorrt import profile_shapes
    from edgekd.quantize.calibration import model_inputs

    prof = profile_shapes(model_inputs(dst), shapes=input_shapes, ranges=profiles, max_batch=max_batch)
    opt_feeds = [concrete_feeds(em.spec, {k: tuple(v["opt"]) for k, v in prof.items()}, seed=3, values=values,
                                index_bounds=bounds)]
    plan = write_build_plan(dst, out, precision=precision, shapes=input_shapes, ranges=profiles, max_batch=max_batch,
                            workspace_mb=workspace_mb, calib=calib_batches, parity_feeds=opt_feeds, atol=atol,
                            rtol=rtol)
    return ExportSummary(fmt, "onnx", [dst, plan], None, details, em.notes)


def _given_inputs(src: Path, shapes: dict[str, tuple[int, ...]], args: InputArgs | None
                  ) -> tuple[dict[str, tuple[int, ...]], dict[str, np.ndarray]]:
    """--input/--feed against the ONNX file's inputs: (shapes for the random inputs, values as given)."""
    if args is None or not args.names:
        return shapes, {}
    from edgekd.quantize.calibration import model_inputs

    res = args.resolve(model_inputs(src), f"SOURCE {src.name}")
    return {**shapes, **res.shapes}, res.values


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


def _public(obj: Any) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(obj).items()}

