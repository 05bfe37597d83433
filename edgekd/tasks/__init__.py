"""Recipe domains. Each subpackage registers its config class and Task factory in TASKS
when imported; ``load_all`` imports every subpackage found here."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from edgekd.registry import Registry

# config class -> factory(config, seed) -> Task
TASKS: Registry[Any] = Registry("task")


def _load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.ispkg:
            importlib.import_module(f"{__name__}.{info.name}")


def build_task(config: Any, seed: int = 0) -> Any:
    """The Task for a validated task config."""
    return TASKS.get(config)(config, seed)


_load_all()
