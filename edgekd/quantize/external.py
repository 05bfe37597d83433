"""Quantize any ONNX model (one edgekd did not train) and measure how far it moved from FP32.

This is what ``edgekd quantize`` runs: build calibration feeds (folder of images / .npy, or
random data with a warning), hold part of them out (or take ``--eval``), quantize for the chosen runtime
and precision on the rest, then run the FP32 model (ONNX Runtime) and the quantized one on the held-out
inputs and report per output the SQNR, the max absolute difference, the IoU of thresholded probability
maps, and a held-out judgement with a metric that fits the output (``edgekd.quantize.heldout``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError
from edgekd.feeds import InputArgs, gather_index_bounds
from edgekd.quantize.calibration import RandomCalibrationWarning, folder_feeds, model_inputs, random_feeds
from edgekd.quantize.compare import OutputAgreement, compare_outputs
from edgekd.quantize.heldout import METRICS, OutputJudgement, judge_heldout, split_heldout
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
    judgements: list[OutputJudgement] = field(default_factory=list)  # held-out, a metric per output's kind


@dataclass(frozen=True)
class QuantOptions:
    """How ``quantize_external`` quantizes; the defaults are edgekd's measured best for ONNX Runtime on CPU."""

    runtime: str = "onnxruntime"
    precision: str = "int8"
    method: str = "minmax"
    exclude_nodes: Sequence[str] = ()
    op_types: Sequence[str] | None = None  # ORT static: e.g. ("Conv", "MatMul"); None = every op ORT quantizes
    per_channel: bool = True
    activation: str = "uint8"  # ORT static: uint8 (U8S8, fuses on x86) or int8 (S8S8)
    min_sqnr_db: float | None = None  # accuracy-aware fallback on the held-out SQNR
    metric: str = "auto"  # held-out metric per output: auto | argmax | iou | sequence | sqnr


def quantize_external(
    model: str | Path, out: str | Path, *, runtime: str = "onnxruntime", precision: str = "int8",
    method: str = "minmax", calib: str | Path | None = None, calib_count: int = 32,
    calib_size: tuple[int, int] | None = None, layout: str = "nchw", mean: Sequence[float] = (0.0,),
    std: Sequence[float] = (1.0,), grayscale: bool = False,
    input_shapes: Mapping[str, Sequence[int]] | None = None, exclude_nodes: Sequence[str] = (),
    compare_batches: int = 4, threads: int | None = 1, min_sqnr_db: float | None = None,
    eval_dir: str | Path | None = None, op_types: Sequence[str] | None = None, per_channel: bool = True,
    activation: str = "uint8", metric: str = "auto", input_args: InputArgs | None = None,
) -> ExternalQuantReport:
    """Quantize ``model`` for ``runtime``/``precision`` and judge it against FP32 on held-out inputs.

    Calibration data (``calib``, or random data with a warning) is split: the quantizer calibrates on the first
    part and the report (and ``min_sqnr_db``) judges the rest, unless ``eval_dir`` gives separate evaluation
    inputs. ``min_sqnr_db``: accuracy-aware fallback, the most sensitive Conv/MatMul/Gemm layers back to FP32
    until every output's held-out SQNR vs FP32 is at least this. ``compare_batches``: how many held-out inputs
    the SQNR/IoU table uses (the per-output judgement uses them all). ``input_args`` (--input/--feed): sizes
    and values; a value replaces that input in every calibration and evaluation input (:mod:`edgekd.feeds`).
    """
    opts = QuantOptions(runtime, precision, method, tuple(exclude_nodes), tuple(op_types) if op_types else None,
                        per_channel, activation, min_sqnr_db, metric)
    model, out = Path(model), Path(out)
    _check_request(model, opts, calib_count)
    inputs = model_inputs(model)
    given = (input_args or InputArgs()).resolve(inputs, f"MODEL {model.name}")
    shapes = {**dict(input_shapes or {}), **given.shapes}
    for name in shapes:
        if name not in {i.name for i in inputs}:
            from edgekd.errors import UnknownNameError

            raise UnknownNameError("--input name", name, [i.name for i in inputs])
    notes: list[str] = []
    load: dict[str, Any] = dict(size=_image_size(calib_size, inputs, shapes, layout), mean=mean, std=std, layout=layout,
                grayscale=grayscale)
    feeds, random_cal = _feeds(calib, inputs, shapes, opts, calib_count, compare_batches, load, notes,
                               (given.values, gather_index_bounds(model)))
    calibrates = precision == "int8" or min_sqnr_db is not None
    if calibrates:
        evaluation = [{**f, **given.values} for f in folder_feeds(eval_dir, inputs, limit=calib_count, **load)] \
            if eval_dir else None
        split = split_heldout(feeds, evaluation)
        calib_feeds, judge_feeds, how = split.calib, split.eval, split.note
    else:  # dynamic INT8 and FP16 calibrate nothing: every input is held out
        calib_feeds, judge_feeds, how = [], feeds, f"nothing calibrated; compared on {len(feeds)} input(s)"
    res = _quantize(model, out, opts, calib_feeds, judge_feeds, shapes, threads, notes)
    names = [o.name for o in _outputs(model)]
    reference, candidate = onnx_predict(str(model), threads), _predict_any(Path(res.path), threads)
    rows = compare_outputs(reference, candidate, judge_feeds[:compare_batches], names)
    judged = judge_heldout(reference, candidate, judge_feeds, names, metric=metric,
                           min_sqnr_db=20.0 if min_sqnr_db is None else min_sqnr_db)
    kind = "random" if random_cal else ("held-out" if calibrates else "")
    where = f"{len(judge_feeds[:compare_batches])} {kind} input(s)".replace("  ", " ") + f" ({how})"
    return ExternalQuantReport(res, rows, where, random_cal, notes, judged)


