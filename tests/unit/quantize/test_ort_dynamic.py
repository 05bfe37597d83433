"""Dynamic INT8: linear layers become integer matmuls; CNNs are flagged as conv-heavy."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.quantize.compare import compare_outputs
from edgekd.quantize.ort_dynamic import conv_heavy, quantize_onnx_dynamic
from edgekd.runtime.predict import onnx_predict


def test_dynamic_mlp(tmp_path: Path, tiny_onnx: Path) -> None:
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 8)).eval()
    src = tmp_path / "mlp.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(mlp, (torch.rand(2, 32),), str(src), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "b"}}, opset_version=17, dynamo=False)
    assert not conv_heavy(src) and conv_heavy(tiny_onnx)
    res = quantize_onnx_dynamic(src, tmp_path / "mlp_dyn.onnx")
    assert len(res.nodes_quantized) == 2 and res.compute_nodes_fp32 == []
    feeds = [{"x": np.random.default_rng(1).normal(size=(4, 32)).astype(np.float32)}]
    (agree,) = compare_outputs(onnx_predict(str(src)), onnx_predict(str(res.path)), feeds, ["y"])
    assert 15.0 < agree.sqnr_db < 80.0  # quantized (not identical), but close
