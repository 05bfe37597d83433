"""Capability check, run before anything trains: can this host and the chosen device do
what the recipe asks (runtime x precision x device, optional runtimes installed)?
Every problem is collected and reported at once."""

from __future__ import annotations

import importlib.util

from edgekd.config.device import DeviceConfig
from edgekd.config.recipe import RecipeBase
from edgekd.errors import ConfigError


def check_capabilities(recipe: RecipeBase, device: DeviceConfig) -> list[str]:
    """Return warnings (things that will be skipped); raise ConfigError for what cannot work."""
    problems: list[str] = []
    warnings: list[str] = []
    q = recipe.quantize
    if q.enabled and not device.supports(q.runtime, q.precision):
        supported = "; ".join(f"{r.name}: {', '.join(r.precisions)}" for r in device.runtimes)
        problems.append(
            f"quantize.runtime={q.runtime!r} with quantize.precision={q.precision!r} is not supported by device "
            f"{device.name!r} (it supports {supported}); pick one of those or another --device")
    if q.enabled and q.runtime == "openvino" and importlib.util.find_spec("openvino") is None:
        problems.append("quantize.runtime='openvino' needs the openvino extra: pip install 'edgekd[openvino]'")
    if q.enabled and q.precision == "fp16" and q.runtime == "onnxruntime":
        warnings.append("fp16 ONNX models run slowly on CPU execution providers; it is meant for GPU targets")
    for fmt in recipe.export.formats:
        if fmt == "openvino" and importlib.util.find_spec("openvino") is None:
            # an export format is an extra artifact, not what the run is judged on: skip it, say how to get it
            warnings.append("export.formats includes 'openvino' but the openvino extra is not installed: skipping "
                            "the OpenVINO IR (pip install 'edgekd[openvino]', then `edgekd export RUN_DIR --format "
                            "openvino --out RUN_DIR-openvino`)")
        if fmt == "litert" and importlib.util.find_spec("litert_torch") is None:
            warnings.append("export.formats includes 'litert' but the litert-export extra is not installed: "
                            "skipping the .tflite files (pip install 'edgekd[litert-export]' in its own "
                            "environment)")
        if fmt == "tensorrt" and not _cuda_available():
            warnings.append("export.formats includes 'tensorrt' but this host has no CUDA GPU: writing the ONNX "
                            "model and a build plan; run `edgekd build-engine` on the target to build the engine")
    warnings += _optimize_warnings(recipe, device)
    if problems:
        raise ConfigError(f"recipe {recipe.name!r} cannot run on device {device.name!r}", problems)
    return warnings


#: the runtime a candidate name's prefix stands for (edgekd/quantize/candidates.py)
_CANDIDATE_RUNTIMES = {"ort": "onnxruntime", "ov": "openvino", "trt": "tensorrt"}


def _optimize_warnings(recipe: RecipeBase, device: DeviceConfig) -> list[str]:
    """What of ``optimize:`` will be skipped: the whole search without an FP32 model, candidates whose
    runtime the device does not list (each is reported as skipped, with the reason)."""
    opt = recipe.optimize
    if not opt.enabled:
        return []
    qat = recipe.distill.qat
    if qat is not None and qat.enabled and qat.mode == "scratch":
        return ["optimize.enabled but distill.qat.mode='scratch' writes no FP32 student.onnx: the optimize search "
                "will be skipped (use distill.qat.mode=finetune, or no QAT, to search from the FP32 student)"]
    have = set(device.runtime_names())
    missing = [c for c in opt.candidates or [] if _CANDIDATE_RUNTIMES[c.split("-", 1)[0]] not in have]
    if missing:
        return [f"optimize.candidates {missing}: device {device.name!r} lists no runtime for them (it has "
                f"{sorted(have)}); they will be reported as skipped"]
    return []


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover
        return False
