"""QAT fine-tuning helpers: chunked calibration equals one-batch min/max calibration; the FP32 student is
left untouched; the fine-tuned copy is folded, fake-quantized at the asked bits and trains."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from edgekd.config.recipe import QATConfig, TrainConfig
from edgekd.distill.qat_finetune import calibrate_qat, qat_finetune
from edgekd.errors import ConfigError
from edgekd.quantize.fake_quant import is_qat, prepare_qat


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 2))


def _items(n: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"x": (rng.standard_normal((1, 1, 6, 6)) * (1 + i)).astype(np.float32)} for i in range(n)]


def test_chunked_calibration_is_the_min_max_over_all_items() -> None:
    items = _items(10)
    one, chunked = prepare_qat(_net()), prepare_qat(_net())
    calibrate_qat(one, items, ["x"], chunk=64)
    calibrate_qat(chunked, items, ["x"], chunk=3)  # 4 chunks, the widest range in the last one
    for a, b in zip(one.modules(), chunked.modules(), strict=True):
        if hasattr(a, "scale") and hasattr(a, "zero_point"):
            assert torch.allclose(a.scale, b.scale) and torch.equal(a.zero_point, b.zero_point)
    first = prepare_qat(_net())
    calibrate_qat(first, items[:3], ["x"])
    assert float(first[0].input_fake_quant.scale) < float(chunked[0].input_fake_quant.scale)  # later items count
    assert chunked[0].input_fake_quant.activation_post_process.averaging_constant == 0.01  # restored
    with pytest.raises(ConfigError, match="no calibration items"):
        calibrate_qat(prepare_qat(_net()), [], ["x"])


class _Data(Dataset):  # type: ignore[type-arg]
    def __init__(self) -> None:
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(32, 1, 6, 6, generator=g)
        self.y = torch.randn(32, 2, generator=g)

    def __len__(self) -> int:
        return 32

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i]}


def test_qat_finetune_folds_quantizes_and_leaves_the_fp32_student() -> None:
    student = _net().eval()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    res = qat_finetune(student, qat=QATConfig(mode="finetune", weight_bits=4, finetune_epochs=3), train=TrainConfig(epochs=9, lr=1e-2,
                       batch_size=8), calib=_items(8), input_names=["x"], train_set=_Data(),
                       task_loss=lambda out, b: ((out[0] if isinstance(out, tuple) else out) - b["y"]).pow(2).mean(),
                       progress=False)
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())  # untouched
    assert is_qat(res.student) and not is_qat(student)
    assert res.extras["bn_folded"] == 1 and isinstance(res.student[1], nn.Identity)
    assert (res.student[0].weight_fake_quant.quant_min, res.student[0].weight_fake_quant.quant_max) == (-8, 7)
    assert len(res.history) == 3  # finetune_epochs, not train.epochs
    assert res.student[0].input_fake_quant.fake_quant_enabled[0] == 1  # calibration turned it back on
