"""Values that would crash or escape later are refused when the recipe is loaded: seeds outside
numpy's range, absurd sizes, non-finite floats, a name that is not one plain path segment."""

from __future__ import annotations

import pytest

from edgekd.config.recipe import MAX_COUNT, MAX_SEED, ProfileConfig, Strict, TrainConfig
from edgekd.errors import ConfigError
from edgekd.tasks.recipe import load_recipe


@pytest.mark.parametrize(("override", "field", "says"), [
    ("seed=-1", "seed", "greater than or equal to 0"),
    (f"seed={10**30}", "seed", f"less than or equal to {MAX_SEED}"),
    (f"task.train_size={10**12}", "task.train_size", "at most 10,000,000"),
    (f"task.val_size={MAX_COUNT + 1}", "task.val_size", "at most 10,000,000"),
    ("train.epochs=1000000", "train.epochs", "less than or equal to 100000"),
    ("train.batch_size=1000000", "train.batch_size", "less than or equal to 65536"),
    ("profile.iterations=100000000", "profile.iterations", "less than or equal to 10000000"),
    ("profile.threads=100000", "profile.threads", "less than or equal to 1024"),
    ("quantize.calibration.samples=10000000", "quantize.calibration.samples", "less than or equal to 1000000"),
    ("train.lr=.inf", "train.lr", "finite number"),
    ("train.lr=nan", "train.lr", "finite number"),
    ("profile.min_duration_s=1e9", "profile.min_duration_s", "less than or equal to 86400"),
    ("name=/abs/path", "name", "plain name"),
    ("name=../up", "name", "plain name"),
    ("name=a/b", "name", "plain name"),
    (f"name={'a' * 65}", "name", "plain name"),
])
def test_bad_values_are_named(override: str, field: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_recipe("gaze", [override])
    assert len(info.value.problems) == 1, info.value.problems
    assert info.value.problems[0].startswith(f"{field}: ") and says in info.value.problems[0], info.value.problems
    assert info.value.exit_code == 2


@pytest.mark.parametrize("override", ["seed=0", f"seed={MAX_SEED}", f"task.train_size={MAX_COUNT}",
                                      "name=my-gaze_v2.1", "name=Gaze2"])
def test_edge_values_are_accepted(override: str) -> None:
    load_recipe("gaze", [override])


class _Counts(Strict):
    n: int = 1
    drone_seed: int = 0
    maybe: int | None = None
    flag: bool = True


def test_ceiling_applies_to_every_unbounded_integer_field() -> None:
    assert _Counts(n=MAX_COUNT, drone_seed=MAX_SEED, maybe=None, flag=True).n == MAX_COUNT
    for kwargs in ({"n": MAX_COUNT + 1}, {"maybe": MAX_COUNT + 1}, {"drone_seed": -1}, {"drone_seed": MAX_SEED + 1}):
        with pytest.raises(ValueError):
            _Counts(**kwargs)  # type: ignore[arg-type]


def test_own_bounds_win_over_the_ceiling() -> None:
    assert ProfileConfig(iterations=MAX_COUNT).iterations == MAX_COUNT
    with pytest.raises(ValueError, match="less than or equal to 100000"):
        TrainConfig(epochs=100_001)
