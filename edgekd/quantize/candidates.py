"""The artifacts ``edgekd optimize`` considers for one FP32 ONNX model, and how each is built.

A :class:`CandidateSpec` names a runtime, a precision and the settings that make it (quantizer options
and the runtime options that change speed). :func:`candidate_specs` lists every candidate the device
allows, each with a reason when it cannot be built on this machine (then it is reported as skipped,
never silently dropped). :func:`build_candidate` writes one artifact.

Choices measured on this kind of machine (``/work/shared/RUNTIME-NOTES.md``): OpenVINO's default CPU
inference precision is bf16 on CPUs with AVX-512 BF16/AMX and f32 elsewhere, so the "OpenVINO default"
candidate states which one it got; ORT dynamic INT8 is offered only for linear-heavy models (it was
4.5-13x slower than FP32 on CNNs); ORT static INT8 is tried signed and unsigned, per channel and per
tensor, on every op and on Conv/MatMul only, because which variant fuses best depends on the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.quantize.ort_static import COMPUTE_OPS

Feed = dict[str, np.ndarray]


@dataclass(frozen=True)
class CandidateSpec:
    """One way to ship the model: ``kind`` selects the builder, ``build`` its arguments.

    ``runtime_precision`` is the inference precision asked of the runtime at load time (OpenVINO:
    f32/bf16/f16 hint); ``skip`` says why the candidate cannot be built here (None = buildable).
    """

    name: str
    runtime: str
    precision: str
    kind: str
    build: Mapping[str, Any] = field(default_factory=dict)
    runtime_precision: str = "fp32"
    skip: str | None = None


@dataclass
class BuiltCandidate:
    """A built (or failed, or skipped) candidate; ``path`` is what the runtime loads."""

    spec: CandidateSpec
    path: Path | None
    build_s: float = 0.0
    error: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HostFloatSupport:
    """What OpenVINO's CPU plugin offers on this machine."""

    default_precision: str  # OpenVINO's own default inference precision on this CPU (f32 or bf16)
    capabilities: tuple[str, ...]

    @property
    def has_bf16(self) -> bool:
        return "BF16" in self.capabilities or self.default_precision == "bf16"

    @property
    def has_fp16(self) -> bool:
        return "FP16" in self.capabilities


