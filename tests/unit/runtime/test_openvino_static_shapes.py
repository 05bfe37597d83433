"""OpenVINO compiled at the static shape given by --input (options.extra["input_shapes"]), as benchmark_app -shape."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.errors import ConfigError
from edgekd.runtime import SessionOptions, get_runtime

pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install 'edgekd[openvino]')")
pytestmark = pytest.mark.openvino


@pytest.fixture(scope="module")
def dynamic_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ovs") / "dyn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval(), (torch.rand(1, 3, 8, 8),),
                          str(path), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}}, opset_version=17, dynamo=False)
    return path


def _input_shape(sess) -> tuple[bool, list]:  # type: ignore[no-untyped-def]
    ps = sess.compiled.inputs[0].get_partial_shape()
    return ps.is_static, [d.get_length() if d.is_static else None for d in ps]


def test_given_shapes_compile_static(dynamic_onnx: Path) -> None:
    sess = get_runtime("openvino").load(dynamic_onnx, SessionOptions(threads=1, extra={"input_shapes": {"x": [1, 3, 16, 24]}}))
    assert _input_shape(sess) == (True, [1, 3, 16, 24])
    assert sess.settings()["asked"]["static_input_shapes"] == {"x": [1, 3, 16, 24]}
    assert [t.shape for t in sess.inputs] == [(1, 3, 16, 24)]
    out = sess.run({"x": np.zeros((1, 3, 16, 24), np.float32)})
    assert out[0].shape == (1, 4, 16, 24)


def test_without_shapes_stays_dynamic(dynamic_onnx: Path) -> None:
    sess = get_runtime("openvino").load(dynamic_onnx, SessionOptions(threads=1))
    static, dims = _input_shape(sess)
    assert not static and dims[1] == 3 and dims[2] is None
    assert "static_input_shapes" not in sess.settings()["asked"]


@pytest.mark.parametrize(("shapes", "needle"), [
    ({"nope": [1, 3, 8, 8]}, "not an input"),
    ({"x": [1, 0, 8, 8]}, "positive"),
    ({"x": [1, 4, 8, 8]}, "cannot reshape"),  # the model fixes 3 channels
])
def test_bad_shapes_are_config_errors(dynamic_onnx: Path, shapes: dict, needle: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=needle):
        get_runtime("openvino").load(dynamic_onnx, SessionOptions(extra={"input_shapes": shapes}))
