"""export_onnx on a quantization-aware student: QDQ through the TorchScript exporter, the learnt
scales untouched by the export's dummy inputs, and the observers as they were afterwards."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn
from torch.ao.quantization import FakeQuantize

from edgekd.errors import ConfigError
from edgekd.export.onnx import export_onnx
from edgekd.iospec import IOSpec, TensorSpec
from edgekd.quantize.fake_quant import prepare_qat

SPEC = IOSpec(inputs=(TensorSpec("image", ("batch", 1, 8, 8), "float32", 0.0, 1.0),),
              outputs=(TensorSpec("y", ("batch", 3), "float32"),))


def _qat_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 3))
    prepare_qat(net).train()
    g = torch.Generator().manual_seed(1)
    for _ in range(30):  # observers see inputs wider than the export's dummy [0, 1] inputs
        net(torch.rand(8, 1, 8, 8, generator=g) * 3.0)
    return net


def test_qat_student_exports_as_qdq_with_scales_kept(tmp_path: Path) -> None:
    net = _qat_net()
    scales = {k: v.clone() for k, v in net.state_dict().items() if k.endswith(".scale")}
    res = export_onnx(net, SPEC, tmp_path / "s.onnx")
    assert res.exporter == "torchscript" and "quantization-aware" in (res.fallback_reason or "")
    after = net.state_dict()
    assert all(torch.equal(after[k], v) for k, v in scales.items())  # tracing did not move the scales
    assert all(bool(m.observer_enabled) for m in net.modules() if isinstance(m, FakeQuantize))  # restored
    assert net.training  # mode restored too
    ops = collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "s.onnx")).graph.node)
    assert ops["QuantizeLinear"] >= 4 and ops["DequantizeLinear"] >= 4, ops
    x = np.random.default_rng(0).uniform(0, 1, (5, 1, 8, 8)).astype(np.float32)
    y = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    net.eval()
    for m in net.modules():
        if isinstance(m, FakeQuantize):
            m.disable_observer()
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    # the same integer grid; rounding ties may differ by one step of the output scale
    assert np.abs(y - ref).max() <= 2.0 * float(net[4].output_fake_quant.scale) + 1e-6


def test_qat_student_with_dynamo_or_old_opset_is_a_config_error(tmp_path: Path) -> None:
    net = _qat_net()
    with pytest.raises(ConfigError, match="exporter='dynamo'"):
        export_onnx(net, SPEC, tmp_path / "d.onnx", exporter="dynamo")
    with pytest.raises(ConfigError, match="opset >= 13"):
        export_onnx(net, SPEC, tmp_path / "o.onnx", opset=11)
    assert not list(tmp_path.iterdir())


def test_run_folder_of_a_qat_run_loads_its_fake_quant_student(tmp_path: Path) -> None:
    import json

    from edgekd.quantize.fake_quant import is_qat
    from edgekd.tasks import build_task
    from edgekd.tasks.recipe import recipe_model
    from edgekd.tasks.run_student import load_run_student
    from edgekd.weights import save_module_weights

    recipe = recipe_model().model_validate({
        "name": "tiny-gaze-qat", "task": {"kind": "gaze", "height": 32, "width": 48, "train_size": 8, "val_size": 8,
                                          "test_size": 8}, "distill": {"qat": True}})
    student = prepare_qat(build_task(recipe.task, 0).build_student()).train()
    with torch.no_grad():
        for _ in range(3):
            student(torch.rand(4, 1, 32, 48))
    save_module_weights(student, tmp_path / "student_kd.safetensors")
    (tmp_path / "manifest.json").write_text(json.dumps({"recipe_config": recipe.model_dump(mode="json")}))
    run = load_run_student(tmp_path)  # a plain student would not fit the saved fake-quant buffers
    assert is_qat(run.module)
    got = run.module.state_dict()
    assert all(torch.equal(got[k], v) for k, v in student.state_dict().items())
    res = export_onnx(run.module, run.spec, tmp_path / "s.onnx", simplify=False)
    ops = collections.Counter(n.op_type for n in onnx.load(str(res.path)).graph.node)
    assert res.exporter == "torchscript" and ops["QuantizeLinear"] > 10, ops
