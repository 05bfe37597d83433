"""Recipe domains. Each subpackage registers its config class and Task factory in TASKS
when imported; ``load_all`` imports every subpackage found here.

The public surface for a task of your own: :class:`Task` (the protocol every task implements),
:class:`TaskBase` (defaults of the optional hooks), :class:`MetricSpec`, :class:`EvalResult`,
:func:`check_task` (every way an object falls short of the protocol).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from edgekd.registry import Registry
from edgekd.tasks.base import EvalResult, MetricSpec, Task, TaskBase
from edgekd.tasks.protocol_check import check_task

# config class -> factory(config, seed) -> Task
TaskFactory = Callable[[Any, int], Task]
TASKS: Registry[TaskFactory] = Registry("task")


def _load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.ispkg:
            importlib.import_module(f"{__name__}.{info.name}")


def build_task(config: Any, seed: int = 0) -> Task:
    """The Task for a validated task config."""
    return TASKS.get(config)(config, seed)


_load_all()

__all__ = ["TASKS", "EvalResult", "MetricSpec", "Task", "TaskBase", "TaskFactory", "build_task", "check_task"]
