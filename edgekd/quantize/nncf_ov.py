"""OpenVINO INT8 through NNCF post-training quantization, with or without accuracy control.

``nncf.quantize`` inserts FakeQuantize ops into an ``ov.Model`` (read from ONNX or IR) with
ranges from the calibration feeds, then applies fast bias correction (Nagel et al.,
"Data-Free Quantization Through Weight Equalization and Bias Correction", ICCV 2019):
the expected shift of each layer's output from quantization, ``E[W_q x] - E[W x]``, is
subtracted from its bias. ``subset_size`` counts *items of the dataset*, here batches, not
images (RUNTIME-NOTES.md).

``nncf.quantize_with_accuracy_control`` quantizes, then ranks the quantized layers by their
effect on the metric and reverts the worst to floating point until the drop is at most
``max_drop``. NNCF assumes higher metric = better, so a lower-is-better metric is negated.

The IR is written into a temporary folder and then moved, .bin first and .xml last, so a
reader never finds an .xml without its weights. Weights are kept in FP32
(``compress_to_fp16=False``) so the quantized model is compared with a true FP32 reference.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError, DependencyMissingError, QuantizationError
from edgekd.feeds import as_feed_array
from edgekd.fileio import sha256_file
from edgekd.quantize.ort_static import QuantResult, check_not_quantized

PredictFn = Callable[[Mapping[str, np.ndarray]], Sequence[np.ndarray]]
# metric_fn(predict, validation items) -> metric; items are whatever the validation set holds
MetricOnItems = Callable[[PredictFn, Iterable[Any]], float]


def _imports() -> tuple[Any, Any]:
    try:
        import openvino as ov
    except ImportError as exc:
        raise DependencyMissingError("openvino", "openvino", "OpenVINO INT8 quantization") from exc
    try:
        import nncf
    except ImportError as exc:
        raise DependencyMissingError("nncf", "openvino", "OpenVINO INT8 quantization (NNCF)") from exc
    return ov, nncf


def read_model(model: str | Path, input_shapes: Mapping[str, Sequence[int]] | None = None) -> Any:
    """An ov.Model from .onnx or .xml; ``input_shapes`` reshapes (fixes dynamic dims)."""
    ov, _ = _imports()
    model = Path(model)
    if not model.is_file():
        raise ConfigError(f"model {str(model)!r} does not exist", hint="give an .onnx or OpenVINO .xml file")
    if model.suffix not in (".onnx", ".xml"):
        raise ConfigError(f"model {str(model)!r}: allowed .onnx or .xml (OpenVINO IR)")
    m = ov.Core().read_model(str(model))
    if input_shapes:
        m.reshape({k: ov.PartialShape(list(v)) for k, v in input_shapes.items()})
    return m


def compiled_predict(compiled: Any) -> PredictFn:
    """PredictFn over an ov.CompiledModel (outputs in model order)."""
    outputs = list(compiled.outputs)

    def predict(feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        res = compiled(dict(feeds))
        return [np.asarray(res[o]) for o in outputs]

    return predict


def compile_f32(model: Any, threads: int | None = 1) -> Any:
    """Compile on CPU with the f32 inference-precision hint (the default is bf16 on AVX-512 BF16 CPUs)."""
    ov, _ = _imports()
    cfg: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        cfg["INFERENCE_NUM_THREADS"] = int(threads)
    return ov.Core().compile_model(model, "CPU", cfg)


def save_ir(model: Any, out: Path) -> None:
    """ov.save_model into a temp folder beside ``out``, then move .bin and .xml (atomic per file)."""
    ov, _ = _imports()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.stem}.", dir=out.parent) as tmp:
        xml = Path(tmp) / out.name
        ov.save_model(model, str(xml), compress_to_fp16=False)
        os.replace(xml.with_suffix(".bin"), out.with_suffix(".bin"))
        os.replace(xml, out)


def _check_out(out: Path) -> None:
    if out.suffix != ".xml":
        raise ConfigError(f"--out {str(out)!r}: an OpenVINO artifact is an IR and must end in .xml",
                          hint=f"use --out {out.with_suffix('.xml')}")


def _materialize(calib: Iterable[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    items = [{k: as_feed_array(v) for k, v in f.items()} for f in calib]
    if not items:
        raise QuantizationError("the calibration data is empty", hint="give at least one calibration batch")
    return items


def _count_fq(model: Any) -> list[str]:
    return [op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "FakeQuantize"]


def quantize_openvino(model: str | Path, out: str | Path, calib: Iterable[Mapping[str, np.ndarray]], *,
                      subset_size: int = 300, preset: str = "performance", fast_bias_correction: bool = True,
                      ignored_nodes: Sequence[str] = (), model_type: str | None = None,
                      input_shapes: Mapping[str, Sequence[int]] | None = None) -> QuantResult:
    """NNCF post-training INT8 of an ONNX or IR model for OpenVINO; writes ``out`` (.xml + .bin).

    ``preset``: "performance" (symmetric activations) or "mixed" (asymmetric activations,
    better for activations not centred on zero); ``model_type="transformer"`` for attention models.
    """
    _, nncf = _imports()
    t0 = time.perf_counter()
    out = Path(out)
    _check_out(out)
    if preset not in ("performance", "mixed"):
        raise ConfigError(f"preset {preset!r}: allowed performance, mixed")
    if Path(model).suffix == ".onnx" and Path(model).is_file():
        check_not_quantized(model)
    m = read_model(model, input_shapes)
    items = _materialize(calib)
    kw: dict[str, Any] = {
        "subset_size": min(int(subset_size), len(items)),
        "preset": nncf.QuantizationPreset.PERFORMANCE if preset == "performance" else nncf.QuantizationPreset.MIXED,
        "fast_bias_correction": fast_bias_correction,
    }
    if ignored_nodes:
        kw["ignored_scope"] = nncf.IgnoredScope(names=list(ignored_nodes))
    if model_type == "transformer":
        kw["model_type"] = nncf.ModelType.TRANSFORMER
    try:
        q = nncf.quantize(m, nncf.Dataset(items), **kw)
    except Exception as exc:  # nncf raises its own and runtime errors; name the model and a way out
        raise QuantizationError(f"NNCF could not quantize {str(model)!r}: {type(exc).__name__}: {exc}",
                                hint="fix dynamic shapes with --input NAME=1x3xHxW, or ignore the failing node") from exc
    save_ir(q, out)
    return QuantResult(path=out, sha256=sha256_file(out.with_suffix(".bin")), runtime="openvino", precision="int8",
                       method="nncf-ptq", seconds=time.perf_counter() - t0, calib_batches=kw["subset_size"],
                       nodes_quantized=_count_fq(q), nodes_excluded=list(ignored_nodes),
                       settings={"preset": preset, "fast_bias_correction": fast_bias_correction,
                                 "subset_size_batches": kw["subset_size"], "weights_file": str(out.with_suffix(".bin")),
                                 "sha256_of": "weights (.bin)"})


def quantize_openvino_with_accuracy_control(
    model: str | Path, out: str | Path, calib: Iterable[Mapping[str, np.ndarray]], validation: Sequence[Any],
    metric_fn: MetricOnItems, *, max_drop: float, lower_is_better: bool, drop_type: str = "absolute",
    feeds_of: Callable[[Any], Mapping[str, np.ndarray]] | None = None, subset_size: int = 300,
    preset: str = "performance", max_num_iterations: int | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
) -> QuantResult:
    """``nncf.quantize_with_accuracy_control``: INT8 with at most ``max_drop`` metric change.

    ``validation`` holds items (e.g. ``(feeds, targets)``); ``feeds_of(item)`` gives the model
    inputs of one (default: the item itself, or its first element for tuples).
    ``metric_fn(predict, items)`` scores a model on those items. The FP32 and INT8 metrics
    are measured again here on the whole validation set (f32 hint) and reported in ``settings``.
    """
    _, nncf = _imports()
    t0 = time.perf_counter()
    out = Path(out)
    _check_out(out)
    if drop_type not in ("absolute", "relative"):
        raise ConfigError(f"drop_type {drop_type!r}: allowed absolute, relative")
    if max_drop < 0:
        raise ConfigError(f"max_drop {max_drop}: must be >= 0")
    if not validation:
        raise QuantizationError("accuracy control needs validation items", hint="pass a non-empty validation set")
    if Path(model).suffix == ".onnx" and Path(model).is_file():
        check_not_quantized(model)
    m = read_model(model, input_shapes)
    items = _materialize(calib)
    sign = -1.0 if lower_is_better else 1.0
    get_feeds = feeds_of or (lambda it: it[0] if isinstance(it, tuple) else it)
    scores: list[float] = []

    def validation_fn(compiled: Any, data: Iterable[Any]) -> tuple[float, None]:
        value = float(metric_fn(compiled_predict(compiled), data))
        scores.append(value)
        return sign * value, None

    kw: dict[str, Any] = {
        "max_drop": float(max_drop),
        "drop_type": nncf.DropType.ABSOLUTE if drop_type == "absolute" else nncf.DropType.RELATIVE,
        "subset_size": min(int(subset_size), len(items)),
        "preset": nncf.QuantizationPreset.PERFORMANCE if preset == "performance" else nncf.QuantizationPreset.MIXED,
    }
    if max_num_iterations is not None:
        from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

        # Each iteration may re-rank every quantized group on the ranking subset: with NNCF's default subset
        # (300 items) a 640x640 detector spent over 8 min per ranking here, so the ranking uses at most 16.
        kw["advanced_accuracy_restorer_parameters"] = AdvancedAccuracyRestorerParameters(
            max_num_iterations=max_num_iterations, ranking_subset_size=min(16, len(validation)))
    try:
        q = nncf.quantize_with_accuracy_control(
            m, nncf.Dataset(items), nncf.Dataset(list(validation), lambda it: dict(get_feeds(it))), validation_fn, **kw)
    except Exception as exc:
        raise QuantizationError(f"NNCF accuracy-controlled quantization of {str(model)!r} failed: "
                                f"{type(exc).__name__}: {exc}") from exc
    save_ir(q, out)
    # FP32 and final INT8 metric, measured here (not taken from NNCF's log).
    fp32 = float(metric_fn(compiled_predict(compile_f32(read_model(model, input_shapes))), validation))
    int8 = float(metric_fn(compiled_predict(compile_f32(q)), validation))
    drop = (int8 - fp32) if lower_is_better else (fp32 - int8)
    return QuantResult(path=out, sha256=sha256_file(out.with_suffix(".bin")), runtime="openvino", precision="int8",
                       method="nncf-accuracy-control", seconds=time.perf_counter() - t0,
                       calib_batches=kw["subset_size"], nodes_quantized=_count_fq(q),
                       settings={"max_drop": max_drop, "drop_type": drop_type, "lower_is_better": lower_is_better,
                                 "metric_fp32": fp32, "metric_int8": int8, "metric_drop": drop,
                                 "validations_run": len(scores), "weights_file": str(out.with_suffix(".bin")),
                                 "sha256_of": "weights (.bin)"})

