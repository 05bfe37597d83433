"""Accuracy-aware fallback: ranks layers, returns the sensitive ones to FP32 until within tolerance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekd.errors import QuantizationError
from edgekd.quantize.fallback import OrtQuantizer, accuracy_aware_fallback, require_within
from edgekd.runtime.predict import onnx_predict


def _mse_metric(reference: Path, feeds: list) -> tuple:
    ref = onnx_predict(str(reference))
    targets = [ref(f)[1] for f in feeds]
    calls = []

    def metric(path: Path) -> float:  # lower is better: logits error vs FP32
        calls.append(path)
        pred = onnx_predict(str(path))
        return float(np.mean([np.mean((pred(f)[1] - t) ** 2) for f, t in zip(feeds, targets, strict=True)]))

    return metric, calls


def test_fallback_reaches_tolerance(tiny_onnx: Path, feeds: list, tmp_path: Path) -> None:
    metric, _ = _mse_metric(tiny_onnx, feeds[:3])
    q = OrtQuantizer(tiny_onnx, feeds, tmp_path / "work")
    full = accuracy_aware_fallback(tiny_onnx, tmp_path / "all.onnx", q, metric, lower_is_better=True, max_drop=1.0)
    assert full.fallback_layers == [] and full.within_tolerance and full.evaluations == 2
    drop_all = full.drop_final
    assert drop_all > 0
    res = accuracy_aware_fallback(tiny_onnx, tmp_path / "fb.onnx", q, metric, lower_is_better=True,
                                  max_drop=drop_all * 0.3)
    assert res.within_tolerance and res.drop_final <= drop_all * 0.3
    assert 1 <= len(res.fallback_layers) <= len(q.candidates())
    # The fallen-back layers are the top of the sensitivity ranking, in order.
    ranked = [s.name for s in res.sensitivities]
    assert ranked[: len(res.fallback_layers)] == res.fallback_layers
    assert [s.recovered for s in res.sensitivities] == sorted((s.recovered for s in res.sensitivities), reverse=True)
    assert (tmp_path / "fb.onnx").is_file()
    # The written artifact is the one measured.
    assert metric(tmp_path / "fb.onnx") == pytest.approx(res.metric_final, rel=1e-6)


def test_fallback_impossible_reports(tiny_onnx: Path, feeds: list, tmp_path: Path) -> None:
    metric, _ = _mse_metric(tiny_onnx, feeds[:2])
    q = OrtQuantizer(tiny_onnx, feeds, tmp_path / "work")
    res = accuracy_aware_fallback(tiny_onnx, tmp_path / "fb.onnx", q, metric, lower_is_better=True,
                                  max_drop=0.0, max_fallback=1)
    assert not res.within_tolerance and len(res.fallback_layers) <= 1
    with pytest.raises(QuantizationError, match="max_metric_drop"):
        require_within(res)


@pytest.mark.openvino
def test_fallback_openvino(tiny_onnx: Path, feeds: list, tmp_path: Path) -> None:
    pytest.importorskip("nncf", reason="the openvino extra is not installed")
    from edgekd.quantize.fallback import OpenVinoQuantizer
    from edgekd.quantize.nncf_ov import compile_f32, compiled_predict, read_model

    ref = onnx_predict(str(tiny_onnx))
    check = feeds[:2]
    targets = [ref(f)[1] for f in check]

    def metric(path: Path) -> float:
        pred = compiled_predict(compile_f32(read_model(path)))
        return float(np.mean([np.mean((pred(f)[1] - t) ** 2) for f, t in zip(check, targets, strict=True)]))

    q = OpenVinoQuantizer(tiny_onnx, feeds)
    assert len(q.candidates()) == 5
    base = accuracy_aware_fallback(tiny_onnx, tmp_path / "all.xml", q, metric, lower_is_better=True, max_drop=1.0)
    res = accuracy_aware_fallback(tiny_onnx, tmp_path / "fb.xml", q, metric, lower_is_better=True,
                                  max_drop=base.drop_final * 0.3)
    assert res.within_tolerance and res.fallback_layers
    assert (tmp_path / "fb.xml").is_file() and (tmp_path / "fb.bin").is_file()
    assert metric(tmp_path / "fb.xml") == pytest.approx(res.metric_final, rel=1e-6)
