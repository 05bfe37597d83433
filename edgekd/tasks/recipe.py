"""The recipe schema closed over every registered task and loss, and the one recipe loader.

The config layer defines the static part of a recipe; this module composes it with the task configs
(``edgekd.tasks``) and loss configs (``edgekd.distill.losses``) that are registered, so a typo in
``task.kind`` or a loss ``kind`` is reported with the names that exist.
"""

from __future__ import annotations

import functools
from pathlib import Path

from edgekd.config.recipe import RecipeBase, compose_recipe_model, load_recipe_as, resolve_recipe_path


@functools.cache
def recipe_model() -> type[RecipeBase]:
    """The recipe model with task and loss unions over everything registered."""
    from edgekd.distill.losses import LOSSES
    from edgekd.tasks import TASKS

    return compose_recipe_model(TASKS.config_classes(), LOSSES.config_classes())


def load_recipe(name_or_path: str | Path, overrides: list[str] | None = None,
                preset: str | None = None) -> RecipeBase:
    """Read a recipe (a name in ``recipes/`` or a path), apply its preset and ``--set`` overrides, validate.

    Every problem is reported at once, as a :class:`~edgekd.errors.ConfigError`. A custom task's factory
    file is resolved here against the recipe's folder (made absolute, its SHA-256 recorded), so the
    resolved recipe in a run's manifest rebuilds the same task from anywhere.
    """
    recipe = load_recipe_as(recipe_model(), name_or_path, overrides, preset)
    from edgekd.tasks.custom import CustomTaskConfig, resolve_factory

    if isinstance(recipe.task, CustomTaskConfig):
        folder = resolve_recipe_path(name_or_path).resolve().parent
        recipe.task = resolve_factory(recipe.task, folder)
    return recipe


__all__ = ["load_recipe", "recipe_model"]
