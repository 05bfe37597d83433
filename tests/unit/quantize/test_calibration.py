"""Calibration feeds: image folders (layout, grayscale, mean/std), .npy, random with a warning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgekd.errors import ConfigError, QuantizationError
from edgekd.quantize.calibration import (
    FeedReader,
    ModelInput,
    RandomCalibrationWarning,
    folder_feeds,
    image_feeds,
    model_inputs,
    random_feeds,
)


def _images(folder: Path, n: int = 3) -> Path:
    folder.mkdir()
    for i in range(n):
        arr = np.full((10, 20, 3), 51 * i, np.uint8)
        arr[..., 1] = 255
        Image.fromarray(arr).save(folder / f"{i}.png")
    return folder


def test_image_feeds_nchw_mean_std(tmp_path: Path) -> None:
    d = _images(tmp_path / "img")
    feeds = list(image_feeds(d, input_name="x", size=(5, 8), mean=(0.5, 0.5, 0.5), std=(0.5,), batch=2))
    assert [f["x"].shape for f in feeds] == [(2, 3, 5, 8), (1, 3, 5, 8)]
    first = feeds[0]["x"][0]
    np.testing.assert_allclose(first[0], -1.0, atol=1e-6)  # red = 0 -> (0 - .5)/.5
    np.testing.assert_allclose(first[1], 1.0, atol=1e-6)  # green = 255
    assert feeds[0]["x"].dtype == np.float32


def test_image_feeds_nhwc_grayscale(tmp_path: Path) -> None:
    d = _images(tmp_path / "img", 1)
    (f,) = list(image_feeds(d, input_name="x", size=(4, 4), layout="nhwc", grayscale=True))
    assert f["x"].shape == (1, 4, 4, 1)


def test_folder_feeds_errors(tmp_path: Path) -> None:
    d = _images(tmp_path / "img", 1)
    dyn = [ModelInput("x", ("batch", 3, "h", "w"), "float32")]
    with pytest.raises(ConfigError, match="--calib-size"):
        list(folder_feeds(d, dyn))
    with pytest.raises(ConfigError, match="not a folder"):
        list(folder_feeds(tmp_path / "missing", dyn))
    with pytest.raises(ConfigError, match="--mean"):
        list(image_feeds(d, input_name="x", size=(4, 4), mean=(0.1, 0.2)))
    fixed = [ModelInput("x", (1, 3, 6, 7), "float32")]
    (f,) = list(folder_feeds(d, fixed))
    assert f["x"].shape == (1, 3, 6, 7)


def test_npy_feeds_add_batch_dim(tmp_path: Path) -> None:
    d = tmp_path / "npy"
    d.mkdir()
    np.save(d / "a.npy", np.ones((3, 4, 4), np.float64))
    (f,) = list(folder_feeds(d, [ModelInput("x", ("batch", 3, 4, 4), "float32")]))
    assert f["x"].shape == (1, 3, 4, 4) and f["x"].dtype == np.float32


def test_random_feeds_warn_and_resolve() -> None:
    inp = [ModelInput("x", ("batch", 3, "h", "w"), "float32")]
    with pytest.warns(RandomCalibrationWarning, match="UNKNOWN"):
        feeds = list(random_feeds(inp, 2, shapes={"x": (1, 3, 8, 8)}))
    assert len(feeds) == 2 and feeds[0]["x"].shape == (1, 3, 8, 8)
    with pytest.raises(ConfigError, match="--input x="), pytest.warns(RandomCalibrationWarning):
        list(random_feeds(inp, 1))


def test_reader_checks_feeds(tiny_onnx: Path) -> None:
    inputs = model_inputs(tiny_onnx)
    assert inputs[0].name == "x" and inputs[0].shape[1:] == (3, 16, 16)
    r = FeedReader([{"x": np.zeros((1, 3, 16, 16), np.float64)}], inputs)
    with pytest.raises(QuantizationError, match="dtype float64"):
        r.get_next()
    r2 = FeedReader([{"x": np.zeros((1, 3, 16, 16), np.float32)}] * 5, inputs, limit=3)
    assert len(list(iter(r2.get_next, None))) == 3 and r2.count == 3
