"""The teacher cache key: what changes the trained teacher changes it, student-only fields do not."""

from __future__ import annotations

from edgekd.pipeline.teacher_source import teacher_cache_key
from edgekd.tasks.recipe import load_recipe


def test_student_only_fields_share_the_teacher() -> None:
    base = teacher_cache_key(load_recipe("segmentation"))
    assert teacher_cache_key(load_recipe("segmentation", ["task.model.student_width=1.0"])) == base
    assert teacher_cache_key(load_recipe("segmentation", ["task.model.student_aspp=32"])) == base
    gui = teacher_cache_key(load_recipe("gui_agent"))
    assert teacher_cache_key(load_recipe("gui_agent", ["task.model.student_text_dim=128"])) == gui


def test_what_shapes_the_teacher_changes_the_key() -> None:
    base = teacher_cache_key(load_recipe("segmentation"))
    for override in ("task.model.teacher_aspp=32", "task.train_size=200", "seed=1", "teacher.train.epochs=2"):
        assert teacher_cache_key(load_recipe("segmentation", [override])) != base, override
