"""Which ONNX model a run hands TensorRT: the FP32 one (PTQ runs, uint8 QAT fine-tune), the QAT QDQ one
(int8 activations), or none (uint8 QAT from scratch), with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekd.pipeline.produce import tensorrt_source
from edgekd.tasks.recipe import load_recipe

FP32, INT8 = Path("student.onnx"), Path("student.int8.onnx")


@pytest.mark.parametrize(("sets", "model", "note"), [
    ([], FP32, None),
    (["distill.qat=true"], None, "skipped"),
    (["distill.qat.mode=finetune"], FP32, "symmetric INT8 Q/DQ"),
    (["distill.qat.activation=int8"], INT8, None),
    (["distill.qat.mode=finetune", "distill.qat.activation=int8"], INT8, None),
])
def test_tensorrt_source(sets: list[str], model: Path | None, note: str | None) -> None:
    got, why = tensorrt_source(load_recipe("segmentation", sets), FP32, INT8)
    assert got == model
    assert (why is None) if note is None else (why is not None and note in why and "activation=int8" in why)
