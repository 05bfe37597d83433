"""Quantization-aware distillation: fake-quant student trained against a float teacher, exported
as QDQ ONNX that ONNX Runtime fuses into integer kernels (QLinearConv / QGemm)."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from edgekd.config.recipe import TrainConfig
from edgekd.distill.loop import fit
from edgekd.distill.losses.hinton_kd import HintonKDConfig
from edgekd.errors import ConfigError
from edgekd.quantize.fake_quant import QATConv2d, QATLinear, export_qdq_onnx, is_qat, prepare_qat


def _cnn(width: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, stride=2, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 4))


class _Images(Dataset):
    def __init__(self, n: int = 64) -> None:
        g = torch.Generator().manual_seed(0)
        self.y = torch.randint(0, 4, (n,), generator=g)
        self.x = torch.randn(n, 3, 12, 12, generator=g) * 0.5 + self.y.view(-1, 1, 1, 1) * 0.3

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.x[i], "label": self.y[i]}


def test_prepare_keeps_paths_and_weights() -> None:
    net = _cnn(4)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    prepare_qat(net)
    assert isinstance(net[0], QATConv2d) and isinstance(net[6], QATLinear) and is_qat(net)
    sd = net.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in before.items())
    assert "0.weight_fake_quant.scale" in sd
    y = net(torch.randn(2, 3, 12, 12))
    y.sum().backward()  # straight-through gradients reach the float weights
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0


def test_qat_distillation_exports_int8_onnx_that_ort_fuses(tmp_path: Path) -> None:
    ds = _Images()
    torch.manual_seed(0)
    teacher = _cnn(16)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=1e-2, weight_decay=0.0)

    def ce(out, batch):  # type: ignore[no-untyped-def]
        return nn.functional.cross_entropy(out[0], batch["label"])

    fit(teacher, train_set=ds, input_names=["image"], cfg=cfg, task_loss=ce, progress=False)
    torch.manual_seed(1)
    res = fit(_cnn(8), train_set=ds, input_names=["image"], cfg=cfg, task_loss=ce, teacher=teacher,
              losses=[HintonKDConfig(temperature=2.0)], qat=True, out_dir=tmp_path / "run", progress=False)
    student = res.student
    assert is_qat(student) and not is_qat(teacher)
    scale = float(student[0].input_fake_quant.scale)
    assert scale != 1.0  # observers ran during training
    path = tmp_path / "student_int8.onnx"
    x = ds.x[:5]
    export_qdq_onnx(student, (x,), path, input_names=["image"], output_names=["logits"])
    ops = collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    assert ops["QuantizeLinear"] >= 3 and ops["DequantizeLinear"] >= 3
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    y = sess.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        ref = student(x).numpy()
    assert np.abs(y - ref).max() < 0.05 * max(1.0, np.abs(ref).max())
    fused = collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node)
    assert fused["QLinearConv"] == 2 and fused["Conv"] == 0, fused  # every convolution runs in int8
    # the fake-quant buffers are part of the checkpoint, so resuming a QAT run keeps the learnt scales
    from edgekd.distill import checkpoint as ckpt

    tensors, _ = ckpt.load(tmp_path / "run" / "last.safetensors")
    assert "student.0.input_fake_quant.scale" in tensors
    with pytest.raises(ConfigError, match="opset >= 13"):
        export_qdq_onnx(student, (x,), tmp_path / "old.onnx", input_names=["image"], output_names=["logits"], opset=11)
