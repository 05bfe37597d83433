"""The loss library: one file per loss, each a config class plus a function.

Each module registers its config class in LOSSES with the factory that builds its
LossTerm (see edgekd/distill/terms.py). ``_load_all`` imports every module here.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from edgekd.registry import Registry

LOSSES: Registry[Any] = Registry("loss")


def _load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_load_all()
