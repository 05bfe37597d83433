"""Checks and resolution of the files a recipe's ``teacher:`` section names, done at load so a
wrong path stops the run before anything trains.

A teacher file is a path relative to the current folder, or, with ``package``, a path inside the
folder of an installed Python package (e.g. a model shipped in a wheel). The package is located
with ``importlib.util.find_spec``, which does not run the package's code.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

_FACTORY = re.compile(r"^(?P<target>.+):(?P<attr>[A-Za-z_][A-Za-z0-9_]*)$")


def package_folder(package: str, field: str) -> Path:
    """The folder of an installed top-level package, without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise FileNotFoundError(f"{field}: no installed Python package named {package!r}; install it "
                                "(pip install ...) or give a path on disk without 'package'")
    return Path(locations[0])


def resolve_teacher_file(value: str | Path, package: str | None, field: str) -> Path:
    """``value`` as an existing file (inside ``package``'s folder when given); FileNotFoundError names both."""
    path = Path(value).expanduser()
    if package is not None and not path.is_absolute():
        path = package_folder(package, field) / path
    if not path.is_file():
        where = f" inside package {package!r}" if package is not None else ""
        raise FileNotFoundError(f"{field}={str(value)!r}{where}: no such file ({path}); check the path "
                                "(relative paths are from the current folder)")
    return path


def split_factory(spec: str) -> tuple[str, str]:
    """``'pkg.mod:fn'`` or ``'file.py:fn'`` -> (module or file, function name); ValueError if malformed."""
    m = _FACTORY.match(spec.strip())
    if m is None:
        raise ValueError(f"{spec!r} is not 'package.module:function' or 'file.py:function'")
    return m.group("target"), m.group("attr")


def factory_problem(spec: str, field: str) -> list[str]:
    """What is wrong with a factory reference that can be seen without running user code."""
    try:
        target, _ = split_factory(spec)
    except ValueError as exc:
        return [f"{field}: {exc}"]
    if target.endswith(".py"):
        if not Path(target).expanduser().is_file():
            return [f"{field}={spec!r}: the file {target!r} does not exist (relative paths are from the "
                    "current folder)"]
        return []
    top = target.split(".")[0]
    try:
        found = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return [f"{field}={spec!r}: no importable Python module {top!r}; install it, add its folder to "
                "PYTHONPATH, or give a file path 'file.py:function'"]
    return []
