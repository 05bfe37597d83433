"""ONNX Runtime static INT8 quantization (QDQ format) of any ONNX model.

Defaults follow what was measured on this CPU (``/work/shared/RUNTIME-NOTES.md``): unsigned
activations with signed per-channel weights (U8S8) let ONNX Runtime fuse every QDQ
convolution into an integer kernel, whereas signed activations (S8S8) left about half of
them running in FP32 between DequantizeLinear and QuantizeLinear.

Calibration methods (each gives a range ``[a, b]`` per activation tensor; the scale is
``s = (b - a) / 255`` and the zero point ``z = round(-a / s)`` for uint8):

- ``minmax``: ``a = min x``, ``b = max x`` over the calibration set.
- ``entropy``: the threshold that minimises the KL divergence between the FP32 histogram and
  its 128-level quantized version (Migacz, "8-bit Inference with TensorRT", GTC 2017):
  ``T* = argmin_T KL(P_T || Q_T)``. The histogram has ``num_bins`` bins; ONNX Runtime's
  ``quantize_static`` drops that setting (it then yields exactly the MinMax ranges), so the
  calibrator is built here and its ranges handed to the quantizer through a calibration cache.
- ``percentile``: ``a``, ``b`` = the ``(100-p)/2`` and ``100-(100-p)/2`` percentiles of the
  histogram (McKinstry et al., "Discovering Low-Precision Networks Close to Full-Precision
  Networks for Efficient Embedded Inference", 2018). 4-6x the calibration time of MinMax.

Before calibrating, the model is prepared: Constant nodes become initializers (so that
weights held in Constant nodes, as in the PP-OCR models, are quantized as weights), unnamed
nodes get names (so they can be excluded), then ONNX Runtime's ``quant_pre_process``
(symbolic shape inference, basic graph optimisation with constant folding and Conv+BN
fusion, ONNX shape inference).
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError, QuantizationError, UnknownNameError
from edgekd.fileio import atomic_path, sha256_file
from edgekd.quantize.calibration import ChunkReader, FeedReader, model_inputs

log = logging.getLogger(__name__)

METHODS = ("minmax", "entropy", "percentile")
INT_TYPES = ("uint8", "int8")
# The compute nodes that sensitivity analysis and fallback reason about.
COMPUTE_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
_CHUNK = 8  # batches per histogram collect call: bounds memory (all intermediates of a call are kept)


@dataclass
class QuantResult:
    """What a quantizer wrote and how. ``nodes_quantized`` run in INT8 (fed by DequantizeLinear)."""

    path: Path
    sha256: str
    runtime: str
    precision: str
    method: str
    seconds: float
    calib_batches: int
    nodes_quantized: list[str] = field(default_factory=list)
    nodes_excluded: list[str] = field(default_factory=list)
    compute_nodes_fp32: list[str] = field(default_factory=list)  # Conv/MatMul/Gemm left in float
    settings: dict[str, object] = field(default_factory=dict)
    prepare_steps: list[str] = field(default_factory=list)


# Ops that mean a graph is already quantized (QDQ, QOperator or dynamic INT8).
QUANTIZED_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul",
                 "QGemm", "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul")


def check_not_quantized(model: str | Path) -> None:
    """Raise QuantizationError when ``model`` already holds quantization ops.

    Why: post-training quantization of a QDQ graph (e.g. a quantization-aware student's export,
    already INT8 with its learnt scales) stacks a second set of Q/DQ pairs on the first; ONNX
    Runtime accepts it and the outputs are wrong (measured: off by 75% of their range on a small
    QAT CNN). Refusing is the only safe answer.
    """
    import collections

    import onnx

    m = onnx.load(str(model), load_external_data=False)
    found = collections.Counter(n.op_type for n in m.graph.node if n.op_type in QUANTIZED_OPS)
    if found:
        ops = ", ".join(f"{k} x{v}" for k, v in sorted(found.items()))
        raise QuantizationError(
            f"{str(model)!r} is already quantized (it holds {ops}); quantizing it again would stack new "
            "scales on the existing ones and corrupt its outputs",
            hint="run this INT8 model as it is (a quantization-aware student's QDQ export needs no calibration), "
                 "or quantize the FP32 export of the model instead")


def prepare_for_quantization(model: str | Path, out: str | Path, *, optimize: bool = True) -> list[str]:
    """Fold Constant nodes into initializers, name unnamed nodes, then ``quant_pre_process``.

    Returns the steps applied. Each ``quant_pre_process`` stage that fails on this graph is
    skipped (and said so in the steps) rather than failing the quantization: symbolic shape
    inference, for one, cannot read every custom graph.
    """
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from edgekd.quantize.scratch import scratch_cwd

    steps: list[str] = []
    m = _load(model)
    n_const = constants_to_initializers(m)
    if n_const:
        steps.append(f"constants_to_initializers({n_const})")
    opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)  # type: ignore[attr-defined]
    if opset is not None and opset < 13:
        # Per-channel QDQ needs DequantizeLinear's `axis` (opset 13+).
        from onnx import version_converter

        try:
            m = version_converter.convert_version(m, 13)
        except Exception as exc:
            raise QuantizationError(f"{str(model)!r} is at opset {opset}; per-channel QDQ needs opset >= 13 and "
                                    f"the conversion failed: {type(exc).__name__}: {exc}",
                                    hint="re-export the model at opset 13+ or quantize per tensor") from exc
        steps.append(f"opset {opset} -> 13")
    n_named = name_nodes(m)
    if n_named:
        steps.append(f"named_nodes({n_named})")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgekd-prep-") as tmp:
        staged = Path(tmp) / "staged.onnx"
        onnx.save(m, str(staged))
        attempts = [
            ("quant_pre_process(symbolic+optimize+onnx_shape)", {}),
            ("quant_pre_process(optimize+onnx_shape; symbolic shape inference failed)", {"skip_symbolic_shape": True}),
            ("quant_pre_process(onnx_shape only; optimisation failed)",
             {"skip_symbolic_shape": True, "skip_optimization": True}),
        ]
        if not optimize:
            attempts = attempts[2:]
        errors = []
        for label, kw in attempts:
            try:
                # symbolic shape inference drops sym_shape_infer_temp.onnx (+ <uuid>.data) into the cwd
                with _quiet(), scratch_cwd("edgekd-prep-cwd-"):
                    quant_pre_process(str(staged), str(out.resolve()), **kw)
                steps.append(label)
                break
            except Exception as exc:  # noqa: BLE001 - any stage failure moves to the next, recorded
                errors.append(f"{label}: {type(exc).__name__}: {str(exc)[:200]}")
        else:
            log.warning("quant_pre_process failed on every stage; quantizing the model as is: %s", errors)
            shutil.copyfile(staged, out)
            steps.append("no pre-processing (every quant_pre_process stage failed)")
    # The ORT optimizer can leave nodes it created unnamed, and graph inputs it no longer uses (old models
    # list their initializers as inputs too; once folded away they would look like inputs to feed).
    m2 = _load(out)
    dropped = drop_dangling_inputs(m2, keep={i.name for i in m.graph.input if i.name not in
                                             {t.name for t in m.graph.initializer}})
    if dropped:
        steps.append(f"dropped_unused_inputs({dropped})")
    if name_nodes(m2) or dropped:
        onnx.save(m2, str(out))
    return steps


def drop_dangling_inputs(m: Any, keep: set[str]) -> int:
    """Remove graph inputs that no node reads, that are not outputs, not initializers and not in ``keep``
    (the source model's real inputs: a user's interface is never changed); returns how many (in place)."""
    graph = m.graph  # type: ignore[attr-defined]
    used = {x for n in graph.node for x in n.input} | {o.name for o in graph.output}
    inits = {t.name for t in graph.initializer}
    drop = [i for i in graph.input if i.name not in used and i.name not in inits and i.name not in keep]
    for i in drop:
        graph.input.remove(i)
    return len(drop)


def constants_to_initializers(m: Any) -> int:
    """Move tensor-valued Constant nodes into graph initializers (in place); returns how many."""
    from onnx import numpy_helper

    graph = m.graph  # type: ignore[attr-defined]
    keep, moved = [], 0
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            t = numpy_helper.to_array(node.attribute[0].t)
            graph.initializer.append(numpy_helper.from_array(t, name=node.output[0]))
            moved += 1
        else:
            keep.append(node)
    if moved:
        del graph.node[:]
        graph.node.extend(keep)
    return moved


def name_nodes(m: Any) -> int:
    """Give every unnamed node a unique name ``<op_type>_<index>`` (in place); returns how many."""
    graph = m.graph  # type: ignore[attr-defined]
    used = {n.name for n in graph.node if n.name}
    named = 0
    for i, node in enumerate(graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in used:
                name += "_"
            node.name = name
            used.add(name)
            named += 1
    return named


def compute_nodes(model: str | Path, op_types: Sequence[str] = COMPUTE_OPS) -> list[str]:
    """Names of the Conv/MatMul/Gemm nodes of a (prepared) model, in graph order."""
    return [n.name for n in _load(model).graph.node if n.op_type in op_types]


def quantize_onnx_static(
    model: str | Path,
    out: str | Path,
    calib: Iterable[Mapping[str, np.ndarray]] | None,
    *,
    method: str = "minmax",
    per_channel: bool = True,
    activation: str = "uint8",
    weight: str = "int8",
    percentile: float = 99.99,
    exclude_nodes: Sequence[str] = (),
    num_bins: int = 2048,
    max_batches: int | None = None,
    calibration_cache: str | Path | None = None,
    preprocess: bool = True,
    op_types: Sequence[str] | None = None,
    symmetric: bool = False,
    quantize_bias: bool = True,
) -> QuantResult:
    """Quantize ``model`` to QDQ INT8 for ONNX Runtime, calibrated on ``calib`` feeds; write ``out`` atomically.

    ``exclude_nodes`` stay in FP32 (names as in the prepared model: see :func:`compute_nodes`
    on the output of :func:`prepare_for_quantization`). ``calibration_cache`` (a JSON file):
    reused when it exists (then ``calib`` may be None), written after calibrating otherwise;
    accuracy-aware fallback quantizes many times from one calibration this way.
    ``op_types`` restricts which op types get QDQ (default: every type ONNX Runtime can quantize);
    ``COMPUTE_OPS`` (Conv/MatMul/Gemm only) avoids Q/DQ pairs around cheap elementwise ops.
    ``symmetric`` (needs int8 activations and weights): every zero point is 0 and the scale is
    ``max(|a|, |b|) / 127``, the only scheme TensorRT's explicit quantization parses;
    ``quantize_bias=False`` keeps biases in FP32 (no int32 DequantizeLinear, which TensorRT does not take).
    """
    from onnxruntime.quantization import CalibrationMethod

    t0 = time.perf_counter()
    model, out = Path(model), Path(out)
    op_types = _check_request(model, out, method, activation, weight, percentile, num_bins, op_types)
    if symmetric and (activation, weight) != ("int8", "int8"):
        raise ConfigError(f"symmetric quantization needs int8 activations and weights, got activation={activation!r} "
                          f"weight={weight!r}", hint="pass activation='int8', weight='int8'")
    extra = {"ActivationSymmetric": True, "WeightSymmetric": True} if symmetric else {}
    if not quantize_bias:
        extra["QuantizeBias"] = False
    cal_method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[method]
    with tempfile.TemporaryDirectory(prefix="edgekd-quant-") as tmp_s:
        tmp = Path(tmp_s)
        prepared, steps = _prepare(model, tmp, preprocess, exclude_nodes)
        cache = Path(calibration_cache) if calibration_cache is not None else tmp / "calib.json"
        batches = _calibrate_to_cache(prepared, tmp, cache, calib, op_types, cal_method, method=method,
                                      activation=activation, num_bins=num_bins, percentile=percentile,
                                      max_batches=max_batches)
        quantized = tmp / "quantized.onnx"
        _quantize_with_cache(model, prepared, quantized, cache, op_types, cal_method, per_channel=per_channel,
                             activation=activation, weight=weight, exclude_nodes=exclude_nodes, extra_options=extra)
        q_nodes, fp32_compute = _quantized_nodes(quantized)
        with atomic_path(out) as dst:
            shutil.copyfile(quantized, dst)
    return QuantResult(
        path=out, sha256=sha256_file(out), runtime="onnxruntime", precision="int8", method=method,
        seconds=time.perf_counter() - t0, calib_batches=batches, nodes_quantized=q_nodes,
        nodes_excluded=list(exclude_nodes), compute_nodes_fp32=fp32_compute,
        settings={"format": "QDQ", "activation": activation, "weight": weight, "per_channel": per_channel,
                  "symmetric": symmetric, "quantize_bias": quantize_bias,
                  "percentile": percentile if method == "percentile" else None,
                  "num_bins": num_bins if method != "minmax" else None},
        prepare_steps=steps,
    )


def _check_request(model: Path, out: Path, method: str, activation: str, weight: str, percentile: float,
                   num_bins: int, op_types: Sequence[str] | None) -> list[str]:
    """Every argument checked before any work; returns the op types to quantize."""
    import inspect

    from onnxruntime.quantization import quantize_static
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    _check_args(method, activation, weight, percentile, num_bins)
    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
        import onnxruntime

        # The ranges computed here (entropy with num_bins, one calibration for many fallback
        # trials) reach the quantizer through this parameter.
        raise QuantizationError(
            f"onnxruntime {onnxruntime.__version__} has no calibration_cache_path in quantize_static",
            hint="pip install -U 'onnxruntime>=1.32'")
    if not model.is_file():
        raise ConfigError(f"model {str(model)!r} does not exist", hint="give the path of an .onnx file")
    if out.suffix != ".onnx":
        raise ConfigError(f"--out {str(out)!r}: an ONNX Runtime INT8 artifact must end in .onnx",
                          hint=f"use --out {out.with_suffix('.onnx')}")
    check_not_quantized(model)
    all_ops = sorted(set(QLinearOpsRegistry) | set(QDQRegistry))
    if op_types is not None:
        bad = [o for o in op_types if o not in all_ops]
        if bad:
            raise UnknownNameError("op type to quantize", bad[0], all_ops)
    return list(op_types) if op_types is not None else all_ops


def _prepare(model: Path, tmp: Path, preprocess: bool, exclude_nodes: Sequence[str]) -> tuple[Path, list[str]]:
    """The model ready for calibration (pre-processed unless told not to); excluded node names checked on it."""
    prepared = tmp / "prepared.onnx"
    if preprocess:
        steps = prepare_for_quantization(model, prepared)
    else:
        shutil.copyfile(model, prepared)
        steps = ["no pre-processing (preprocess=False)"]
    names = [n.name for n in _load(prepared).graph.node]
    unknown = [n for n in exclude_nodes if n not in names]
    if unknown:
        raise UnknownNameError("node to exclude", unknown[0], names,
                               hint="node names are those of the prepared model (edgekd.quantize.ort_static."
                                    "compute_nodes lists the Conv/MatMul/Gemm ones)")
    return prepared, steps


def _calibrate_to_cache(prepared: Path, tmp: Path, cache: Path, calib: Iterable[Mapping[str, np.ndarray]] | None,
                        op_types: list[str], cal_method: Any, *, method: str, activation: str, num_bins: int,
                        percentile: float, max_batches: int | None) -> int:
    """Tensor ranges into ``cache`` (reused when it exists); returns the number of batches calibrated on."""
    from onnxruntime.quantization.calibrate import create_calibrator, load_tensors_data, save_tensors_data

    if cache.is_file():
        tensors = load_tensors_data(cache)
        if tensors.calibration_method != cal_method:
            raise QuantizationError(
                f"calibration cache {str(cache)!r} was made with {tensors.calibration_method}, not {method!r}",
                hint="delete the cache or use the method it was made with")
        return 0
    if calib is None:
        raise QuantizationError("no calibration data and no calibration cache",
                                hint="pass calibration feeds (--calib DIR) or an existing cache")
    reader = FeedReader(calib, model_inputs(prepared), limit=max_batches)
    extra: dict[str, object] = {"symmetric": activation == "int8"}
    if method == "entropy":
        extra.update(num_bins=num_bins, num_quantized_bins=128)
    elif method == "percentile":
        # Asymmetric percentiles suit uint8 activations: a ReLU output keeps its full [0, b] range.
        extra.update(num_bins=num_bins, percentile=percentile)
    with _quiet():
        calibrator = create_calibrator(prepared, op_types, augmented_model_path=str(tmp / "augmented.onnx"),
                                       calibrate_method=cal_method, extra_options=extra)
        if not reader.has_next():
            raise QuantizationError("the calibration data is empty",
                                    hint="give at least one calibration batch (--calib DIR)")
        while reader.has_next():
            calibrator.collect_data(ChunkReader(reader, _CHUNK))
        if method == "entropy":
            # ORT's threshold search loops in Python over every bin (~0.5 s per tensor at
            # 2048 bins); the same search, vectorised per candidate, is much faster.
            tensors = _entropy_tensors_data(calibrator.collector.histogram_dict, 128, cal_method)
        else:
            tensors = calibrator.compute_data()
        if method != "minmax":
            # Never clip a model output: a detection map's few text pixels near 1.0 are
            # outliers to KL/percentile, and clipping them at e.g. 0.4 erases every
            # detection after a 0.5 threshold (measured: map IoU 0.0 on PP-OCR).
            tensors = _observed_range_for(tensors, calibrator.collector.histogram_dict,
                                          [o.name for o in _load(prepared).graph.output], cal_method)
    save_tensors_data(tensors, cache)
    return reader.count


def _quantize_with_cache(model: Path, prepared: Path, quantized: Path, cache: Path, op_types: list[str],
                         cal_method: Any, *, per_channel: bool, activation: str, weight: str,
                         exclude_nodes: Sequence[str], extra_options: Mapping[str, bool] | None = None) -> None:
    """ONNX Runtime's QDQ quantizer over the cached ranges; its bare exceptions become a QuantizationError.
    ``extra_options``: ONNX Runtime's ActivationSymmetric / WeightSymmetric / QuantizeBias switches."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    qtype = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    try:
        with _quiet():
            quantize_static(
                str(prepared), str(quantized), None, quant_format=QuantFormat.QDQ, op_types_to_quantize=op_types,
                per_channel=per_channel, reduce_range=False, activation_type=qtype[activation],
                weight_type=qtype[weight], nodes_to_exclude=list(exclude_nodes), calibrate_method=cal_method,
                calibration_cache_path=str(cache), extra_options=dict(extra_options or {}),
            )
    except Exception as exc:  # ORT raises bare exceptions; name the model and what to try
        raise QuantizationError(
            f"ONNX Runtime could not quantize {str(model)!r}: {type(exc).__name__}: {exc}",
            hint="exclude the failing node (exclude_nodes) or try --method minmax") from exc


