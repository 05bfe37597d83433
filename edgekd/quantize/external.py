"""Quantize any ONNX model (one edgekd did not train) and measure how far it moved from FP32.

This is what ``edgekd quantize`` runs: build calibration feeds (folder of images / .npy, or
random data with a warning), quantize for the chosen runtime and precision, then run the FP32
model (ONNX Runtime) and the quantized one on the same feeds and report per output the SQNR,
the max absolute difference and, for probability maps, the IoU of the maps thresholded at 0.5.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekd.errors import ConfigError
from edgekd.quantize.calibration import RandomCalibrationWarning, folder_feeds, model_inputs, random_feeds
from edgekd.quantize.compare import OutputAgreement, compare_outputs
from edgekd.quantize.ort_static import QuantResult
from edgekd.runtime.predict import onnx_predict

RUNTIMES = ("onnxruntime", "openvino")
PRECISIONS = ("int8", "int8-dynamic", "fp16")


@dataclass
class ExternalQuantReport:
    result: QuantResult
    agreement: list[OutputAgreement]
    compared_on: str  # which feeds the agreement was measured on
    random_calibration: bool
    warnings: list[str] = field(default_factory=list)


def quantize_external(
    model: str | Path, out: str | Path, *, runtime: str = "onnxruntime", precision: str = "int8",
    method: str = "minmax", calib: str | Path | None = None, calib_count: int = 32,
    calib_size: tuple[int, int] | None = None, layout: str = "nchw", mean: Sequence[float] = (0.0,),
    std: Sequence[float] = (1.0,), grayscale: bool = False,
    input_shapes: Mapping[str, Sequence[int]] | None = None, exclude_nodes: Sequence[str] = (),
    compare_batches: int = 4, threads: int | None = 1, min_sqnr_db: float | None = None,
) -> ExternalQuantReport:
    """Quantize ``model`` for ``runtime``/``precision`` and compare it with FP32.

    ``min_sqnr_db``: accuracy-aware fallback with the output SQNR as the metric (no labels
    needed): the most sensitive Conv/MatMul/Gemm layers go back to FP32 until every output's
    SQNR vs FP32, on the comparison batches, is at least this.
    """
    model, out = Path(model), Path(out)
    problems = []
    if runtime not in RUNTIMES:
        problems.append(f"--runtime {runtime!r}: allowed {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS:
        problems.append(f"--precision {precision!r}: allowed {', '.join(PRECISIONS)}")
    if runtime == "openvino" and precision != "int8":
        problems.append(f"--runtime openvino with --precision {precision!r}: only int8 (NNCF) is produced here; "
                        "OpenVINO runs FP16 by its inference precision hint on GPU")
    if not model.is_file() or model.suffix != ".onnx":
        problems.append(f"MODEL {str(model)!r}: must be an existing .onnx file")
    if method not in ("minmax", "entropy", "percentile"):
        problems.append(f"--method {method!r}: allowed minmax, entropy, percentile")
    if calib_count < 1:
        problems.append(f"--calib-count {calib_count}: at least 1")
    if problems:
        raise ConfigError("cannot quantize", problems)
    inputs = model_inputs(model)
    shapes = dict(input_shapes or {})
    for name in shapes:
        if name not in {i.name for i in inputs}:
            from edgekd.errors import UnknownNameError

            raise UnknownNameError("--input name", name, [i.name for i in inputs])
    notes: list[str] = []
    random_cal = False
    # Only static INT8 calibrates; dynamic INT8 and FP16 need inputs only to compare the outputs.
    if precision == "int8" or calib is not None:
        if calib is not None:
            size = calib_size
            if size is None and len(inputs) == 1 and inputs[0].name in shapes and len(shapes[inputs[0].name]) == 4:
                s = shapes[inputs[0].name]
                size = (s[2], s[3]) if layout == "nchw" else (s[1], s[2])
            feeds = list(folder_feeds(calib, inputs, size=size, mean=mean, std=std, layout=layout,
                                      grayscale=grayscale, limit=calib_count))
        else:
            random_cal = True
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RandomCalibrationWarning)
                feeds = list(random_feeds(inputs, min(calib_count, 16), shapes=shapes))
            notes.append("calibrated on RANDOM data: the accuracy of the quantized model is UNKNOWN; "
                         "give --calib DIR with real inputs")
    else:
        feeds = list(random_feeds(inputs, compare_batches, shapes=shapes, calibration=False))
    if not feeds:
        raise ConfigError(f"--calib {str(calib)!r}: no calibration inputs found")

    if precision == "fp16":
        from edgekd.quantize.fp16 import convert_fp16

        res = convert_fp16(model, out, node_block_list=exclude_nodes)
    elif precision == "int8-dynamic":
        from edgekd.quantize.ort_dynamic import conv_heavy, quantize_onnx_dynamic

        if conv_heavy(model):
            notes.append("dynamic INT8 quantizes only MatMul/Gemm (ConvInteger measured 4.5-13x SLOWER than FP32 on "
                         "x86 CPUs), so this model's convolutions stay FP32; static --precision int8 usually gains "
                         "more on a convolutional model, unless its latency is per-op overhead (the gaze student): "
                         "profile both")
        res = quantize_onnx_dynamic(model, out, exclude_nodes=exclude_nodes)
    elif min_sqnr_db is not None:
        res, fb_note = _sqnr_fallback(model, out, runtime, feeds, feeds[:compare_batches], min_sqnr_db, method,
                                      threads)
        notes.append(fb_note)
    elif runtime == "onnxruntime":
        from edgekd.quantize.ort_static import quantize_onnx_static

        res = quantize_onnx_static(model, out, feeds, method=method, exclude_nodes=exclude_nodes)
    else:
        from edgekd.quantize.nncf_ov import quantize_openvino

        if method != "minmax":
            notes.append(f"--method {method} applies to ONNX Runtime only; NNCF uses its own range estimators")
        res = quantize_openvino(model, out, feeds, subset_size=len(feeds), ignored_nodes=exclude_nodes,
                                input_shapes=shapes or None)
    names = [o.name for o in _outputs(model)]
    reference = onnx_predict(str(model), threads)
    if runtime == "openvino":
        from edgekd.quantize.nncf_ov import compile_f32, compiled_predict, read_model

        candidate = compiled_predict(compile_f32(read_model(res.path), threads))
    else:
        candidate = onnx_predict(str(res.path), threads)
    cmp_feeds = feeds[:compare_batches]
    rows = compare_outputs(reference, candidate, cmp_feeds, names)
    where = f"{len(cmp_feeds)} {'random' if random_cal or calib is None else 'calibration'} batch(es)"
    return ExternalQuantReport(res, rows, where, random_cal, notes)


def _predict_any(path: Path, threads: int | None):  # type: ignore[no-untyped-def]
    if path.suffix == ".xml":
        from edgekd.quantize.nncf_ov import compile_f32, compiled_predict, read_model

        return compiled_predict(compile_f32(read_model(path), threads))
    return onnx_predict(str(path), threads)


def _sqnr_fallback(model: Path, out: Path, runtime: str, calib: list, check: list, min_sqnr_db: float,  # type: ignore[type-arg]
                   method: str, threads: int | None) -> tuple[QuantResult, str]:
    """Fallback on the worst output's relative noise power ``max_k |y_k - q_k|^2 / |y_k|^2``
    (0 for FP32, lower is better); SQNR >= S dB  <=>  noise ratio <= 10^(-S/10)."""
    import tempfile

    from edgekd.fileio import sha256_file
    from edgekd.quantize.fallback import OpenVinoQuantizer, OrtQuantizer, Quantizer, accuracy_aware_fallback

    names = [o.name for o in _outputs(model)]
    reference = onnx_predict(str(model), threads)
    ref_out = [reference(f) for f in check]

    def noise_ratio(path: Path) -> float:
        pred = _predict_any(path, threads)
        sig = np.zeros(len(names))
        noise = np.zeros(len(names))
        for f, r in zip(check, ref_out, strict=True):
            for k, (a, b) in enumerate(zip(r, pred(f), strict=True)):
                a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
                sig[k] += float(np.sum(a64**2))
                noise[k] += float(np.sum((a64 - b64) ** 2))
        return float(np.max(noise / np.maximum(sig, 1e-30)))

    with tempfile.TemporaryDirectory(prefix="edgekd-sqnr-fb-") as tmp:
        quantizer: Quantizer
        if runtime == "onnxruntime":
            quantizer = OrtQuantizer(model, calib, Path(tmp), method=method)
        else:
            quantizer = OpenVinoQuantizer(model, calib)
        fb = accuracy_aware_fallback(model, out, quantizer, noise_ratio, lower_is_better=True,
                                     max_drop=10 ** (-min_sqnr_db / 10))
    achieved = -10 * np.log10(max(fb.metric_final, 1e-30))
    note = (f"accuracy-aware fallback (min output SQNR {min_sqnr_db:g} dB): {len(fb.fallback_layers)} layer(s) kept "
            f"in FP32 {fb.fallback_layers}; worst output SQNR {achieved:.1f} dB "
            f"(all-INT8 {-10 * np.log10(max(fb.metric_int8_all, 1e-30)):.1f} dB); {fb.evaluations} evaluations"
            + ("" if fb.within_tolerance else "; TARGET NOT REACHED"))
    bin_or_onnx = out.with_suffix(".bin") if out.suffix == ".xml" else out
    if out.suffix == ".onnx":
        from edgekd.quantize.ort_static import _quantized_nodes

        q_nodes, fp32_nodes = _quantized_nodes(out)
    else:
        from edgekd.quantize.nncf_ov import _count_fq, read_model

        q_nodes, fp32_nodes = _count_fq(read_model(out)), list(fb.fallback_layers)
    res = QuantResult(path=out, sha256=sha256_file(bin_or_onnx), runtime=runtime, precision="int8",
                      method=f"{method if runtime == 'onnxruntime' else 'nncf-ptq'}+fallback",
                      seconds=fb.seconds, calib_batches=len(calib), nodes_excluded=fb.fallback_layers,
                      nodes_quantized=q_nodes, compute_nodes_fp32=fp32_nodes,
                      settings={"min_sqnr_db": min_sqnr_db, "within_tolerance": fb.within_tolerance,
                                "sensitivity": [(x.name, x.recovered) for x in fb.sensitivities]})
    return res, note


def _outputs(model: Path) -> list:  # type: ignore[type-arg]
    import onnx

    return list(onnx.load(str(model), load_external_data=False).graph.output)


def parse_hw(text: str | None, flag: str = "--calib-size") -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected HxW, e.g. {flag} 640x640") from None
    if h <= 0 or w <= 0:
        raise ConfigError(f"{flag} {text!r}: height and width must be positive")
    return h, w