def openvino_host_support() -> HostFloatSupport | None:
    """OpenVINO CPU capabilities and default precision, or None without openvino."""
    try:
        import openvino as ov
    except ImportError:
        return None
    core = ov.Core()
    caps = tuple(str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    hint = core.get_property("CPU", "INFERENCE_PRECISION_HINT")
    name = str(getattr(hint, "get_type_name", lambda: hint)())
    default = {"float32": "f32", "f32": "f32", "bf16": "bf16", "f16": "f16", "float16": "f16"}.get(name, name)
    return HostFloatSupport(default, caps)


def _allowed(device_precisions: Mapping[str, Sequence[str]], runtime: str, precision: str) -> str | None:
    have = device_precisions.get(runtime)
    if have is None:
        return f"the device does not list runtime {runtime!r}"
    if precision not in have:
        return f"the device lists {runtime} with precisions {list(have)}, not {precision}"
    return None


def candidate_specs(model: Path, device_precisions: Mapping[str, Sequence[str]], *, gpu: bool,
                    host: HostFloatSupport | None, accuracy_control: bool = True) -> list[CandidateSpec]:
    """Every candidate, in a fixed order; unbuildable ones carry ``skip`` with the reason."""
    from edgekd.quantize.ort_dynamic import conv_heavy

    specs: list[CandidateSpec] = [CandidateSpec("ort-fp32", "onnxruntime", "fp32", "copy")]
    ov_missing = None if host is not None else "openvino is not installed (pip install 'edgekd[openvino]')"
    specs.append(CandidateSpec("ov-fp32", "openvino", "fp32", "copy", runtime_precision="fp32", skip=ov_missing))
    if host is not None:
        default = "bf16" if host.default_precision == "bf16" else "fp32"
        specs.append(CandidateSpec(f"ov-default({host.default_precision})", "openvino", default, "copy",
                                   runtime_precision=default,
                                   build={"openvino_default_precision": host.default_precision}))
        specs.append(CandidateSpec("ov-fp16", "openvino", "fp16", "copy", runtime_precision="fp16",
                                   skip=None if host.has_fp16 else
                                   f"this CPU has no FP16 arithmetic (OpenVINO capabilities {list(host.capabilities)})"))
    specs.append(CandidateSpec("ort-fp16", "onnxruntime", "fp16", "fp16",
                               skip=None if gpu else "ONNX Runtime's CPU provider has no fast FP16 kernels: "
                               "FP16 is a GPU candidate (no GPU here)"))
    for per_channel in (True, False):
        for act in ("uint8", "int8"):
            for ops in ("all", "conv-matmul"):
                name = f"ort-int8-{'U8S8' if act == 'uint8' else 'S8S8'}-{'pc' if per_channel else 'pt'}-{ops}"
                specs.append(CandidateSpec(name, "onnxruntime", "int8", "ort-static", build={
                    "per_channel": per_channel, "activation": act,
                    "op_types": list(COMPUTE_OPS) if ops == "conv-matmul" else None}))
    heavy = conv_heavy(model)
    specs.append(CandidateSpec("ort-int8-dynamic", "onnxruntime", "int8", "ort-dynamic",
                               skip="convolutions outnumber matrix multiplies: dynamic INT8 (ConvInteger) was "
                               "4.5-13x slower than FP32 on CNNs (RUNTIME-NOTES)" if heavy else None))
    specs.append(CandidateSpec("ov-int8-nncf", "openvino", "int8", "nncf", skip=ov_missing))
    specs.append(CandidateSpec("ov-int8-nncf-ac", "openvino", "int8", "nncf-ac",
                               skip=ov_missing or (None if accuracy_control else "accuracy control turned off")))
    specs.append(CandidateSpec("trt-fp16", "tensorrt", "fp16", "tensorrt", skip=_tensorrt_skip(gpu)))
    return [_device_filter(s, device_precisions) for s in specs]


def _tensorrt_skip(gpu: bool) -> str | None:
    import importlib.util

    if not gpu:
        return "TensorRT needs an NVIDIA GPU; none here"
    if importlib.util.find_spec("tensorrt") is None:
        return "tensorrt is not installed (pip install 'edgekd[tensorrt]')"
    return None


def _device_filter(spec: CandidateSpec, device_precisions: Mapping[str, Sequence[str]]) -> CandidateSpec:
    if spec.skip is not None:
        return spec
    why = _allowed(device_precisions, spec.runtime, spec.precision)
    if why is None:
        return spec
    return CandidateSpec(spec.name, spec.runtime, spec.precision, spec.kind, spec.build, spec.runtime_precision, why)


ValidationFn = Callable[[Any, Sequence[Any]], float]


def build_candidate(spec: CandidateSpec, model: Path, out_dir: Path, calib: Sequence[Feed], *,
                    input_shapes: Mapping[str, Sequence[int]] | None = None,
                    ac: Mapping[str, Any] | None = None) -> BuiltCandidate:
    """Build one artifact into ``out_dir``; a builder's error is recorded, not raised.

    ``ac`` (accuracy control): ``validation`` items, ``metric_fn``, ``max_drop`` for NNCF's
    ``quantize_with_accuracy_control``; its validation items must come from the calibration part.
    """
    if spec.skip is not None:
        return BuiltCandidate(spec, None, error=None)
    t0 = time.perf_counter()
    try:
        path, settings = _BUILDERS[spec.kind](spec, model, out_dir, calib, input_shapes, ac)
    except Exception as exc:  # any builder failure is a result for this candidate, not the end of the search
        return BuiltCandidate(spec, None, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"[:600])
    return BuiltCandidate(spec, path, time.perf_counter() - t0, None, settings)


def _copy(spec: CandidateSpec, model: Path, out_dir: Path, *_: Any) -> tuple[Path, dict[str, Any]]:
    return model, dict(spec.build)  # the FP32 file itself: nothing to build


def _fp16(spec: CandidateSpec, model: Path, out_dir: Path, *_: Any) -> tuple[Path, dict[str, Any]]:
    from edgekd.quantize.fp16 import convert_fp16

    out = out_dir / f"{spec.name}.onnx"
    convert_fp16(model, out)
    return out, {"keep_io_types": True}


def _ort_static(spec: CandidateSpec, model: Path, out_dir: Path, calib: Sequence[Feed], *_: Any
                ) -> tuple[Path, dict[str, Any]]:
    from edgekd.quantize.ort_static import quantize_onnx_static

    out = out_dir / f"{spec.name}.onnx"
    r = quantize_onnx_static(model, out, list(calib), per_channel=bool(spec.build["per_channel"]),
                             activation=str(spec.build["activation"]), op_types=spec.build.get("op_types"))
    return out, {**r.settings, "op_types": spec.build.get("op_types") or "all quantizable",
                 "nodes_quantized": len(r.nodes_quantized), "compute_nodes_fp32": len(r.compute_nodes_fp32),
                 "calib_batches": r.calib_batches}


def _ort_dynamic(spec: CandidateSpec, model: Path, out_dir: Path, *_: Any) -> tuple[Path, dict[str, Any]]:
    from edgekd.quantize.ort_dynamic import quantize_onnx_dynamic

    out = out_dir / f"{spec.name}.onnx"
    r = quantize_onnx_dynamic(model, out)
    return out, {**r.settings, "nodes_quantized": len(r.nodes_quantized)}


def _nncf(spec: CandidateSpec, model: Path, out_dir: Path, calib: Sequence[Feed],
          shapes: Mapping[str, Sequence[int]] | None, ac: Mapping[str, Any] | None) -> tuple[Path, dict[str, Any]]:
    from edgekd.quantize.nncf_ov import quantize_openvino, quantize_openvino_with_accuracy_control

    out = out_dir / f"{spec.name}.xml"
    if spec.kind == "nncf":
        r = quantize_openvino(model, out, list(calib), input_shapes=shapes)
    else:
        if not ac:
            raise ValueError("accuracy control needs validation items and a metric")
        r = quantize_openvino_with_accuracy_control(
            model, out, list(calib), list(ac["validation"]), ac["metric_fn"], max_drop=float(ac["max_drop"]),
            lower_is_better=False, feeds_of=lambda it: it[0], input_shapes=shapes,
            max_num_iterations=ac.get("max_num_iterations"))
    return out, {**r.settings, "fake_quantize_ops": len(r.nodes_quantized), "calib_batches": r.calib_batches}


def _tensorrt(spec: CandidateSpec, *_: Any) -> tuple[Path, dict[str, Any]]:
    raise NotImplementedError("TensorRT plans are built by `edgekd build-engine` on the GPU device")


_BUILDERS: dict[str, Callable[..., tuple[Path, dict[str, Any]]]] = {
    "copy": _copy, "fp16": _fp16, "ort-static": _ort_static, "ort-dynamic": _ort_dynamic,
    "nncf": _nncf, "nncf-ac": _nncf, "tensorrt": _tensorrt,
}