def entropy_threshold(hist: np.ndarray, edges: np.ndarray, num_quantized_bins: int = 128) -> tuple[float, float]:
    """KL-optimal clipping range of a histogram symmetric about 0 (Migacz, GTC 2017).

    For each candidate half-width ``i`` (bins ``[c-i, c+i]`` around the centre ``c``): the
    reference ``P`` is the slice with the outliers folded into its edge bins; the candidate
    ``Q`` merges the slice into ``num_quantized_bins`` groups and spreads each group's mass
    evenly over the group's non-empty bins. Both are smoothed (zeros -> 1e-4) and the range
    with the least ``KL(P || Q) = sum P log(P / Q)`` wins.
    """
    hist = np.asarray(hist, np.float64)
    n = hist.size
    centre = n // 2
    half_q = num_quantized_bins // 2
    csum = np.concatenate([[0.0], np.cumsum(hist)])

    def kl_at(i: int) -> float:
        start, end = centre - i, min(centre + i + 1, n)
        sliced = hist[start:end]
        p = sliced.copy()
        p[0] += csum[start]
        p[-1] += csum[n] - csum[end]
        nz = p != 0
        m = sliced.size // num_quantized_bins
        # group index of every bin; the remainder joins the last group
        group = np.minimum(np.arange(sliced.size) // m, num_quantized_bins - 1)
        mass = np.bincount(group, weights=sliced, minlength=num_quantized_bins)
        count = np.bincount(group, weights=nz.astype(np.float64), minlength=num_quantized_bins)
        q = np.where(nz, mass[group] / np.maximum(count[group], 1.0), 0.0)
        ps, qs = _smooth(p), _smooth(q)
        if ps is None or qs is None:
            return np.inf
        ps, qs = ps / ps.sum(), qs / qs.sum()
        return float(np.sum(ps * np.log(ps / qs)))

    # Coarse pass over at most ~256 candidate widths, then every width around the best one:
    # the KL curve is smooth in the clipping width, and this keeps 2048+ bins fast.
    candidates = range(half_q, centre + 1)
    stride = max(1, len(candidates) // 256)
    coarse = {i: kl_at(i) for i in candidates[::stride]}
    best_i = min(coarse, key=coarse.__getitem__)
    fine = {i: kl_at(i) for i in range(max(half_q, best_i - stride), min(centre, best_i + stride) + 1)}
    scores = {**coarse, **fine}
    best_i = min(scores, key=scores.__getitem__)
    if not np.isfinite(scores[best_i]):
        return float(edges[0]), float(edges[-1])
    return float(edges[centre - best_i]), float(edges[min(centre + best_i + 1, n)])


def _smooth(p: np.ndarray, eps: float = 1e-4) -> np.ndarray | None:
    zeros = p == 0
    n_nonzero = p.size - int(zeros.sum())
    if n_nonzero == 0:
        return None
    out = p.astype(np.float64).copy()
    out[zeros] = eps
    out[~zeros] -= eps * zeros.sum() / n_nonzero
    return out if np.all(out > 0) else None


def _entropy_tensors_data(histograms: Mapping[str, tuple], num_quantized_bins: int, cal_method: Any) -> Any:
    from onnxruntime.quantization.calibrate import TensorsData

    data = {}
    for name, entry in histograms.items():
        hist, edges, lo, hi = entry[:4]  # ORT appends the running threshold as a 5th item
        a, b = entropy_threshold(hist, edges, num_quantized_bins)
        # Never wider than what was observed (a ReLU output keeps its lower bound at 0).
        a, b = max(a, float(lo)), min(b, float(hi))
        dt = np.asarray(edges).dtype
        data[name] = (np.array(a, dtype=dt), np.array(b, dtype=dt), hist, edges)
    return TensorsData(cal_method, data)


def _observed_range_for(tensors: Any, histograms: Mapping[str, tuple], names: Sequence[str], cal_method: Any) -> Any:
    from onnxruntime.quantization.calibrate import TensorsData

    data = dict(tensors.data)
    for name in names:
        if name in histograms:
            hist, edges, lo, hi = histograms[name][:4]
            dt = np.asarray(edges).dtype
            data[name] = (np.array(lo, dtype=dt), np.array(hi, dtype=dt), hist, edges)
    return TensorsData(cal_method, data)


def _quantized_nodes(path: Path) -> tuple[list[str], list[str]]:
    m = _load(path)
    producer = {o: n for n in m.graph.node for o in n.output}
    quantized, fp32 = [], []
    for n in m.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        fed = any(i in producer and producer[i].op_type == "DequantizeLinear" for i in n.input)
        if fed:
            quantized.append(n.name)
        elif n.op_type in COMPUTE_OPS:
            fp32.append(n.name)
    return quantized, fp32


def _check_args(method: str, activation: str, weight: str, percentile: float, num_bins: int) -> None:
    problems = []
    if method not in METHODS:
        problems.append(f"--method {method!r}: allowed {', '.join(METHODS)}")
    if activation not in INT_TYPES:
        problems.append(f"activation {activation!r}: allowed {', '.join(INT_TYPES)}")
    if weight not in INT_TYPES:
        problems.append(f"weight {weight!r}: allowed {', '.join(INT_TYPES)}")
    if not 50.0 < percentile <= 100.0:
        problems.append(f"percentile {percentile}: allowed (50, 100]")
    if num_bins < 512 and method != "minmax":
        problems.append(f"num_bins {num_bins}: at least 512 (the entropy search needs a fine histogram)")
    if problems:
        raise ConfigError("invalid quantization settings", problems)


def _load(path: str | Path) -> Any:
    import onnx

    return onnx.load(str(path))


@contextlib.contextmanager
def _quiet():  # type: ignore[no-untyped-def]
    """ONNX Runtime's quantizer prints progress to stdout and nags through the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)
