"""Where edgekd finds its shipped recipes and device files, and where it caches.

Order: the EDGEKD_RECIPES / EDGEKD_DEVICES variables, then the repository the package
was installed from (an editable install or a clone), then the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def _find(env: str, name: str) -> Path:
    if os.environ.get(env):
        return Path(os.environ[env])
    for base in (_REPO, Path.cwd()):
        if (base / name).is_dir():
            return base / name
    return _REPO / name


def recipes_dir() -> Path:
    return _find("EDGEKD_RECIPES", "recipes")


def devices_dir() -> Path:
    return _find("EDGEKD_DEVICES", "devices")


def cache_dir() -> Path:
    """Teacher checkpoints and teacher-output caches, keyed by content hashes."""
    base = os.environ.get("EDGEKD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "edgekd")
    p = Path(base)
    p.mkdir(parents=True, exist_ok=True)
    return p
