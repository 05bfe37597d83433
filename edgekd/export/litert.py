"""Export a torch model to a ``.tflite`` file for LiteRT (XNNPACK), FP32 or INT8, with litert-torch.

- Names: the model is traced with keyword inputs and returns a dict, so the file's signature carries
  the IOSpec's input and output names (the litert runtime orders them as the module takes/returns them).
- Dynamic dims: the spec's named dims are exported as dynamic when ``dynamic=True``. litert-torch 0.10
  mis-lowers some graphs with a symbolic batch (a ``cat`` after a reduction fails with
  "dot_general requires contracting dimensions to have the same shape"); the export then falls back to
  the example sizes (batch 1 unless ``example_dims`` says otherwise: what a board runs) and says why
  in ``fallback_reason``.
- INT8: PT2E static quantization with litert-torch's symmetric int8 quantizer (per-channel weights,
  per-tensor activations, histogram observers) calibrated on ``calibration`` feeds, then the model's
  interface is rewritten to int8 (TFLite's modify_model_interface drops the float QUANTIZE/DEQUANTIZE
  at the edges): on a board the caller feeds int8. The litert runtime wraps such I/O, so edgekd's
  callers still see float tensors.

litert-torch is heavy (jax, transformers, torchao) and pins typing-extensions < 4.13, which downgrades
pydantic: install the ``litert-export`` extra in its own environment (see docs), not the runtime one.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgekd.errors import DependencyMissingError, ExportError
from edgekd.iospec import IOSpec

EXTRA = "litert-export"
_TFLITE_INT8 = 9  # tflite::TensorType_INT8, the value modify_model_interface takes


@dataclass
class LiteRtExportResult:
    path: Path
    precision: str  # "fp32" | "int8"
    dynamic_dims: dict[str, dict[int, str]]  # input -> {axis: name} actually dynamic in the file
    fallback_reason: str | None  # why the named dims were fixed
    seconds: float
    io: str = "float"  # "int8" when the interface was rewritten
    input_names: list[str] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)


def import_litert_torch() -> Any:
    try:
        import litert_torch
    except ImportError:
        raise DependencyMissingError("litert-torch", EXTRA, "exporting to .tflite (LiteRT)") from None
    return litert_torch


def _named(model: Any, spec: IOSpec) -> Any:
    """``model`` behind keyword inputs and a dict of named outputs (what the tflite signature records)."""
    import torch

    class Named(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, **feeds: torch.Tensor) -> dict[str, torch.Tensor]:
            out = self.inner(*(feeds[n] for n in spec.input_names))
            outs = (out,) if isinstance(out, torch.Tensor) else tuple(out)
            if len(outs) != len(spec.outputs):
                raise ExportError(f"the model returned {len(outs)} outputs, the IOSpec names {spec.output_names}")
            return dict(zip(spec.output_names, outs, strict=True))

    return Named().eval()


def _torch_feeds(spec: IOSpec, dims: Mapping[str, int] | None) -> dict[str, Any]:
    import torch

    return {k: torch.from_numpy(v) for k, v in spec.dummy_inputs(dims).items()}


def _dynamic_shapes(spec: IOSpec) -> dict[str, Any] | None:
    import torch

    dims: dict[str, Any] = {}
    out: dict[str, dict[int, Any]] = {}
    for t in spec.inputs:
        for axis, name in t.dynamic_dims.items():
            dims.setdefault(name, torch.export.Dim(name, min=1, max=4096))
            out.setdefault(t.name, {})[axis] = dims[name]
    return {"feeds": out} if out else None  # keyed by the wrapper's **feeds parameter


def _quantized(named: Any, kwargs: dict[str, Any], calibration: Sequence[Mapping[str, np.ndarray]],
               dynamic_shapes: Any) -> tuple[Any, Any]:
    """(PT2E-quantized module, QuantConfig) calibrated on ``calibration``."""
    import torch
    from litert_torch.quantize import pt2e_quantizer as pq
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = pq.PT2EQuantizer().set_global(pq.get_symmetric_quantization_config(is_per_channel=True))
    exported = torch.export.export(named, (), kwargs, dynamic_shapes=dynamic_shapes).module()
    prepared = prepare_pt2e(exported, quantizer)
    with torch.no_grad():
        for feeds in calibration:
            prepared(**{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()})
    return convert_pt2e(prepared, fold_quantize=False), QuantConfig(pt2e_quantizer=quantizer)


def _convert(named: Any, kwargs: dict[str, Any], precision: str, calibration: Sequence[Mapping[str, np.ndarray]],
             dynamic_shapes: Any) -> Any:
    lt = import_litert_torch()
    if precision == "int8":
        module, qcfg = _quantized(named, kwargs, calibration, dynamic_shapes)
        return lt.convert(module, (), kwargs, quant_config=qcfg, dynamic_shapes=dynamic_shapes)
    return lt.convert(named, (), kwargs, dynamic_shapes=dynamic_shapes)


def _write(path: Path, data: bytes) -> None:
    from edgekd.fileio import atomic_open

    with atomic_open(path, "wb") as fh:
        fh.write(data)


def _int8_interface(path: Path) -> None:
    """Rewrite a fully quantized model's float I/O to int8, in place."""
    from ai_edge_litert import _pywrap_modify_model_interface as mmi

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "int8io.tflite"
        status = mmi.modify_model_interface(str(path), str(out), _TFLITE_INT8, _TFLITE_INT8)
        if status != 0 or not out.is_file():
            raise ExportError(f"{path.name}: could not make the model's inputs/outputs int8 (status {status})",
                              hint="some operator stayed in float at the model's edge; export fp32, or int8 "
                                   "with float I/O (int8_io=False)")
        _write(path, out.read_bytes())


