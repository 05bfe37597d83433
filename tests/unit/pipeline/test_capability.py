"""The capability check before training: what cannot work is an error (all at once), what can be skipped is a warning."""

import importlib.util

import pytest

from edgekd.config.device import load_device
from edgekd.errors import ConfigError
from edgekd.pipeline.capability import check_capabilities
from edgekd.tasks.recipe import load_recipe


def _without_openvino(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))


def test_missing_openvino_skips_the_export_format_with_the_extra_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_openvino(monkeypatch)
    recipe = load_recipe("gaze", overrides=["export.formats=[onnx,openvino]"])
    warnings = check_capabilities(recipe, load_device("host-cpu"))
    assert any("'openvino'" in w and "edgekd[openvino]" in w and "skipping" in w for w in warnings)


def test_missing_openvino_for_quantization_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_openvino(monkeypatch)
    recipe = load_recipe("gaze", overrides=["quantize.runtime=openvino", "quantize.mode=static"])
    with pytest.raises(ConfigError) as info:
        check_capabilities(recipe, load_device("host-cpu"))
    assert "edgekd[openvino]" in str(info.value)


def test_tensorrt_without_a_gpu_warns_that_a_plan_is_written() -> None:
    recipe = load_recipe("segmentation", overrides=["export.formats=[onnx,tensorrt]"])
    warnings = check_capabilities(recipe, load_device("jetson-orin-nano"))
    import torch

    warned = any("build plan" in w and "edgekd build-engine" in w for w in warnings)
    assert warned == (not torch.cuda.is_available())
