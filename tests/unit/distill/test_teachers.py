"""Teachers: frozen module, analytic callable, weighted ensemble; fingerprints."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.distill.teachers import CallableTeacher, EnsembleTeacher, ModuleTeacher, as_teacher, to_tensors
from edgekd.errors import ConfigError


def test_module_teacher_is_frozen_eval_and_taps() -> None:
    net = nn.Sequential(nn.Linear(4, 5), nn.Dropout(0.5), nn.Linear(5, 2))
    net.train()
    t = as_teacher(net)
    assert isinstance(t, ModuleTeacher) and not net.training
    assert all(not p.requires_grad for p in net.parameters())
    t.set_taps(["0"])
    x = torch.randn(3, 4)
    net.train()  # someone flips it back: the teacher still runs in eval mode (dropout off)
    (o1,), f1 = t([x])
    (o2,), _ = t([x])
    assert torch.equal(o1, o2) and not o1.requires_grad
    assert torch.allclose(f1["0"], net[0](x))
    fp = t.fingerprint()
    with torch.no_grad():
        net[2].bias += 1
    assert t.fingerprint() != fp


def test_callable_teacher_converts_outputs_and_fingerprints_by_name() -> None:
    def ctrl(x: torch.Tensor, gain: float = 2.0):
        return (x.numpy().astype(np.float64) * gain, torch.ones(len(x)))

    t = as_teacher(ctrl)
    assert isinstance(t, CallableTeacher)
    (a, b), feats = t([torch.ones(2, 3)])
    assert a.dtype == torch.float32 and torch.equal(a, torch.full((2, 3), 2.0)) and b.shape == (2,) and feats == {}
    p1 = CallableTeacher(functools.partial(ctrl, gain=3.0)).fingerprint()
    p2 = CallableTeacher(functools.partial(ctrl, gain=4.0)).fingerprint()
    assert p1 != p2 and t.fingerprint() == as_teacher(ctrl).fingerprint()
    with pytest.raises(ConfigError, match="no modules to tap"):
        t.set_taps(["layer1"])
    with pytest.raises(ConfigError, match="teacher output 0 is a str"):
        to_tensors("bad", "cpu")


def test_ensemble_is_the_weighted_average() -> None:
    x = torch.randn(4, 3)
    members = [lambda x: x * 1.0, lambda x: x * 4.0]
    (y,), _ = EnsembleTeacher(members, weights=[3.0, 1.0])([x])
    assert torch.allclose(y, x * (0.75 * 1.0 + 0.25 * 4.0))
    (z,), _ = EnsembleTeacher(members)([x])
    assert torch.allclose(z, x * 2.5)
    with pytest.raises(ConfigError, match="one non-negative weight per teacher"):
        EnsembleTeacher(members, weights=[1.0])
    with pytest.raises(ConfigError, match="member 1 returns shapes"):
        EnsembleTeacher([lambda x: x, lambda x: x[:, :2]])([x])
    assert EnsembleTeacher(members, [3, 1]).fingerprint() != EnsembleTeacher(members, [1, 3]).fingerprint()
