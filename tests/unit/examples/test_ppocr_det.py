"""examples/ppocr_det: the renderer's boxes, the DB post-processing and F-score, the student's size, and
a smoke run of the whole pipeline with the PP-OCRv4 ONNX teacher (skipped where rapidocr is absent)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "ppocr_det"


def _load_task_module() -> Any:
    spec = importlib.util.spec_from_file_location("ppocr_det_task", EXAMPLE / "task.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


T = _load_task_module()
HAS_TEACHER = importlib.util.find_spec("rapidocr_onnxruntime") is not None
needs_teacher = pytest.mark.skipif(not HAS_TEACHER, reason="rapidocr-onnxruntime (the PP-OCRv4 teacher) is not "
                                                           "installed")


def test_rendered_boxes_hold_the_ink_and_do_not_overlap() -> None:
    ds = T.render_split(6, 128, seed=3)
    for i in range(len(ds)):
        boxes = ds.boxes[i][ds.boxes[i][:, 0] >= 0]
        assert 1 <= len(boxes) <= T.MAX_BOXES
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 128).all() and (boxes[:, 2:] > boxes[:, :2]).all()
        for a in range(len(boxes)):
            for b in range(a + 1, len(boxes)):
                assert T._apart(boxes[a], boxes[b], 6)
        item = ds[i]
        assert item["image"].shape == (3, 128, 128) and -1.0 <= float(item["image"].min()) < float(item["image"].max()) <= 1.0
        kernel = item["kernel"][0].numpy()
        inside = np.zeros_like(kernel, dtype=bool)
        for x0, y0, x1, y1 in boxes.astype(int):
            inside[y0:y1 + 1, x0:x1 + 1] = True
        assert kernel.sum() > 0 and not (kernel.astype(bool) & ~inside).any()  # kernels lie within the boxes


def test_fscore_of_the_ground_truth_kernels_is_one_and_of_nothing_is_zero() -> None:
    """DB's unclip undoes the shrink closely enough that the exact kernels match every box at IoU >= 0.5."""
    task = T.build({"size": 128, "test_size": 12}, 0)
    ds = task.dataset("test")
    kernels = np.stack([ds[i]["kernel"].numpy() for i in range(len(ds))])
    calls = iter(range(0, len(ds), 16))

    def oracle(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        start = next(calls)
        return [kernels[start:start + len(feeds["image"])]]

    res = task.evaluate(oracle, "test")
    assert res.metric == pytest.approx(1.0) and res.extras["ground_truth_boxes"] > 12
    assert task.evaluate(lambda f: [np.zeros((len(f["image"]), 1, 128, 128), np.float32)], "test").metric == 0.0


def test_matching_is_one_to_one_at_iou_half() -> None:
    gt = [(0, 0, 10, 10), (20, 0, 30, 10)]
    assert T.match_counts([(0, 0, 10, 10), (0, 0, 10, 10)], gt) == 1  # a duplicate detection counts once
    assert T.match_counts([(0, 0, 10, 6)], gt) == 1  # IoU 0.6
    assert T.match_counts([(0, 0, 10, 4)], gt) == 0  # IoU 0.4
    assert T.binarised_iou(np.array([0.9, 0.9, 0.1]), np.array([0.9, 0.1, 0.1])) == pytest.approx(0.5)


@needs_teacher
def test_student_has_at_most_a_quarter_of_the_teachers_parameters() -> None:
    from edgekd.distill.teachers import OnnxTeacher

    teacher = OnnxTeacher(T.teacher_onnx_path())
    student = T.build({}, 0).build_student(init="scratch")
    n_student = sum(p.numel() for p in student.parameters())
    assert teacher.param_count() == pytest.approx(1.17e6, rel=0.01)
    assert n_student <= teacher.param_count() / 4


@pytest.fixture
def custom_kind() -> Iterator[None]:
    """``task: {kind: custom}`` before the custom-task loader lands: a stand-in registration, removed after."""
    from edgekd.config.recipe import TaskConfigBase
    from edgekd.tasks import TASKS
    from edgekd.tasks.recipe import recipe_model

    if "custom" in TASKS:
        yield
        return

    class CustomTaskConfig(TaskConfigBase):
        kind: Literal["custom"] = "custom"
        factory: str
        args: dict[str, Any] = {}

    def factory(cfg: CustomTaskConfig, seed: int) -> Any:
        file, fn = cfg.factory.split(":")
        spec = importlib.util.spec_from_file_location("ppocr_det_task_run", EXAMPLE / file)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return getattr(mod, fn)(cfg.args, seed)

    TASKS.register(CustomTaskConfig)(factory)
    recipe_model.cache_clear()
    try:
        yield
    finally:
        TASKS._by_cls.pop(CustomTaskConfig)
        TASKS._by_kind.pop("custom")
        recipe_model.cache_clear()


@needs_teacher
@pytest.mark.slow
def test_smoke_run_of_the_whole_pipeline(custom_kind: None, tmp_path: Path) -> None:
    import json

    from edgekd.cli import main

    rc = main(["distill-and-export", str(EXAMPLE / "recipe.yaml"), "--preset", "smoke", "--out", str(tmp_path),
               "--no-progress"])
    assert rc in (0, 1)  # 1 = a budget failed: judged, not an error
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["teacher"]["source"] == "onnx" and len(report["teacher"]["sha256"]) == 64
    for v in ("teacher", "student_alone", "student_kd", "onnx_fp32", "onnx_int8"):
        assert 0.0 <= report["variants"][v]["metric"] <= 1.0, v
    assert report["variants"]["teacher"]["params"] == report["teacher"]["params"]
    assert {"teacher_onnx_fp32", "onnx_fp32", "onnx_int8"} <= set(report["profiles"])
    assert "latency_ratio_onnx_fp32_vs_teacher_onnx" in report["summary"]
    assert (tmp_path / "openvino").is_dir() and (tmp_path / "manifest.json").is_file()
