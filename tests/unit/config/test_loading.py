"""Overrides, error reporting and suggestions of the config loader."""

import pytest
from pydantic import Field

from edgekd.config.loading import apply_overrides, parse_override, validate
from edgekd.config.recipe import Strict, TrainConfig
from edgekd.errors import ConfigError


class Inner(Strict):
    epochs: int = Field(3, ge=1)
    lr: float = 0.1


class Outer(Strict):
    name: str
    train: Inner = Inner()
    items: list[int] = [1, 2, 3]


def test_parse_override_types() -> None:
    assert parse_override("train.epochs=5") == (["train", "epochs"], 5)
    assert parse_override("a.b=true") == (["a", "b"], True)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("a=oops") == (["a"], "oops")


@pytest.mark.parametrize("bad", ["noequals", "=3", "a..b=1"])
def test_parse_override_rejects(bad: str) -> None:
    with pytest.raises(ConfigError, match="--set"):
        parse_override(bad)


def test_apply_overrides_nested_and_list() -> None:
    data = {"name": "x", "train": {"epochs": 3}, "items": [1, 2, 3]}
    out = apply_overrides(data, ["train.lr=0.5", "items.1=9", "new.key=1"])
    assert out["train"] == {"epochs": 3, "lr": 0.5}
    assert out["items"] == [1, 9, 3]
    assert data["items"] == [1, 2, 3]  # input untouched
    with pytest.raises(ConfigError, match="out of range"):
        apply_overrides(data, ["items.7=1"])


def test_all_problems_reported_at_once_with_paths() -> None:
    with pytest.raises(ConfigError) as info:
        validate(Outer, {"name": "x", "train": {"epochs": "oops", "lrr": 1}, "extra": 1}, "r.yaml")
    text = str(info.value)
    assert "3 problem(s)" in text
    assert "train.epochs" in text and "'oops'" in text
    assert "train.lrr: unknown field; did you mean 'lr'?" in text
    assert "extra: unknown field" in text


def test_bounds_named() -> None:
    with pytest.raises(ConfigError, match=r"epochs: Input should be greater than or equal to 1 \(got 0\)"):
        validate(TrainConfig, {"epochs": 0}, "x")
