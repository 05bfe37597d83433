"""Tiny ONNX models and calibration feeds shared by the quantization tests."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn


class TinyCNN(nn.Module):
    """Conv-BN-ReLU x3, a 'map' head (sigmoid, like a detection map) and a vector head."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        )
        self.map_head = nn.Conv2d(16, 1, 1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.body(x)
        return torch.sigmoid(self.map_head(f)), self.fc(f.mean(dim=(2, 3)))


def export_tiny(path: Path, dynamic_hw: bool = False) -> Path:
    torch.manual_seed(0)
    model = TinyCNN().eval()
    # Non-trivial BN statistics so folding matters.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    axes = {"x": {0: "batch", 2: "h", 3: "w"}} if dynamic_hw else {"x": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(1, 3, 16, 16),), str(path), input_names=["x"],
                          output_names=["map", "logits"], dynamic_axes=axes, opset_version=17, dynamo=False)
    return path


def make_feeds(n: int = 8, batch: int = 2, hw: tuple[int, int] = (16, 16), seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.uniform(0, 1, size=(batch, 3, *hw)).astype(np.float32)} for _ in range(n)]


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture(scope="session")
def tiny_onnx_dynamic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny(tmp_path_factory.mktemp("tinydyn") / "tiny_dyn.onnx", dynamic_hw=True)


@pytest.fixture()
def feeds() -> list[dict[str, np.ndarray]]:
    return make_feeds()
