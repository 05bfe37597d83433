"""The gui_agent task passes the shared task conformance tests (tests/unit/tasks/conformance.py), on the
tiny sizes of its recipe's smoke preset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekd.tasks import Task, build_task
from edgekd.tasks.recipe import load_recipe


def _conformance() -> Any:
    import importlib.util
    import sys

    name = "edgekd_tests_tasks_conformance"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "conformance.py")
        mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = mod
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return sys.modules[name]


C = _conformance()


class TestGuiAgentConformance(C.TaskConformance):  # type: ignore[misc, name-defined]
    def make_task(self) -> Task:
        recipe = load_recipe("gui_agent", preset="smoke")
        return build_task(recipe.task, recipe.seed)
