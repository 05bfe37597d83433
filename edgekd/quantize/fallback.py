"""Accuracy-aware fallback: keep the most quantization-sensitive layers in FP32 until the metric
is within tolerance, for any runtime.

Sensitivity is measured "all but one" (the leave-one-out analysis used by mixed-precision
PTQ tools, e.g. NNCF's accuracy-control ranking and TensorRT's layer-precision debugging):
for each candidate layer ``l``, quantize everything except ``l`` and measure the metric
``M_{-l}``. The sensitivity of ``l`` is the metric recovered by keeping it in FP32,

    s_l = improvement(M_{-l} vs M_int8)   (M_int8: everything quantized)

Layers are then returned to FP32 greedily in decreasing ``s_l`` until

    drop = M_fp32 - M   (higher is better)  or  M - M_fp32  (lower is better)  <=  max_drop.

The cost is ``N + k + 2`` quantize-and-evaluate runs for ``N`` candidates and ``k`` fallbacks;
``max_candidates`` bounds ``N`` for large graphs (the earliest and latest compute layers are
kept, where quantization noise is usually most harmful, then the rest in graph order).
A runtime is plugged in through :class:`Quantizer`: :class:`OrtQuantizer` (ONNX Runtime, one
calibration reused through a cache) and :class:`OpenVinoQuantizer` (NNCF ignored scope).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from edgekd.errors import ConfigError, QuantizationError

log = logging.getLogger(__name__)

MetricFn = Callable[[Path], float]  # artifact path -> metric


class Quantizer(Protocol):
    suffix: str  # ".onnx" or ".xml"

    def candidates(self) -> list[str]:
        """Names of the layers that may fall back (Conv/MatMul/Gemm), in graph order."""
        ...

    def quantize(self, exclude: Sequence[str], out: Path) -> Path:
        """Write the quantized artifact with ``exclude`` kept in floating point; return its path."""
        ...


class OrtQuantizer:
    """ONNX Runtime static INT8; calibrates once (first call) and reuses the ranges."""

    suffix = ".onnx"

    def __init__(self, model: str | Path, calib: Iterable[Mapping[str, np.ndarray]], work: Path, **kw: object) -> None:
        from edgekd.quantize.ort_static import compute_nodes, prepare_for_quantization

        self.work = work
        self.prepared = work / "prepared.onnx"
        prepare_for_quantization(model, self.prepared)
        self._candidates = compute_nodes(self.prepared)
        self.calib: Iterable[Mapping[str, np.ndarray]] | None = calib
        self.cache = work / "calib.json"
        self.kw = kw

    def candidates(self) -> list[str]:
        return list(self._candidates)

    def quantize(self, exclude: Sequence[str], out: Path) -> Path:
        from edgekd.quantize.ort_static import quantize_onnx_static

        quantize_onnx_static(self.prepared, out, None if self.cache.is_file() else self.calib,
                             exclude_nodes=exclude, calibration_cache=self.cache, preprocess=False, **self.kw)  # type: ignore[arg-type]
        return out


class OpenVinoQuantizer:
    """NNCF PTQ for OpenVINO; layers are OpenVINO op names (Convolution/MatMul) kept out by ignored scope."""

    suffix = ".xml"

    def __init__(self, model: str | Path, calib: Iterable[Mapping[str, np.ndarray]], **kw: object) -> None:
        from edgekd.quantize.nncf_ov import read_model

        self.model = Path(model)
        self.feeds = [dict(f) for f in calib]
        m = read_model(self.model)
        self._candidates = [op.get_friendly_name() for op in m.get_ordered_ops()
                            if op.get_type_name() in ("Convolution", "GroupConvolution", "MatMul",
                                                      "ConvolutionBackpropData")]
        self.kw = kw

    def candidates(self) -> list[str]:
        return list(self._candidates)

    def quantize(self, exclude: Sequence[str], out: Path) -> Path:
        from edgekd.quantize.nncf_ov import quantize_openvino

        quantize_openvino(self.model, out, self.feeds, ignored_nodes=exclude, **self.kw)  # type: ignore[arg-type]
        return out


@dataclass
class LayerSensitivity:
    name: str
    metric_without: float  # metric with only this layer in FP32
    recovered: float  # improvement over the all-INT8 metric (positive = keeping it FP32 helps)


@dataclass
class FallbackResult:
    path: Path
    fallback_layers: list[str]  # kept in FP32, most sensitive first
    metric_fp32: float
    metric_int8_all: float
    metric_final: float
    drop_final: float
    max_drop: float
    within_tolerance: bool
    sensitivities: list[LayerSensitivity] = field(default_factory=list)
    history: list[dict[str, object]] = field(default_factory=list)  # one row per fallback step
    evaluations: int = 0
    seconds: float = 0.0


def accuracy_aware_fallback(
    fp32_model: str | Path, out: str | Path, quantizer: Quantizer, metric_fn: MetricFn, *,
    lower_is_better: bool, max_drop: float, candidates: Sequence[str] | None = None,
    max_candidates: int | None = None, max_fallback: int | None = None,
) -> FallbackResult:
    """Quantize, and return layers to FP32 by decreasing sensitivity until ``drop <= max_drop``.

    ``metric_fn(path)`` scores an artifact (the FP32 model and each quantized one) on the
    caller's data. Writes the final artifact to ``out`` (atomically: built in a temp folder,
    then moved). ``within_tolerance`` is False when even ``max_fallback`` layers were not
    enough; the artifact is then the best one reached, and the caller decides.
    """
    t0 = time.perf_counter()
    out = Path(out)
    if max_drop < 0:
        raise ConfigError(f"quantize.max_metric_drop {max_drop}: must be >= 0")
    if out.suffix != quantizer.suffix:
        raise ConfigError(f"--out {str(out)!r}: this runtime's artifact ends in {quantizer.suffix}",
                          hint=f"use {out.with_suffix(quantizer.suffix)}")
    evals = 0

    def drop_of(m: float) -> float:
        return (m - fp32) if lower_is_better else (fp32 - m)

    def better(a: float, b: float) -> float:  # how much a improves on b
        return (b - a) if lower_is_better else (a - b)

    with tempfile.TemporaryDirectory(prefix="edgekd-fallback-") as tmp_s:
        tmp = Path(tmp_s)
        fp32 = float(metric_fn(Path(fp32_model)))
        evals += 1

        def run(exclude: Sequence[str], tag: str) -> tuple[Path, float]:
            nonlocal evals
            path = quantizer.quantize(list(exclude), tmp / f"{tag}{quantizer.suffix}")
            evals += 1
            return path, float(metric_fn(path))

        all_path, m_all = run([], "all")
        history: list[dict[str, object]] = [{"fallback": [], "metric": m_all, "drop": drop_of(m_all)}]
        best_path, best_m, chosen = all_path, m_all, []
        sens: list[LayerSensitivity] = []
        if drop_of(m_all) > max_drop:
            names = list(candidates) if candidates is not None else quantizer.candidates()
            known = set(quantizer.candidates())
            unknown = [n for n in names if n not in known]
            if unknown:
                from edgekd.errors import UnknownNameError

                raise UnknownNameError("fallback candidate layer", unknown[0], known)
            if max_candidates is not None and len(names) > max_candidates:
                head = max(1, max_candidates // 2)
                names = names[:head] + names[len(names) - (max_candidates - head):]
            for i, name in enumerate(names):
                _, m = run([name], f"loo{i}")
                sens.append(LayerSensitivity(name, m, better(m, m_all)))
            sens.sort(key=lambda s: s.recovered, reverse=True)
            limit = len(sens) if max_fallback is None else min(max_fallback, len(sens))
            for k in range(1, limit + 1):
                trial = [s.name for s in sens[:k]]
                path, m = run(trial, f"fb{k}")
                history.append({"fallback": list(trial), "metric": m, "drop": drop_of(m)})
                log.info("fallback %d layers: metric %.5g (drop %.5g, allowed %.5g)", k, m, drop_of(m), max_drop)
                if drop_of(m) <= max_drop or better(m, best_m) > 0:
                    best_path, best_m, chosen = path, m, trial
                if drop_of(m) <= max_drop:
                    break
        _move(best_path, out)
    within = drop_of(best_m) <= max_drop
    if not within:
        log.warning("fallback: %d layers in FP32 still leave a drop of %.5g > %.5g", len(chosen), drop_of(best_m),
                    max_drop)
    return FallbackResult(path=out, fallback_layers=chosen, metric_fp32=fp32, metric_int8_all=m_all,
                          metric_final=best_m, drop_final=drop_of(best_m), max_drop=max_drop,
                          within_tolerance=within, sensitivities=sens, history=history, evaluations=evals,
                          seconds=time.perf_counter() - t0)


def _move(src: Path, out: Path) -> None:
    from edgekd.fileio import atomic_path

    if src.suffix == ".xml":  # IR pair: weights first, so an .xml never points at missing weights
        with atomic_path(out.with_suffix(".bin")) as dst:
            shutil.copyfile(src.with_suffix(".bin"), dst)
    with atomic_path(out) as dst:
        shutil.copyfile(src, dst)


def require_within(res: FallbackResult) -> FallbackResult:
    """Raise QuantizationError when the fallback could not reach the tolerance."""
    if not res.within_tolerance:
        raise QuantizationError(
            f"accuracy-aware fallback kept {len(res.fallback_layers)} layers in FP32 "
            f"({', '.join(res.fallback_layers[:8])}) and the metric still dropped {res.drop_final:.4g} "
            f"(allowed quantize.max_metric_drop={res.max_drop:g}; FP32 {res.metric_fp32:.4g}, "
            f"INT8 {res.metric_final:.4g})",
            hint="raise quantize.max_metric_drop, use more/better calibration data, or ship FP32")
    return res
