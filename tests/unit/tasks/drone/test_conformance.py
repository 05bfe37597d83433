"""The drone task passes the shared task conformance tests (tests/support/task_conformance.py), on the
tiny sizes of its recipe's smoke preset."""

from __future__ import annotations

from support import task_conformance as C

from edgekd.tasks import Task, build_task
from edgekd.tasks.recipe import load_recipe


class TestDroneConformance(C.TaskConformance):  # type: ignore[misc, name-defined]
    def make_task(self) -> Task:
        # Every frame labelled: with the recipe's 10% the two-frame batch may hold no label (loss 0, no gradient).
        recipe = load_recipe("drone", ["task.label_fraction=1.0"], preset="smoke")
        return build_task(recipe.task, recipe.seed)
