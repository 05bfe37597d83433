"""Feature taps by module path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgekd.distill.hooks import FeatureTaps, ShapeMap, module_paths, probe_all_shapes, resolve_module
from edgekd.errors import ConfigError


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                         nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU()))


def test_taps_capture_outputs_by_path_and_clear() -> None:
    net = _net()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        ref = net[0](x)
    with FeatureTaps(net, ["0", "2.0"]) as taps:
        net(x)
        feats = taps.take()
        assert torch.equal(feats["0"], ref)
        assert feats["2.0"].shape == (2, 8, 4, 4)
        assert taps.features == {}
    net(x)  # hooks removed: nothing captured after the context
    assert taps.features == {}


def test_wrong_path_lists_nearest_paths() -> None:
    net = _net()
    with pytest.raises(ConfigError) as err:
        resolve_module(net, "2.O", "teacher")
    msg = str(err.value)
    assert "teacher tap '2.O'" in msg and "2.0" in msg and "module_paths" in msg
    assert module_paths(net) == ["0", "1", "2", "2.0", "2.1"]


def test_probe_shapes_and_shape_map_errors() -> None:
    net = _net()
    shapes = probe_all_shapes(net, lambda: net(torch.randn(1, 3, 8, 8)))
    assert shapes["2"] == (1, 8, 4, 4) and not net._forward_hooks and not net[0]._forward_hooks
    sm = ShapeMap("student", shapes, module_paths(net))
    assert sm["0"] == (1, 4, 8, 8)
    with pytest.raises(ConfigError, match="student tap '3'"):
        sm["3"]
