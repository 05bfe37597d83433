"""The ``edgekd`` command line: thin typer commands, one module per command group.

Each module in this package defines ``register(app)``. ``main`` is the one place that turns an outcome into
an exit code (see :mod:`edgekd.cli._exit`): 0 success, 1 only a judged FAIL, 2 bad input or environment
(usage errors included), 3 inconclusive, 4 invalid measurement, 70 an unexpected internal error, 130
interrupted. Errors print one line (and the fix), never a traceback unless ``--debug`` or EDGEKD_DEBUG=1.

Only typer's public API is used here: recent typer vendors click (``typer.TyperException`` is the base of its
usage errors) and does not install the ``click`` package.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import sys
from typing import Annotated, Any

import typer
import typer.main

app = typer.Typer(
    name="edgekd",
    help="Distill, quantize, export and profile small models for edge devices; gate latency in CI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Set by the root callback; read by ``main`` when an unexpected error needs its traceback shown.
_state = {"debug": False}


def _show_version(value: bool) -> None:
    if value:
        from edgekd import __version__

        print(f"edgekd {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="print the version and exit", is_eager=True,
                                          callback=_show_version)] = False,
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback of an internal error (also "
                                        "EDGEKD_DEBUG=1)")] = False,
) -> None:
    """Distill, quantize, export and profile small models for edge devices; gate latency in CI."""
    _state["debug"] = _state["debug"] or debug


for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}").register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default: ``sys.argv[1:]``) and return its exit code; never raises."""
    from edgekd.cli._exit import exit_code_for, system_exit_code

    _state["debug"] = False
    try:
        # With standalone_mode=False the parser raises usage errors and returns a typer.Exit's code.
        rc = _command().main(args=argv, prog_name="edgekd", standalone_mode=False)
    except BaseException as exc:  # noqa: BLE001  (the one place every outcome becomes an exit code)
        if isinstance(exc, SystemExit):
            return system_exit_code(exc)
        return exit_code_for(exc, debug=_state["debug"])
    if rc == 130:  # typer turns Ctrl-C into Exit(130) silently
        print("interrupted", file=sys.stderr)
    return int(rc) if isinstance(rc, int) else 0


@functools.cache
def _command() -> Any:
    """The parser typer builds from ``app`` (built once: it walks every command's signature)."""
    return typer.main.get_command(app)


def _entry() -> None:  # pragma: no cover
    sys.exit(main())
