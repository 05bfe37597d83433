"""Presets deep-merge into the recipe's sections; the resolved recipe is validated as a whole, with
every problem (overrides, schema, the other presets) reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekd.config.loading import apply_overrides, merge_into
from edgekd.errors import ConfigError, UnknownNameError
from edgekd.tasks.recipe import load_recipe

RECIPE = """\
name: tiny
preset: smoke
task: {kind: gaze, train_size: 500}
train: {epochs: 30, batch_size: 64, lr: 0.004, weight_decay: 0.01}
profile: {sessions: 3, iterations: 100}
presets:
  smoke:
    task.train_size: 64
    train: {epochs: 1, batch_size: 16}
    profile: {iterations: 50}
  other:
    train.epochs: 2
"""


def _recipe(tmp_path: Path, text: str = RECIPE) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(text)
    return p


def test_merge_into_keeps_unnamed_keys_and_replaces_lists() -> None:
    base = {"a": {"x": 1, "y": [1, 2], "z": {"k": 1}}, "b": 2}
    assert merge_into(base, {"a": {"y": [3], "z": {"j": 2}}}) == {
        "a": {"x": 1, "y": [3], "z": {"k": 1, "j": 2}}, "b": 2}
    assert merge_into(True, {"mode": "finetune"}) == {"mode": "finetune"}  # a value is replaced by a section
    assert base["a"]["z"] == {"k": 1}  # inputs untouched


def test_preset_section_merges_into_the_recipe_section(tmp_path: Path) -> None:
    r = load_recipe(_recipe(tmp_path))
    assert (r.train.epochs, r.train.batch_size) == (1, 16)  # set by the preset
    assert (r.train.lr, r.train.weight_decay) == (0.004, 0.01)  # kept from the recipe, not the defaults
    assert (r.profile.iterations, r.profile.sessions) == (50, 3)
    assert r.task.train_size == 64  # type: ignore[attr-defined]


def test_set_applies_after_the_preset_and_merges_too(tmp_path: Path) -> None:
    r = load_recipe(_recipe(tmp_path), ["train={epochs: 5}", "train.lr=0.5"])
    assert (r.train.epochs, r.train.batch_size, r.train.lr, r.train.weight_decay) == (5, 16, 0.5, 0.01)


def test_error_in_a_section_the_preset_touches_is_reported(tmp_path: Path) -> None:
    text = RECIPE.replace("weight_decay: 0.01}", "weight_decay: 0.01, lrr: 1}")
    with pytest.raises(ConfigError, match=r"train\.lrr: unknown field; did you mean 'lr'"):
        load_recipe(_recipe(tmp_path, text))


def test_every_problem_at_once(tmp_path: Path) -> None:
    text = RECIPE.replace("train.epochs: 2", "train.epochs: 0\n    trian.lr: 1")
    with pytest.raises(ConfigError) as info:
        load_recipe(_recipe(tmp_path, text), ["seed=-1", "a..b=1", "distill.losses.3.weight=1", "profile.batch=0"])
    problems = info.value.problems
    expected = ["seed", "a..b", "distill.losses", "profile.batch", "presets.other: train.epochs",
                "presets.other: trian: unknown field"]
    for needle in expected:
        assert any(needle in p for p in problems), (needle, problems)
    assert len(problems) == len(expected), problems
    assert info.value.exit_code == 2


def test_other_preset_does_not_repeat_the_recipe_s_own_problem(tmp_path: Path) -> None:
    text = RECIPE.replace("profile: {sessions: 3", "profile: {sesions: 3")
    with pytest.raises(ConfigError) as info:
        load_recipe(_recipe(tmp_path, text))
    assert len(info.value.problems) == 1, info.value.problems  # not once more per preset
    assert info.value.problems[0].startswith("profile.sesions: unknown field")


def test_unknown_preset_suggests(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'smoke'"):
        load_recipe(_recipe(tmp_path), preset="smok")


def test_preset_none_and_set_preset(tmp_path: Path) -> None:
    assert load_recipe(_recipe(tmp_path), preset="none").train.epochs == 30
    r = load_recipe(_recipe(tmp_path), ["preset=other"])
    assert (r.preset, r.train.epochs, r.train.batch_size) == ("other", 2, 64)


def test_apply_overrides_reports_every_bad_override() -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides({"items": [1]}, ["items.5=1", "items.x=2"])
    assert len(info.value.problems) == 2


# What the shipped presets resolve to: each key a preset sets keeps its old value; the keys a section
# preset leaves out now come from the recipe (before this change they fell back to the defaults).
@pytest.mark.parametrize(("recipe", "key", "value"), [
    ("gaze", "train.epochs", 1), ("gaze", "train.batch_size", 16), ("gaze", "train.warmup_steps", 0),
    ("gaze", "train.lr", 0.004), ("gaze", "teacher.train.lr", 0.004),
    ("gaze", "profile.iterations", 50), ("gaze", "profile.warmup_iters", 2),
    ("gui_agent", "train.weight_decay", 0.01), ("gui_agent", "teacher.train.weight_decay", 0.01),
    ("gui_agent", "train.lr", 0.002), ("gui_agent", "task.model.student_fusion", 8),
    ("segmentation", "train.lr", 0.005), ("segmentation", "train.max_steps_per_epoch", 2),
    ("drone", "train.lr", 0.002), ("drone", "profile.sessions", 1),
])
def test_shipped_smoke_presets(recipe: str, key: str, value: object) -> None:
    node: object = load_recipe(recipe, preset="smoke")
    for part in key.split("."):
        node = getattr(node, part)
    assert node == value
