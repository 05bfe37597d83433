"""The ``edgekd`` command line: thin typer commands, one module per command group.

Each module in this package defines ``register(app)``. Errors from the library are
EdgekdError subclasses; ``main`` prints their message (never a traceback) and exits
with their code: 0 pass, 1 gate failed, 2 bad input or environment, 3 inconclusive,
4 invalid measurement.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

app = typer.Typer(
    name="edgekd",
    help="Distill, quantize, export and profile small models for edge devices; gate latency in CI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}").register(app)


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    from edgekd.errors import EdgekdError

    try:
        # With standalone_mode=False click returns a typer.Exit's code instead of raising it.
        rc = app(args=argv, standalone_mode=False)
    except EdgekdError as exc:
        from edgekd.cli._common import print_error

        print_error(exc)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return 2
        raise
    return int(rc) if isinstance(rc, int) else 0


def _entry() -> None:  # pragma: no cover
    sys.exit(main())
