"""Helpers shared by the CLI commands: console, error printing, common options."""

from __future__ import annotations

import sys
from pathlib import Path
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
    if sys.stderr.isatty():
        from rich.markup import escape

        # The message may quote user paths/values with brackets: escape them, never parse them as markup.
        err_console.print(f"[bold red]{kind}:[/] {escape(msg)}", markup=True, highlight=False)
    else:
        print(f"{kind}: {msg}", file=sys.stderr)


def install_run_loader(*paths: Path | str | None) -> None:
    """Let the torch runtime rebuild a run folder's student (it lives in the tasks layer, above the runtime).

    Imported only when a path is a run folder or a .safetensors file: the task packages pull in torch and
    every task, which profiling an .onnx file does not need.
    """
    for p in paths:
        if p is not None and (Path(p).is_dir() or str(p).endswith(".safetensors")):
            import edgekd.tasks.run_student  # noqa: F401  (installs the loader on import)

            return