def _check_request(model: Path, o: QuantOptions, calib_count: int) -> None:
    problems = []
    if o.runtime not in RUNTIMES:
        problems.append(f"--runtime {o.runtime!r}: allowed {', '.join(RUNTIMES)}")
    if o.precision not in PRECISIONS:
        problems.append(f"--precision {o.precision!r}: allowed {', '.join(PRECISIONS)}")
    if o.runtime == "openvino" and o.precision != "int8":
        problems.append(f"--runtime openvino with --precision {o.precision!r}: only int8 (NNCF) is produced here; "
                        "OpenVINO runs FP16 by its inference precision hint on GPU")
    if not model.is_file() or model.suffix != ".onnx":
        problems.append(f"MODEL {str(model)!r}: must be an existing .onnx file")
    if o.method not in ("minmax", "entropy", "percentile"):
        problems.append(f"--method {o.method!r}: allowed minmax, entropy, percentile")
    if o.activation not in ("uint8", "int8"):
        problems.append(f"--activation {o.activation!r}: allowed uint8, int8")
    if o.metric not in METRICS:
        problems.append(f"--metric {o.metric!r}: allowed {', '.join(METRICS)}")
    if (o.op_types or not o.per_channel or o.activation != "uint8") and o.runtime != "onnxruntime":
        problems.append("--op-types, --per-tensor and --activation choose ONNX Runtime's static INT8; "
                        "use --runtime onnxruntime")
    if calib_count < 1:
        problems.append(f"--calib-count {calib_count}: at least 1")
    if problems:
        raise ConfigError("cannot quantize", problems)


def _image_size(calib_size: tuple[int, int] | None, inputs: Sequence, shapes: Mapping[str, Sequence[int]],  # type: ignore[type-arg]
                layout: str) -> tuple[int, int] | None:
    """Resize images to the one 4-D input's --input size unless --calib-size says otherwise."""
    if calib_size is None and len(inputs) == 1 and inputs[0].name in shapes and len(shapes[inputs[0].name]) == 4:
        s = shapes[inputs[0].name]
        return (s[2], s[3]) if layout == "nchw" else (s[1], s[2])
    return calib_size


def _feeds(calib: str | Path | None, inputs: Sequence, shapes: Mapping[str, Sequence[int]], o: QuantOptions,  # type: ignore[type-arg]
           calib_count: int, compare_batches: int, load: dict[str, Any], notes: list[str],
           fixed: tuple[Mapping[str, np.ndarray], Mapping[str, int]]) -> tuple[list, bool]:  # type: ignore[type-arg]
    """The inputs: a folder's, else random ones (with a note when they calibrate); True when random.
    ``fixed``: the values the user gave (they replace those inputs) and the Gather index bounds."""
    values, bounds = fixed
    if calib is not None:
        feeds = [{**f, **values} for f in folder_feeds(calib, inputs, limit=calib_count, **load)]
        if not feeds:
            raise ConfigError(f"--calib {str(calib)!r}: no calibration inputs found")
        return feeds, False
    calibrates = o.precision == "int8" or o.min_sqnr_db is not None
    if not calibrates:  # only compared: no calibration, so no random-calibration warning either
        return list(random_feeds(inputs, max(compare_batches, 2), shapes=shapes, calibration=False, values=values,
                                 index_bounds=bounds)), False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomCalibrationWarning)
        feeds = list(random_feeds(inputs, max(2, min(calib_count, 16)), shapes=shapes, values=values,
                                  index_bounds=bounds))
    notes.append("calibrated on RANDOM data: the accuracy of the quantized model is UNKNOWN; "
                 "give --calib DIR with real inputs")
    return feeds, True


def _quantize(model: Path, out: Path, o: QuantOptions, calib: list, check: list,  # type: ignore[type-arg]
              shapes: Mapping[str, Sequence[int]], threads: int | None, notes: list[str]) -> QuantResult:
    if o.precision == "fp16":
        from edgekd.quantize.fp16 import convert_fp16

        return convert_fp16(model, out, node_block_list=o.exclude_nodes)
    if o.precision == "int8-dynamic":
        from edgekd.quantize.ort_dynamic import conv_heavy, quantize_onnx_dynamic

        if conv_heavy(model):
            notes.append("dynamic INT8 quantizes only MatMul/Gemm (ConvInteger measured 4.5-13x SLOWER than FP32 on "
                         "x86 CPUs), so this model's convolutions stay FP32; static --precision int8 usually gains "
                         "more on a convolutional model, unless its latency is per-op overhead (the gaze student): "
                         "profile both")
        return quantize_onnx_dynamic(model, out, exclude_nodes=o.exclude_nodes)
    if o.min_sqnr_db is not None:
        res, fb_note = _sqnr_fallback(model, out, o.runtime, calib, check, o.min_sqnr_db, o.method, threads)
        notes.append(fb_note)
        return res
    if o.runtime == "onnxruntime":
        from edgekd.quantize.ort_static import quantize_onnx_static

        return quantize_onnx_static(model, out, calib, method=o.method, exclude_nodes=o.exclude_nodes,
                                    op_types=o.op_types, per_channel=o.per_channel, activation=o.activation)
    from edgekd.quantize.nncf_ov import quantize_openvino

    if o.method != "minmax":
        notes.append(f"--method {o.method} applies to ONNX Runtime only; NNCF uses its own range estimators")
    return quantize_openvino(model, out, calib, subset_size=len(calib), ignored_nodes=o.exclude_nodes,
                             input_shapes=shapes or None)


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

