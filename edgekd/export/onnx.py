"""Export a torch model to ONNX from its IOSpec: dynamo first, the TorchScript exporter as fallback.

Why the fallback: the dynamo exporter (torch.export) is the maintained path, but it fails on some
data-dependent Python, and when asked for opset <= 17 it can silently stay at opset 18 (the
down-conversion failure is only logged). Older TensorRT builds on Jetsons need <= 17, so the opset
actually obtained is read back from the file and a miss counts as a failure; the TorchScript
exporter (``dynamo=False``) still writes opsets 11-17. The reason for a fallback is recorded.

The model is written as one file unless its weights exceed 1.8 GB (protobuf's 2 GB limit), then with
its weights in ``<name>.onnx.data`` beside it. Simplification uses onnxslim (exact; keeps dynamic
dims); its result must load and reproduce the unsimplified outputs, else the unsimplified model is
kept and the reason recorded. Files appear atomically: everything is written in a temporary folder
beside the target and moved into place at the end.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgekd.errors import ConfigError, ExportError
from edgekd.fileio import sha256_file
from edgekd.iospec import IOSpec

EXTERNAL_DATA_BYTES = int(1.8 * 1024**3)
Exporter = Literal["auto", "dynamo", "torchscript"]


@dataclass
class OnnxExportResult:
    path: Path
    exporter: str  # the exporter that produced the file: "dynamo" | "torchscript"
    opset: int  # the default-domain opset in the written file
    fallback_reason: str | None  # why dynamo was not used (exporter="auto" only)
    simplified: bool
    seconds: float
    simplify_note: str | None = None  # why simplification was skipped or rejected
    external_data: bool = False
    sha256: str = ""
    input_names: list[str] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)
    dynamic_dims: dict[str, dict[int, str]] = field(default_factory=dict)


def export_onnx(model: Any, spec: IOSpec, path: str | os.PathLike[str], *, opset: int = 17,
                exporter: Exporter = "auto", dynamic_batch: bool = True, simplify: bool = True) -> OnnxExportResult:
    """Export ``model`` (called positionally with ``spec.inputs``) to ``path``; see the module docstring."""
    import torch

    problems = []
    if exporter not in ("auto", "dynamo", "torchscript"):
        problems.append(f"exporter={exporter!r}: allowed 'auto', 'dynamo', 'torchscript'")
    if not isinstance(opset, int) or not 11 <= opset <= 23:
        problems.append(f"opset={opset!r}: allowed 11..23")
    if not spec.inputs or not spec.outputs:
        problems.append("spec: the IOSpec needs at least one input and one output")
    if problems:
        raise ConfigError("invalid ONNX export settings", problems)
    if not isinstance(model, torch.nn.Module):
        raise ExportError(f"export_onnx: model is a {type(model).__name__}, not a torch.nn.Module",
                          hint="analytic (callable) teachers cannot be exported; export the student")

    out = Path(path)
    spec = _export_spec(spec, dynamic_batch)
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    original = model
    qat_reason, restore_observers, model = _prepare_qat_export(model, exporter, opset)
    if qat_reason is not None:
        # torch.export cannot trace FakeQuantize (its observer branch is data-dependent); the
        # TorchScript exporter lowers it to QuantizeLinear/DequantizeLinear: a QDQ INT8 graph.
        exporter = "torchscript"
    feeds = spec.dummy_inputs(seed=0)
    args = tuple(torch.from_numpy(feeds[n]) for n in spec.input_names)
    n_bytes = sum(p.numel() * p.element_size() for p in model.parameters()) + \
        sum(b.numel() * b.element_size() for b in model.buffers())
    external = n_bytes > EXTERNAL_DATA_BYTES

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        raw = work / "raw.onnx"
        used, reason = _export(model, args, spec, raw, opset, exporter, external)
        reason = reason or qat_reason
        import onnx

        proto = onnx.load(str(raw))  # loads external data too
        _check_names(proto, spec, used)
        got_opset = _opset(proto)
        slim_note = None
        simplified = False
        if simplify:
            proto, simplified, slim_note = _simplify(proto, raw, spec, feeds)
        final = work / out.name
        if external:
            onnx.save_model(proto, str(final), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=out.name + ".data", size_threshold=0)
        else:
            onnx.save_model(proto, str(final))
        _fsync(final)
        if external:
            _fsync(work / (out.name + ".data"))
            os.replace(work / (out.name + ".data"), out.parent / (out.name + ".data"))
        os.replace(final, out)
    except torch.cuda.OutOfMemoryError as exc:  # pragma: no cover - CPU host
        raise ExportError(f"export to {out} ran out of GPU memory: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        restore_observers()
        original.train(was_training)
    return OnnxExportResult(
        path=out, exporter=used, opset=got_opset, fallback_reason=reason, simplified=simplified,
        seconds=round(time.perf_counter() - t0, 3), simplify_note=slim_note, external_data=external,
        sha256=sha256_file(out), input_names=spec.input_names, output_names=spec.output_names,
        dynamic_dims={t.name: t.dynamic_dims for t in spec.inputs if t.dynamic_dims})


def _prepare_qat_export(model: Any, exporter: str, opset: int) -> tuple[str | None, Any, Any]:
    """For a quantization-aware student (:mod:`edgekd.quantize.fake_quant`): freeze its observers, so the
    learnt scales are constants (tracing dummy inputs must not move them), and say why the
    TorchScript exporter is used. Returns (reason or None for an ordinary model, a function that
    puts the observers back as they were, so exporting mid-training changes nothing, the module to
    export: a copy with its low-bit weights baked into int8 carriers when it has any, else ``model``)."""
    import copy

    from torch.ao.quantization import FakeQuantize

    from edgekd.quantize.fake_quant import bake_low_bit_weights, freeze_qat, has_low_bit_weights, is_qat

    if not is_qat(model):
        return None, lambda: None, model
    if exporter == "dynamo":
        raise ConfigError("exporter='dynamo' cannot export a quantization-aware (fake-quant) student: "
                          "torch.export does not lower FakeQuantize to QuantizeLinear/DequantizeLinear",
                          hint="use export.exporter=auto or torchscript for a QAT student")
    if opset < 13:
        raise ConfigError(f"opset={opset}: a quantization-aware student exports per-channel QuantizeLinear, "
                          "which needs opset >= 13", hint="set export.opset to 13 or higher")
    saved = [(m, m.observer_enabled.clone()) for m in model.modules() if isinstance(m, FakeQuantize)]

    def restore() -> None:
        for m, flag in saved:
            m.observer_enabled.copy_(flag)

    reason = "quantization-aware student: FakeQuantize exports as QDQ with the TorchScript exporter only"
    if has_low_bit_weights(model):
        # the ONNX exporter takes the full int8 range only; baking rewrites the weights, so on a copy
        baked = copy.deepcopy(model)
        bake_low_bit_weights(freeze_qat(baked))
        return reason, lambda: None, baked
    freeze_qat(model)
    return reason, restore, model


def _export_spec(spec: IOSpec, dynamic_batch: bool) -> IOSpec:
    """The spec to export with: dim 0 named 'batch' (dynamic) or fixed to 1; other dims as given."""
    from edgekd.iospec import TensorSpec

    def fix(t: TensorSpec) -> TensorSpec:
        if not t.shape:
            return t
        first = t.shape[0]
        if dynamic_batch:
            first = first if isinstance(first, str) else "batch"
        else:
            first = 1
        return TensorSpec(t.name, (first, *t.shape[1:]), t.dtype, t.low, t.high)

    dims = dict(spec.example_dims)
    if dynamic_batch:
        # torch.export specialises a dim traced at size 1: trace dynamic batch at 2.
        for t in spec.inputs:
            if t.shape and isinstance(t.shape[0], str) and dims.get(t.shape[0], 2) < 2:
                dims[t.shape[0]] = 2
        dims.setdefault("batch", 2)
    return IOSpec(tuple(fix(t) for t in spec.inputs), tuple(fix(t) for t in spec.outputs), dims)


def _export(model: Any, args: tuple[Any, ...], spec: IOSpec, target: Path, opset: int, exporter: str,
            external: bool) -> tuple[str, str | None]:
    """Run the exporter(s); returns (exporter used, fallback reason)."""
    reason = None
    if exporter in ("auto", "dynamo"):
        try:
            _export_dynamo(model, args, spec, target, opset, external)
            got = _opset_of_file(target)
            if got != opset:
                raise OpsetMismatch(f"the dynamo exporter wrote opset {got}, opset {opset} was asked for "
                                 "(its down-conversion failed)")
            return "dynamo", None
        except Exception as exc:  # the dynamo stack raises many unrelated types; all mean "try the fallback"
            reason = f"dynamo exporter: {type(exc).__name__}: {_first_line(exc)}"
            if exporter == "dynamo":
                raise ExportError(f"ONNX export with the dynamo exporter failed: {reason}",
                                  hint="use --exporter auto or torchscript") from None
            for p in target.parent.glob(target.name + "*"):
                p.unlink()
    try:
        _export_torchscript(model, args, spec, target, opset)
    except Exception as exc:
        msg = f"the TorchScript exporter failed: {type(exc).__name__}: {_first_line(exc)}"
        if reason:
            msg = f"{reason}; then {msg}"
        raise ExportError(f"ONNX export failed: {msg}",
                          hint="try another --opset, or simplify the model's forward (no data-dependent "
                               "Python control flow)") from None
    return "torchscript", reason


class OpsetMismatch(RuntimeError):
    """The dynamo exporter wrote another opset than the one asked for."""

    pass


def _export_dynamo(model: Any, args: tuple[Any, ...], spec: IOSpec, target: Path, opset: int,
                   external: bool) -> None:
    import torch
    from torch.export import Dim

    dims: dict[str, Any] = {}
    shapes = []
    for t in spec.inputs:
        d = {}
        for i, name in t.dynamic_dims.items():
            if name not in dims:
                dims[name] = Dim(_py_ident(name), min=1)
            d[i] = dims[name]
        shapes.append(d or None)
    with _quiet():
        torch.onnx.export(model, args, str(target), dynamo=True, opset_version=opset,
                          input_names=spec.input_names, output_names=spec.output_names,
                          dynamic_shapes=tuple(shapes), external_data=external, optimize=True, verbose=False)


def _export_torchscript(model: Any, args: tuple[Any, ...], spec: IOSpec, target: Path, opset: int) -> None:
    import torch

    axes = {t.name: dict(t.dynamic_dims) for t in (*spec.inputs, *spec.outputs) if t.dynamic_dims}
    with _quiet():
        torch.onnx.export(model, args, str(target), dynamo=False, opset_version=opset,
                          input_names=spec.input_names, output_names=spec.output_names,
                          dynamic_axes=axes or None, do_constant_folding=True)


def _check_names(proto: Any, spec: IOSpec, used: str) -> None:
    init = {i.name for i in proto.graph.initializer}
    ins = [i.name for i in proto.graph.input if i.name not in init]
    outs = [o.name for o in proto.graph.output]
    if ins != spec.input_names or outs != spec.output_names:
        raise ExportError(
            f"the {used} exporter wrote inputs {ins} and outputs {outs}; the IOSpec names inputs "
            f"{spec.input_names} and outputs {spec.output_names}",
            hint="the model's forward must take the spec's inputs positionally and return one tensor per "
                 "spec output, in order")


def _simplify(proto: Any, raw: Path, spec: IOSpec, feeds: dict[str, np.ndarray]) -> tuple[Any, bool, str | None]:
    """onnxslim, kept only if the slimmed model runs and matches the original on the dummy inputs."""
    import onnxruntime as ort

    try:
        import onnxslim
    except ImportError:
        return proto, False, "onnxslim is not installed"
    try:
        with _quiet():
            slim = onnxslim.slim(proto)
    except Exception as exc:
        return proto, False, f"onnxslim failed: {type(exc).__name__}: {_first_line(exc)}"
    if slim is None:
        return proto, False, "onnxslim returned nothing"
    try:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.intra_op_num_threads = 1
        ref = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"]) \
            if proto.ByteSize() < EXTERNAL_DATA_BYTES else None
        new = ort.InferenceSession(slim.SerializeToString(), so, providers=["CPUExecutionProvider"]) \
            if slim.ByteSize() < EXTERNAL_DATA_BYTES else None
        if ref is None or new is None:
            return slim, True, "large model: the slimmed graph was not re-run (over 1.8 GB in memory)"
        a = ref.run(spec.output_names, feeds)
        b = new.run(spec.output_names, feeds)
    except Exception as exc:
        return proto, False, f"the slimmed model does not run: {type(exc).__name__}: {_first_line(exc)}"
    for name, x, y in zip(spec.output_names, a, b, strict=True):
        if x.shape != y.shape or not np.allclose(x, y, atol=1e-5, rtol=1e-4):
            return proto, False, f"the slimmed model changed output {name!r}; kept the unsimplified graph"
    if [i.name for i in slim.graph.output] != spec.output_names:
        return proto, False, "onnxslim renamed the outputs; kept the unsimplified graph"
    return slim, True, None


def _opset(proto: Any) -> int:
    for o in proto.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return -1


def _opset_of_file(path: Path) -> int:
    import onnx

    return _opset(onnx.load(str(path), load_external_data=False))


def _py_ident(name: str) -> str:
    s = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return s if s and not s[0].isdigit() else f"d_{s}"


def _first_line(exc: BaseException) -> str:
    """The first line of the message, plus the innermost cause's (the exporters wrap the real reason)."""
    import re

    def line(e: BaseException) -> str:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
        return text.splitlines()[0] if text else ""

    root = exc
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    out = line(exc)
    if root is not exc:
        out += f" (caused by {type(root).__name__}: {line(root)})"
    return out[:600]


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


class _quiet:
    """Silence the exporters' progress prints, warnings and INFO logs (their failures still raise)."""

    def __enter__(self) -> None:
        import contextlib
        import io

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        self._stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        self._levels: dict[str, int] = {}
        names = [n for n in list(logging.root.manager.loggerDict)
                 if n.split(".")[0] in ("torch", "onnxscript", "onnx_ir", "onnxslim")]
        for name in {"torch", "onnxscript", "onnx_ir", "onnxslim", *names}:
            lg = logging.getLogger(name)
            self._levels[name] = lg.level
            lg.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: Any) -> None:
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        self._stack.close()
        self._w.__exit__(*exc)
