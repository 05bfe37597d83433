"""Throughput mode on a tiny model: the sweep's points, its bookkeeping, skips and bad settings."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.errors import ConfigError
from edgekd.profile.throughput import ThroughputConfig, batched, format_table, throughput_sweep
from edgekd.runtime import SessionOptions

FAST = {"duration_s": 0.2, "warmup_s": 0.02}


def _export(path: Path, dynamic: bool) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval(), (torch.rand(1, 3, 8, 8),), str(path),
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "b"}} if dynamic else None,
                          opset_version=17, dynamo=False)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tp")
    return {"dyn": _export(d / "dyn.onnx", True), "fixed": _export(d / "fixed.onnx", False)}


FEEDS = {"x": np.random.default_rng(0).uniform(size=(1, 3, 8, 8)).astype(np.float32)}


def test_sweep_points_and_bookkeeping(models: dict[str, Path]) -> None:
    res = throughput_sweep(models["dyn"], "onnxruntime", FEEDS, ThroughputConfig(batches=(1, 3), streams=(1, 2), **FAST))
    assert [(p.batch, p.streams) for p in res.points] == [(1, 1), (1, 2), (3, 1), (3, 2)]
    for p in res.points:
        assert p.skipped is None and p.calls > 0 and p.items == p.calls * p.batch
        assert p.items_per_s == pytest.approx(p.items / p.wall_s)
        assert p.wall_s >= 0.2 and p.per_item_ms == pytest.approx(1000 * p.wall_s / p.items)
        assert p.latency_ms["p50"] <= p.latency_ms["p90"] <= p.latency_ms["p99"]
        assert p.threads_per_stream == 1
    js = res.to_json()
    assert js["mode"] == "throughput" and js["best"]["items_per_s"] == max(p.items_per_s for p in res.points)
    assert js["runtime_settings"]["threads"] == 1
    assert any("<- best" in line for line in format_table(res))


def test_fixed_batch_skips_other_batches(models: dict[str, Path]) -> None:
    res = throughput_sweep(models["fixed"], "onnxruntime", FEEDS, ThroughputConfig(batches=(1, 2), streams=(1,), **FAST))
    assert res.points[0].skipped is None
    assert res.points[1].skipped == "the model fixes the batch dimension to 1" and res.points[1].items_per_s is None
    assert "skipped" in format_table(res)[2]


def test_openvino_streams(models: dict[str, Path]) -> None:
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    res = throughput_sweep(models["dyn"], "openvino", FEEDS, ThroughputConfig(batches=(2,), streams=(2,), **FAST),
                           options=SessionOptions(extra={"input_shapes": {"x": [2, 3, 8, 8]}}))
    assert res.points[0].calls > 0 and res.runtime_settings["inference_precision"] == "f32"


def test_batched_repeats_and_cuts() -> None:
    a = {"x": np.arange(2)[:, None].astype(np.float32), "s": np.array(3)}
    out = batched(a, 5)
    assert out["x"][:, 0].tolist() == [0, 1, 0, 1, 0] and out["s"].ndim == 0


@pytest.mark.parametrize(("kw", "needle"), [
    ({"batches": ()}, "batches"), ({"streams": (0,)}, "streams"), ({"duration_s": 0}, "duration_s"),
    ({"threads_per_stream": 0}, "threads_per_stream"), ({"warmup_s": -1}, "warmup_s"),
])
def test_bad_settings(kw: dict, needle: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as ei:
        ThroughputConfig(**kw)
    assert needle in str(ei.value)
