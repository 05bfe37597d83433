"""Helpers shared by the CLI commands: console, error printing, common options."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=False, soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a recipe field: --set train.epochs=5 (repeatable)", show_default=False),
]


def print_error(exc: BaseException) -> None:
    from edgekd.errors import EdgekdError

    msg = str(exc)
    kind = type(exc).__name__ if isinstance(exc, EdgekdError) else "error"
    err_console.print(f"[bold red]{kind}:[/] {msg}", markup=True, highlight=False) if sys.stderr.isatty() \
        else print(f"{kind}: {msg}", file=sys.stderr)
