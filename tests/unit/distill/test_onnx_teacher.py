"""OnnxTeacher: the same numbers as the torch model it was exported from, fed by position, keyed by the
file's SHA-256, outputs only (taps refused with the reason), parameters counted from the graph."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.distill.teachers import OnnxTeacher, as_teacher
from edgekd.errors import ConfigError


def export_tiny(path: Path, out_channels: int = 1, seed: int = 0, input_name: str = "image") -> nn.Module:
    """A 2-conv net exported with the TorchScript exporter (fast, one file), dynamic batch."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, out_channels, 1), nn.Sigmoid()).eval()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, 8, 8),), str(path), input_names=[input_name], output_names=["prob"],
                          dynamic_axes={input_name: {0: "b"}, "prob": {0: "b"}}, opset_version=17, dynamo=False)
    return net


def test_outputs_match_torch_and_inputs_go_by_position(tmp_path: Path) -> None:
    net = export_tiny(tmp_path / "t.onnx", input_name="x_in_the_file")
    t = as_teacher(OnnxTeacher(tmp_path / "t.onnx"))
    x = torch.rand(5, 3, 8, 8)
    (out,), feats = t([x])  # the task calls its input 'image'; the file calls it 'x_in_the_file'
    assert feats == {} and out.shape == (5, 1, 8, 8) and out.dtype == torch.float32
    torch.testing.assert_close(out, net(x).detach(), atol=1e-5, rtol=1e-4)
    with pytest.raises(ConfigError, match="takes 1 input"):
        t([x, x])


def test_param_count_and_fingerprint_follow_the_file(tmp_path: Path) -> None:
    net = export_tiny(tmp_path / "a.onnx", seed=0)
    export_tiny(tmp_path / "b.onnx", seed=1)
    a, b = OnnxTeacher(tmp_path / "a.onnx"), OnnxTeacher(tmp_path / "b.onnx")
    assert a.param_count() == sum(p.numel() for p in net.parameters())  # 3*4*9+4 + 4*1+1 = 117
    assert a.param_count() == 117
    (tmp_path / "copy.onnx").write_bytes((tmp_path / "a.onnx").read_bytes())
    assert OnnxTeacher(tmp_path / "copy.onnx").fingerprint() == a.fingerprint()  # content, not name
    assert a.fingerprint() != b.fingerprint()


def test_feature_taps_are_refused_with_the_reason(tmp_path: Path) -> None:
    export_tiny(tmp_path / "t.onnx")
    t = OnnxTeacher(tmp_path / "t.onnx")
    t.set_taps([])  # no taps: fine
    with pytest.raises(ConfigError, match="outputs only: feature losses need a torch teacher"):
        t.set_taps(["layer1"])


def test_fit_distils_from_an_onnx_teacher_through_the_offline_cache(tmp_path: Path) -> None:
    """The loop trains a student against the ONNX teacher's outputs; the cache is keyed by the file."""
    from edgekd.config.recipe import TrainConfig
    from edgekd.distill.loop import fit
    from edgekd.distill.losses.regression import RegressionConfig

    net = export_tiny(tmp_path / "t.onnx")
    g = torch.Generator().manual_seed(0)
    xs = torch.rand(64, 3, 8, 8, generator=g)
    data = [{"image": x} for x in xs]
    torch.manual_seed(7)  # not the teacher's initialisation
    student = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 1), nn.Sigmoid())
    with torch.no_grad():
        before = float(((student(xs) - net(xs)) ** 2).mean())
    res = fit(student, train_set=data, input_names=["image"], cfg=TrainConfig(epochs=15, batch_size=16, lr=1e-2),
              teacher=OnnxTeacher(tmp_path / "t.onnx"), losses=[RegressionConfig(kind="regression")],
              task_loss=None, progress=False, teacher_cache=tmp_path / "cache")
    with torch.no_grad():
        after = float(((res.student(xs) - net(xs)) ** 2).mean())
    assert after < 0.3 * before, (before, after)
    built = list((tmp_path / "cache").iterdir())
    assert len(built) == 1 and np.load(built[0] / "out_0.npy").shape == (64, 1, 8, 8)
    # the same bytes under another name reuse the cache; another model (other bytes) gets its own
    (tmp_path / "renamed.onnx").write_bytes((tmp_path / "t.onnx").read_bytes())
    export_tiny(tmp_path / "other.onnx", seed=5)
    one_epoch = TrainConfig(epochs=1, batch_size=16, max_steps_per_epoch=1)
    for name in ("renamed.onnx", "other.onnx"):
        fit(nn.Sequential(nn.Conv2d(3, 1, 1), nn.Sigmoid()), train_set=data, input_names=["image"], cfg=one_epoch,
            teacher=OnnxTeacher(tmp_path / name), losses=[RegressionConfig(kind="regression")], progress=False,
            teacher_cache=tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 2
