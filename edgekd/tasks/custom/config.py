"""The custom task's configuration: ``task: {kind: custom, factory: "my_task.py:build", args: {...}}``."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from edgekd.config.recipe import TaskConfigBase

_ATTR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def split_factory(spec: str) -> tuple[str, str, bool]:
    """``"where:attr"`` -> (where, attr, is_file). ``where`` is a file when it ends in ``.py`` or holds a
    path separator, else a dotted module name."""
    where, _, attr = spec.rpartition(":")
    is_file = where.endswith(".py") or "/" in where or "\\" in where
    return where, attr, is_file


class CustomTaskConfig(TaskConfigBase):
    """A task of your own: a factory ``build(args: dict, seed: int)`` returning an object that implements
    ``edgekd.tasks.Task`` (the generic tasks of ``edgekd.tasks.blocks`` do; ``edgekd init`` writes one)."""

    kind: Literal["custom"] = "custom"
    factory: str = Field(
        ..., description="'path/to/file.py:build' (relative to the recipe file) or 'package.module:build'")
    args: dict[str, Any] = Field(default_factory=dict, description="passed to the factory as its first argument")
    factory_sha256: str | None = Field(
        None, description="set by edgekd when it loads the recipe (SHA-256 of the factory file), so a cached "
        "teacher is retrained after the file changes; leave it out")

    @field_validator("factory")
    @classmethod
    def _factory_form(cls, v: str) -> str:
        where, attr, is_file = split_factory(v)
        if not where or not attr:
            raise ValueError(f"{v!r}: write 'file.py:function' or 'package.module:function'")
        if not _ATTR.match(attr):
            raise ValueError(f"{v!r}: {attr!r} after ':' is not a Python name")
        if not is_file and not all(_ATTR.match(p) for p in where.split(".")):
            raise ValueError(f"{v!r}: {where!r} is neither a .py file nor a dotted module name")
        return v


__all__ = ["CustomTaskConfig", "split_factory"]
