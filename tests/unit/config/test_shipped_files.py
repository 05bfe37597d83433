"""Every shipped recipe and device file loads and validates."""

from pathlib import Path

import pytest

from edgekd.config import list_devices, load_device
from edgekd.paths import devices_dir, recipes_dir
from edgekd.tasks.recipe import load_recipe

RECIPES = sorted(recipes_dir().glob("*.yaml"))
DEVICES = list_devices()
REQUIRED_DEVICES = {"raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano", "jetson-agx-orin", "desktop-gpu", "host-cpu"}


def test_required_devices_ship() -> None:
    assert REQUIRED_DEVICES <= set(DEVICES)


@pytest.mark.parametrize("name", DEVICES)
def test_every_device_budgets_every_recipe(name: str) -> None:
    assert {p.stem for p in RECIPES} <= set(load_device(name).budgets), f"{name}: a recipe without a budget"


@pytest.mark.parametrize("name", DEVICES)
def test_device_loads(name: str) -> None:
    d = load_device(name)
    assert d.name == name, "a device file's name field must equal its file name"
    assert d.runtimes, "a device must support at least one runtime"
    for recipe, budget in d.budgets.items():
        assert (recipes_dir() / f"{recipe}.yaml").exists(), f"{name}: budget for {recipe!r}, which no recipe ships"
        assert d.supports(budget.runtime, budget.precision), f"{name}: budget for {recipe} names an unsupported runtime"


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_loads_with_each_preset(path: Path) -> None:
    r = load_recipe(path)
    assert r.name == path.stem
    for preset in r.presets:
        assert load_recipe(path, preset=preset).preset == preset


def test_unknown_device_suggests() -> None:
    from edgekd.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="Did you mean 'raspberry-pi-4'"):
        load_device("raspbery-pi-4")
    assert devices_dir().is_dir()
