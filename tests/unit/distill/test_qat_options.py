"""prepare_qat options: per-tensor weights (one scale per tensor, scalar QDQ scales) and low-bit weights
baked into an exact int8 QDQ graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import nn

from edgekd.quantize.fake_quant import export_qdq_onnx, prepare_qat


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(6, 2))


def test_per_tensor_weights_train_and_export(tmp_path: Path) -> None:
    per_tensor, per_channel = prepare_qat(_net(), per_channel=False).train(), prepare_qat(_net()).train()
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = torch.rand(8, 1, 8, 8, generator=g)
        per_tensor(x).sum().backward()
        per_channel(x)
    assert per_tensor[0].weight_fake_quant.qscheme == torch.per_tensor_symmetric
    assert per_tensor[0].weight_fake_quant.scale.numel() == 1
    assert per_channel[0].weight_fake_quant.scale.numel() == 6
    assert per_tensor[0].weight.grad is not None and per_tensor[0].weight.grad.abs().sum() > 0
    x = torch.rand(3, 1, 8, 8, generator=g)
    path = tmp_path / "pt.onnx"
    export_qdq_onnx(per_tensor, (x,), path, input_names=["image"], output_names=["y"])
    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in m.graph.node if n.op_type == "Constant"}
    scales = [(inits | consts).get(n.input[1]) for n in m.graph.node if n.op_type == "DequantizeLinear"]
    assert scales and all(s is not None and s.size == 1 for s in scales)  # every scale is a scalar
    y = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        ref = per_tensor(x).numpy()
    assert np.abs(y - ref).max() <= 2.0 * float(per_tensor[4].output_fake_quant.scale) + 1e-6


def test_low_bit_weights_bake_into_an_exact_int8_qdq_graph(tmp_path: Path) -> None:
    import pytest

    from edgekd.errors import ConfigError
    from edgekd.quantize.fake_quant import bake_low_bit_weights, freeze_qat

    g = torch.Generator().manual_seed(2)
    x = torch.rand(6, 1, 8, 8, generator=g)
    for per_channel in (True, False):
        net = prepare_qat(_net(), per_channel=per_channel, weight_bits=4).eval()
        net(x)  # observers set the ranges
        freeze_qat(net)
        w = net[0].weight_fake_quant(net[0].weight).detach()
        levels = torch.unique((w / net[0].weight_fake_quant.scale.view(-1, 1, 1, 1)).round())
        assert levels.min() >= -8 and levels.max() <= 7  # a 4-bit grid
        with torch.no_grad():
            before = net(x)
        assert bake_low_bit_weights(net) == 2 and bake_low_bit_weights(net) == 0
        with torch.no_grad():
            after = net(x)
        assert torch.equal(before, after)  # the int8 carrier holds the 4-bit values exactly
        path = tmp_path / f"w4_{per_channel}.onnx"
        export_qdq_onnx(net, (x,), path, input_names=["image"], output_names=["y"])
        y = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
        assert np.abs(y - after.numpy()).max() <= 2.0 * float(net[4].output_fake_quant.scale) + 1e-6
    with pytest.raises(ConfigError, match="weight_bits=9"):
        prepare_qat(_net(), weight_bits=9)


def test_mse_weight_scales_lower_the_rounding_error_and_bake_exactly() -> None:
    from edgekd.quantize.fake_quant import bake_low_bit_weights, freeze_qat, set_mse_weight_scales

    g = torch.Generator().manual_seed(3)
    x = torch.rand(6, 1, 8, 8, generator=g)
    for per_channel in (True, False):
        minmax = prepare_qat(_net(), per_channel=per_channel, weight_bits=4).eval()
        minmax(x)
        mse = prepare_qat(_net(), per_channel=per_channel, weight_bits=4).eval()
        mse(x)  # activation ranges as above
        assert set_mse_weight_scales(mse) == 2
        freeze_qat(minmax)
        freeze_qat(mse)
        for i in (0, 4):
            w = minmax[i].weight.detach()
            err_mm = float(((minmax[i].weight_fake_quant(w) - w) ** 2).sum())
            err_mse = float(((mse[i].weight_fake_quant(w) - w) ** 2).sum())
            assert err_mse < 0.97 * err_mm  # measured 0.74-0.93 of the min/max error here
        mse(x)  # a forward after freezing must not move the scales back to min/max
        before_scale = mse[0].weight_fake_quant.scale.clone()
        with torch.no_grad():
            before = mse(x)
        assert torch.equal(mse[0].weight_fake_quant.scale, before_scale)
        bake_low_bit_weights(mse)
        with torch.no_grad():
            assert torch.equal(mse(x), before)


def test_strip_qat_gives_plain_modules_with_weights_on_the_learnt_grid() -> None:
    from edgekd.quantize.fake_quant import freeze_qat, is_qat, strip_qat

    g = torch.Generator().manual_seed(4)
    x = torch.rand(6, 1, 8, 8, generator=g)
    net = prepare_qat(_net(), weight_bits=4).eval()
    net(x)
    freeze_qat(net)
    plain = strip_qat(net)
    assert not is_qat(plain) and is_qat(net)  # the QAT model itself is untouched
    assert type(plain[0]) is nn.Conv2d and type(plain[4]) is nn.Linear
    for i in (0, 4):
        w = plain[i].weight.detach()
        assert torch.equal(w, net[i].weight_fake_quant(net[i].weight).detach())
        levels = (w / net[i].weight_fake_quant.scale.view(-1, *([1] * (w.dim() - 1)))).round()
        assert all(torch.unique(row).numel() <= 16 for row in levels.reshape(w.shape[0], -1))
    for mod in (net[0], net[4]):  # with activation fake-quant off, the two compute the same
        mod.input_fake_quant.disable_fake_quant()
        mod.output_fake_quant.disable_fake_quant()
    with torch.no_grad():
        assert torch.allclose(plain(x), net(x), atol=1e-6)