def export_litert(model: Any, spec: IOSpec, path: str | Path, *, precision: str = "fp32",
                  calibration: Sequence[Mapping[str, np.ndarray]] = (), dynamic: bool = True,
                  int8_io: bool = True, example_dims: Mapping[str, int] | None = None) -> LiteRtExportResult:
    """Write ``model`` (eval mode, CPU) to ``path`` as ``.tflite``; see the module docstring."""

    if precision not in ("fp32", "int8"):
        raise ExportError(f"litert export: precision {precision!r} is not supported", hint="use fp32 or int8")
    if precision == "int8" and not calibration:
        raise ExportError("litert export: int8 needs calibration feeds", hint="pass a few batches of real inputs")
    target = Path(path)
    t0 = time.perf_counter()
    named = _named(model.eval(), spec)
    dyn = _dynamic_shapes(spec) if dynamic else None
    reason = None
    edge = None
    if dyn is not None:  # traced at the spec's example sizes: torch.export specializes a size of 1
        try:
            edge = _convert(named, _torch_feeds(spec, example_dims), precision, calibration, dyn)
        except Exception as exc:
            reason = f"dynamic dims failed ({type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]})"
            dyn = None
    if edge is None:  # fixed sizes: batch 1 unless told, what a board runs
        try:
            edge = _convert(named, _torch_feeds(spec, {"batch": 1, **(example_dims or {})}), precision,
                            calibration, None)
        except Exception as exc:
            raise ExportError(f"litert-torch could not convert the model: {type(exc).__name__}: "
                              f"{str(exc).strip()[:400]}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    _write(target, edge.model_content())
    io = "float"
    if precision == "int8" and int8_io:
        _int8_interface(target)
        io = "int8"
    dynamic_dims = {t.name: dict(t.dynamic_dims) for t in spec.inputs if t.dynamic_dims} if dyn else {}
    return LiteRtExportResult(target, precision, dynamic_dims, reason, time.perf_counter() - t0, io,
                              spec.input_names, spec.output_names)


def check_litert_parity(model: Any, spec: IOSpec, path: Path, feeds: Sequence[Mapping[str, np.ndarray]], *,
                        precision: str = "fp32", atol: float = 1e-4, rtol: float = 1e-3,
                        min_agreement: float = 0.99, raise_on_failure: bool = True) -> Any:
    """The .tflite at ``path`` (run by the litert runtime, 1 thread) against the torch ``model`` on ``feeds``:
    allclose for FP32, argmax agreement over the channel axis for INT8 (as for the other INT8 artifacts).
    Returns the ParityReport; raises ParityError on failure unless ``raise_on_failure=False``."""
    from edgekd.export.parity import check_parity
    from edgekd.runtime import SessionOptions, get_runtime
    from edgekd.runtime.predict import session_predict, torch_predict

    sess = get_runtime("litert").load(path, SessionOptions(threads=1))
    compare: Literal["allclose", "argmax"] = "argmax" if precision == "int8" else "allclose"
    return check_parity(torch_predict(model, spec), session_predict(sess), feeds, output_names=spec.output_names,
                        atol=atol, rtol=rtol, artifact=path.name, compare=compare, min_agreement=min_agreement,
                        raise_on_failure=raise_on_failure)
