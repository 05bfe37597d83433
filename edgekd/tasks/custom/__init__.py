"""Tasks of your own in a recipe: ``task: {kind: custom, factory: "my_task.py:build", args: {...}}``.

The factory (a file relative to the recipe, or ``package.module:build``) is called as
``build(args: dict, seed: int)`` and returns an object implementing :class:`edgekd.tasks.Task`; it is
checked against the protocol before anything trains (:mod:`edgekd.tasks.custom.loader`)."""

from edgekd.tasks import TASKS
from edgekd.tasks.custom.config import CustomTaskConfig
from edgekd.tasks.custom.loader import build_custom_task, load_factory, resolve_factory

TASKS.register(CustomTaskConfig)(build_custom_task)

__all__ = ["CustomTaskConfig", "build_custom_task", "load_factory", "resolve_factory"]
