"""ArtifactSet and QatPlan: which files a recipe's run writes, decided in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekd.pipeline.artifacts import ArtifactSet, QatPlan
from edgekd.tasks.recipe import load_recipe


def _set(tmp_path: Path, *overrides: str) -> ArtifactSet:
    return ArtifactSet.of(load_recipe("gaze", overrides=list(overrides), preset="smoke"), tmp_path)


@pytest.mark.parametrize(("overrides", "fp32", "int8", "source"), [
    ((), "student.onnx", "student.int8.onnx", "ptq"),
    (("quantize.runtime=openvino", "quantize.mode=static"), "student.onnx", "student.int8.xml", "ptq"),
    (("quantize.enabled=false",), "student.onnx", None, "none"),
    (("distill.qat=true",), None, "student.int8.onnx", "qat_scratch"),
    (("distill.qat.mode=finetune",), "student.onnx", "student.int8.onnx", "qat_finetune"),
    # a QAT export is QDQ ONNX, whatever runtime PTQ would have used
    (("distill.qat=true", "quantize.runtime=openvino", "quantize.mode=static"), None, "student.int8.onnx",
     "qat_scratch"),
])
def test_the_plan_names_every_runtime_artifact(tmp_path: Path, overrides: tuple[str, ...], fp32: str | None,
                                               int8: str | None, source: str) -> None:
    arts = _set(tmp_path, *overrides)
    assert arts.qat.int8_source == source
    assert (arts.fp32.name if arts.fp32 else None) == fp32
    assert (arts.int8.name if arts.int8 else None) == int8
    assert [a.name for a in arts.runtime_artifacts()] == [n for n in (fp32, int8) if n]


def test_finetune_adds_the_qat_arm_and_its_weights(tmp_path: Path) -> None:
    arts = _set(tmp_path, "distill.qat.mode=finetune")
    assert arts.qat == QatPlan("finetune", "qat_finetune") and arts.qat.finetune_arm
    assert "student_qat.safetensors" in [a.name for a in arts.weights()]
    assert "student_qat.safetensors" not in [a.name for a in _set(tmp_path).weights()]


def test_stale_files_of_any_earlier_run_are_removed(tmp_path: Path) -> None:
    names = ["student.onnx", "student.int8.onnx", "student.int8.xml", "student.int8.bin", "student_qat.safetensors",
             "openvino/student.xml", "tensorrt/student.plan.json", "report_tradeoff.png"]
    for n in names:
        (tmp_path / n).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / n).write_text("old")
    (tmp_path / "keep.txt").write_text("mine")
    _set(tmp_path).remove_stale()
    assert [n for n in names if (tmp_path / n).exists()] == []
    assert (tmp_path / "keep.txt").exists()


def test_manifest_lists_the_openvino_ir_with_its_bin(tmp_path: Path) -> None:
    arts = _set(tmp_path, "quantize.runtime=openvino", "quantize.mode=static")
    for n in ("student.onnx", "student.int8.xml", "student.int8.bin", "student_kd.safetensors", "report.json"):
        (tmp_path / n).write_text(n)
    entries = arts.manifest_entries({"openvino_int8": {"metric": 5.0}}, {})
    by_path = {e["path"]: e for e in entries}
    assert list(by_path) == ["student.onnx", "student.int8.xml", "student.int8.bin", "student_kd.safetensors",
                             "report.json"]
    assert by_path["student.int8.xml"]["runtime"] == "openvino" and by_path["student.int8.xml"]["metric"] == 5.0
    assert by_path["student.int8.bin"]["precision"] == "int8"


def test_next_hint_profiles_and_gates_the_int8_artifact_on_its_runtime(tmp_path: Path) -> None:
    hint = _set(tmp_path, "quantize.runtime=openvino", "quantize.mode=static").next_commands(
        "host-cpu", "gaze", {"image": [1, 1, 64, 96]})
    assert hint is not None
    assert f"edgekd profile {tmp_path}/student.int8.xml --runtime openvino" in hint
    assert "--input image=1x1x64x96" in hint and f"{tmp_path}/profile/openvino_int8.json" in hint
    ort = _set(tmp_path).next_commands("host-cpu", "gaze", {})
    assert ort is not None and "student.int8.onnx" in ort and "--runtime" not in ort
