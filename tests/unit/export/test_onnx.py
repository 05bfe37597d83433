"""export_onnx: dynamo first, TorchScript fallback with the reason, opset read back, onnxslim verified,
names from the IOSpec, dynamic batch, atomic writes, external data for large models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from edgekd.errors import ConfigError, ExportError
from edgekd.export import onnx as onnx_export
from edgekd.export.onnx import export_onnx
from edgekd.iospec import IOSpec, TensorSpec

SPEC = IOSpec((TensorSpec("image", ("batch", 3, 12, 12)),), (TensorSpec("logits", ("batch", 3)),))


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                      nn.Flatten(), nn.Linear(6, 3))
    return m


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]


def _torch(m: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return m.eval()(torch.from_numpy(x)).numpy()


def test_dynamo_export_with_dynamic_batch(tmp_path: Path) -> None:
    m = _cnn().train()  # exported in eval mode, and left as it was
    res = export_onnx(m, SPEC, tmp_path / "m.onnx", opset=18)
    assert m.training
    assert (res.exporter, res.opset, res.fallback_reason) == ("dynamo", 18, None)
    assert res.simplified and not res.external_data and len(res.sha256) == 64
    proto = onnx.load(str(res.path))
    assert [i.name for i in proto.graph.input] == ["image"] and [o.name for o in proto.graph.output] == ["logits"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch kept
    for b in (1, 5):
        x = np.random.default_rng(b).uniform(size=(b, 3, 12, 12)).astype(np.float32)
        np.testing.assert_allclose(_run(res.path, x), _torch(m, x), atol=1e-5, rtol=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temp files or side .data left


def test_opset_below_18_falls_back_when_dynamo_misses_it(tmp_path: Path) -> None:
    # measured with torch 2.13: dynamo cannot down-convert this model (ReduceMean/Gemm) below 18 and
    # stays at 18 silently; the exporter notices and falls back
    res = export_onnx(_cnn(), SPEC, tmp_path / "m13.onnx", opset=13)
    assert res.opset == 13
    assert onnx.load(str(res.path)).opset_import[0].version == 13
    # whichever exporter wrote it, the file has the opset asked for; a fallback says why
    assert res.exporter == "dynamo" or "wrote opset 18, opset 13 was asked for" in (res.fallback_reason or "")


def test_torchscript_exporter_and_fixed_batch(tmp_path: Path) -> None:
    res = export_onnx(_cnn(), SPEC, tmp_path / "ts.onnx", opset=13, exporter="torchscript", dynamic_batch=False)
    assert (res.exporter, res.opset, res.fallback_reason) == ("torchscript", 13, None)
    dims = onnx.load(str(res.path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 12, 12]


class DataDependent(nn.Module):
    """torch.export cannot trace a branch on a tensor's value; the TorchScript tracer records one branch."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        pooled = image.mean(dim=(2, 3))
        if pooled.sum() > 0:
            return self.fc(pooled)
        return -self.fc(pooled)


def test_fallback_to_torchscript_records_the_reason(tmp_path: Path) -> None:
    res = export_onnx(DataDependent(), SPEC, tmp_path / "dd.onnx", opset=17)
    assert res.exporter == "torchscript"
    assert res.fallback_reason and res.fallback_reason.startswith("dynamo exporter:")
    assert "data-dependent" in res.fallback_reason


def test_dynamo_only_raises_export_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="dynamo"):
        export_onnx(DataDependent(), SPEC, tmp_path / "dd.onnx", exporter="dynamo")
    assert not (tmp_path / "dd.onnx").exists()


def test_outputs_not_matching_the_spec_is_an_export_error(tmp_path: Path) -> None:
    two = IOSpec(SPEC.inputs, (TensorSpec("a", ("batch", 3)), TensorSpec("b", ("batch", 3))))
    with pytest.raises(ExportError):
        export_onnx(_cnn(), two, tmp_path / "x.onnx", exporter="torchscript")
    assert not (tmp_path / "x.onnx").exists()


def test_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        export_onnx(_cnn(), SPEC, tmp_path / "x.onnx", opset=9, exporter="fast")  # type: ignore[arg-type]
    assert "opset=9" in str(ei.value) and "exporter='fast'" in str(ei.value)
    with pytest.raises(ExportError, match="not a torch.nn.Module"):
        export_onnx(lambda x: x, SPEC, tmp_path / "x.onnx")


def test_a_simplified_graph_that_changes_outputs_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxslim

    def broken_slim(proto):  # type: ignore[no-untyped-def]
        out = onnx.ModelProto()
        out.CopyFrom(proto)
        for init in out.graph.initializer:  # scale every weight: the graph still runs, but wrongly
            arr = onnx.numpy_helper.to_array(init) * 2.0
            init.CopyFrom(onnx.numpy_helper.from_array(arr.astype(np.float32), init.name))
        return out

    monkeypatch.setattr(onnxslim, "slim", broken_slim)
    m = _cnn()
    res = export_onnx(m, SPEC, tmp_path / "s.onnx", exporter="torchscript")
    assert not res.simplified and "changed output 'logits'" in (res.simplify_note or "")
    x = np.ones((2, 3, 12, 12), np.float32)
    np.testing.assert_allclose(_run(res.path, x), _torch(m, x), atol=1e-5, rtol=1e-4)


def test_large_models_get_external_data_beside_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_BYTES", 0)  # treat the tiny model as "large"
    m = _cnn()
    res = export_onnx(m, SPEC, tmp_path / "big.onnx", exporter="torchscript")
    assert res.external_data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "big.onnx.data"]
    x = np.ones((2, 3, 12, 12), np.float32)
    np.testing.assert_allclose(_run(res.path, x), _torch(m, x), atol=1e-5, rtol=1e-4)
