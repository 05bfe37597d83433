"""OpenVINO IR from ONNX and from torch: FP32 weights kept, atomic .xml/.bin, parity vs torch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from edgekd.errors import ConfigError, ParityError
from edgekd.iospec import IOSpec, TensorSpec

ov = pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install 'edgekd[openvino]')")
pytestmark = pytest.mark.openvino

SPEC = IOSpec((TensorSpec("image", ("batch", 3, 12, 12)),), (TensorSpec("logits", ("batch", 4)),))


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(6, 4)).eval()


def test_ir_from_torch_keeps_names_dynamic_batch_and_fp32(tmp_path: Path) -> None:
    from edgekd.export.openvino import check_openvino_parity, export_openvino_from_torch

    m = _cnn()
    res = export_openvino_from_torch(m, SPEC, tmp_path / "m.xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.xml"]  # no temp folder left
    model = ov.Core().read_model(str(res.xml))
    assert [p.get_any_name() for p in model.inputs] == ["image"]
    assert [p.get_any_name() for p in model.outputs] == ["logits"]
    assert model.inputs[0].get_partial_shape()[0].is_dynamic
    # FP32 weights: no f16 constants in the reference IR
    assert not any(op.get_type_name() == "Constant" and op.get_element_type() == ov.Type.f16
                   for op in model.get_ops())
    rep = check_openvino_parity(m, SPEC, res.xml, atol=1e-5, rtol=1e-4)
    assert rep.passed and rep.outputs[0].max_abs_diff < 1e-5


def test_ir_from_onnx_and_fp16_compression_is_opt_in(tmp_path: Path) -> None:
    from edgekd.export.onnx import export_onnx
    from edgekd.export.openvino import check_openvino_parity, export_openvino_from_onnx

    m = _cnn()
    onnx_path = export_onnx(m, SPEC, tmp_path / "m.onnx", exporter="torchscript").path
    fp32 = export_openvino_from_onnx(onnx_path, tmp_path / "fp32.xml")
    fp16 = export_openvino_from_onnx(onnx_path, tmp_path / "fp16.xml", compress_to_fp16=True)
    assert fp16.bin.stat().st_size < fp32.bin.stat().st_size  # FP16 weights: about half
    assert check_openvino_parity(m, SPEC, fp32.xml, atol=1e-5, rtol=1e-4).passed


def test_parity_failure_is_reported(tmp_path: Path) -> None:
    from edgekd.export.openvino import check_openvino_parity, export_openvino_from_torch

    m = _cnn()
    res = export_openvino_from_torch(m, SPEC, tmp_path / "m.xml")
    with torch.no_grad():
        m[-1].bias.add_(1.0)  # the reference moves away from the IR
    with pytest.raises(ParityError) as ei:
        check_openvino_parity(m, SPEC, res.xml, feeds=[SPEC.dummy_inputs(seed=1)])
    assert ei.value.mismatches["logits"][0] == pytest.approx(1.0, abs=1e-4)


def test_out_must_be_xml(tmp_path: Path) -> None:
    from edgekd.export.openvino import export_openvino_from_torch

    with pytest.raises(ConfigError, match="NAME.xml"):
        export_openvino_from_torch(_cnn(), SPEC, tmp_path / "m.bin")
