"""OpenVINO IR (``.xml`` + ``.bin``) from an ONNX file or straight from the torch model, checked against torch.

The reference IR keeps FP32 weights (``ov.save_model`` compresses them to FP16 by default, which
would make the "FP32" artifact something else). Both files are written in a temporary folder beside
the target and moved into place (``.bin`` first, then ``.xml``), so a crash never leaves an IR whose
two halves do not belong together.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError, ExportError
from edgekd.fileio import sha256_file
from edgekd.iospec import IOSpec
from edgekd.runtime.openvino import import_openvino


@dataclass
class OpenVinoExportResult:
    xml: Path
    bin: Path
    source: str  # "onnx" | "torch"
    compressed_to_fp16: bool
    seconds: float
    sha256_xml: str
    sha256_bin: str
    openvino_version: str


def _check_out(out: Path) -> None:
    if out.suffix != ".xml":
        raise ConfigError(f"--out {str(out)!r}: an OpenVINO IR is written as NAME.xml (with NAME.bin beside it)",
                          hint=f"use --out {out.with_suffix('.xml')}")


def save_ir(model: Any, out: str | os.PathLike[str], *, compress_to_fp16: bool = False) -> tuple[Path, Path]:
    """``ov.save_model`` into a temporary folder, then move ``.bin`` and ``.xml`` into place."""
    ov = import_openvino("writing OpenVINO IR")
    xml = Path(out)
    _check_out(xml)
    xml.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{xml.name}.", dir=xml.parent))
    try:
        tmp_xml = work / xml.name
        ov.save_model(model, str(tmp_xml), compress_to_fp16=compress_to_fp16)
        tmp_bin = tmp_xml.with_suffix(".bin")
        for f in (tmp_bin, tmp_xml):
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp_bin, xml.with_suffix(".bin"))
        os.replace(tmp_xml, xml)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return xml, xml.with_suffix(".bin")


def export_openvino_from_onnx(onnx_path: str | os.PathLike[str], out: str | os.PathLike[str], *,
                              compress_to_fp16: bool = False,
                              input_shapes: Mapping[str, Sequence[int]] | None = None) -> OpenVinoExportResult:
    """Convert an ONNX model to IR. ``input_shapes`` fixes dynamic dims (else they stay dynamic)."""
    ov = import_openvino("exporting to OpenVINO IR")
    src = Path(onnx_path)
    if not src.is_file():
        raise ConfigError(f"ONNX model {str(src)!r} does not exist", hint="check the path")
    _check_out(Path(out))
    t0 = time.perf_counter()
    try:
        model = ov.convert_model(str(src))
    except Exception as exc:
        raise ExportError(f"{src.name}: OpenVINO could not convert it: {str(exc).strip()[:600]}",
                          hint="an operator OpenVINO does not support is usually named above") from None
    if input_shapes:
        known = {p.get_any_name() for p in model.inputs}
        unknown = sorted(set(input_shapes) - known)
        if unknown:
            raise ConfigError(f"--input names {unknown}, which are not inputs of {src.name} ({sorted(known)})")
        model.reshape({k: ov.PartialShape(list(v)) for k, v in input_shapes.items()})
    xml, binf = save_ir(model, out, compress_to_fp16=compress_to_fp16)
    return OpenVinoExportResult(xml, binf, "onnx", compress_to_fp16, round(time.perf_counter() - t0, 3),
                                sha256_file(xml), sha256_file(binf), ov.get_version())


def export_openvino_from_torch(model: Any, spec: IOSpec, out: str | os.PathLike[str], *,
                               compress_to_fp16: bool = False, dynamic_batch: bool = True) -> OpenVinoExportResult:
    """``ov.convert_model`` on the torch module (eval mode), inputs/outputs named as in the IOSpec."""
    import torch

    ov = import_openvino("exporting to OpenVINO IR")
    _check_out(Path(out))
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        feeds = spec.dummy_inputs(seed=0)
        example = tuple(torch.from_numpy(feeds[n]) for n in spec.input_names)
        shapes = []
        for t in spec.inputs:
            dims = [-1 if isinstance(d, str) else int(d) for d in t.shape]
            if dims and not dynamic_batch:
                dims[0] = int(feeds[t.name].shape[0])
            shapes.append(ov.PartialShape(dims))
        try:
            with torch.no_grad():
                ovm = ov.convert_model(model, example_input=example, input=shapes)
        except Exception as exc:
            raise ExportError(f"OpenVINO could not convert the torch model: {type(exc).__name__}: "
                              f"{str(exc).strip()[:600]}",
                              hint="export to ONNX first (edgekd export --format onnx) and convert that") from None
    finally:
        model.train(was_training)
    if len(ovm.inputs) != len(spec.inputs) or len(ovm.outputs) != len(spec.outputs):
        raise ExportError(f"the converted model has {len(ovm.inputs)} inputs / {len(ovm.outputs)} outputs, the IOSpec "
                          f"{len(spec.inputs)} / {len(spec.outputs)}")
    for port, t in zip(ovm.inputs, spec.inputs, strict=True):
        port.get_tensor().set_names({t.name})
    for port, t in zip(ovm.outputs, spec.outputs, strict=True):
        port.get_tensor().set_names({t.name})
    xml, binf = save_ir(ovm, out, compress_to_fp16=compress_to_fp16)
    return OpenVinoExportResult(xml, binf, "torch", compress_to_fp16, round(time.perf_counter() - t0, 3),
                                sha256_file(xml), sha256_file(binf), ov.get_version())


def check_openvino_parity(model: Any, spec: IOSpec, xml: str | os.PathLike[str],
                          feeds: Sequence[Mapping[str, np.ndarray]] | None = None, *, atol: float = 1e-4,
                          rtol: float = 1e-3, threads: int | None = None) -> Any:
    """The IR (compiled with the f32 precision hint) vs the torch model; raises ParityError on a mismatch."""
    from edgekd.export.parity import check_parity
    from edgekd.runtime.base import SessionOptions
    from edgekd.runtime.openvino import RUNTIME
    from edgekd.runtime.predict import session_predict, torch_predict

    sess = RUNTIME.load(Path(xml), SessionOptions(threads=threads, precision="fp32"))
    feeds = list(feeds) if feeds is not None else [spec.dummy_inputs(seed=s) for s in (1, 2)]
    return check_parity(torch_predict(model, spec), session_predict(sess), feeds, output_names=spec.output_names,
                        atol=atol, rtol=rtol, artifact=Path(xml).name)
