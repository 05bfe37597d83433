"""The gaze task passes the shared task conformance tests (tests/support/task_conformance.py), on the
tiny sizes of its recipe's smoke preset."""

from __future__ import annotations

from support import task_conformance as C

from edgekd.tasks import Task, build_task
from edgekd.tasks.recipe import load_recipe


class TestGazeConformance(C.TaskConformance):  # type: ignore[misc, name-defined]
    def make_task(self) -> Task:
        recipe = load_recipe("gaze", preset="smoke")
        return build_task(recipe.task, recipe.seed)
