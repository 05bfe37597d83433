"""The recipe's ``optimize:`` section: off by default, closed candidate names, problems reported with the others."""

from __future__ import annotations

import pytest

from edgekd.cli import main
from edgekd.config.optimize import CANDIDATE_NAMES, OptimizeConfig, candidate_key
from edgekd.errors import ConfigError
from edgekd.paths import recipes_dir
from edgekd.tasks.recipe import load_recipe

RECIPES = sorted(p.stem for p in recipes_dir().glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_shipped_recipe_keeps_it_off(recipe: str) -> None:
    assert load_recipe(recipe).optimize.enabled is False  # published runs do not change


def test_set_overrides_reach_the_section() -> None:
    r = load_recipe("segmentation", preset="smoke", overrides=[
        "optimize.enabled=true", "optimize.candidates=[ort-int8-U8S8-pc-all, ov-default]", "optimize.max_drop=0.05"])
    assert r.optimize.enabled and r.optimize.candidates == ["ort-int8-U8S8-pc-all", "ov-default"]
    assert r.optimize.max_drop == 0.05 and r.optimize.metric is None


def test_bad_candidate_lists_the_names_and_the_nearest_with_the_other_problems() -> None:
    with pytest.raises(ConfigError) as info:
        load_recipe("segmentation", overrides=["optimize.candidates=[ort-int8-U8S8-pc-al]", "train.epochs=oops"])
    problems = info.value.problems
    assert len(problems) == 2, problems  # reported together with the recipe's other problem
    opt = next(p for p in problems if p.startswith("optimize.candidates"))
    assert "'ort-int8-U8S8-pc-al' is not a candidate" in opt
    assert "did you mean 'ort-int8-U8S8-pc-all'?" in opt
    assert all(name in opt for name in CANDIDATE_NAMES)


def test_cli_exits_2_before_training(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["distill-and-export", "segmentation", "--preset", "smoke", "--set", "optimize.enabled=true",
                 "--set", "optimize.candidates=[ov-int8-ncf]", "--set", "optimize.metric=mse"])
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "did you mean 'ov-int8-nncf'?" in err and "optimize.metric" in err
    assert "[data]" not in err  # nothing started


@pytest.mark.parametrize(("field", "value"), [("max_drop", 1.0), ("max_drop", -0.1), ("calib_samples", 0),
                                              ("candidates", []), ("unknown", 1)])
def test_out_of_range_values_are_errors(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field if field != "candidates" else "empty list"):
        OptimizeConfig.model_validate({field: value})


def test_candidate_key_drops_the_precision_suffix() -> None:
    assert candidate_key("ov-default(bf16)") == "ov-default" and candidate_key("ort-fp32") == "ort-fp32"


def test_the_recipe_hash_ignores_the_section_at_its_defaults() -> None:
    from edgekd.config.recipe import recipe_hash

    base = load_recipe("segmentation")
    assert recipe_hash(base) == recipe_hash(load_recipe("segmentation", overrides=["optimize.enabled=false"]))
    assert recipe_hash(base) != recipe_hash(load_recipe("segmentation", overrides=["optimize.enabled=true"]))
