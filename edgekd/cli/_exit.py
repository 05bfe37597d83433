"""The exit-code contract of the CLI: every exception that reaches ``edgekd.cli.main`` becomes one code.

- ``EdgekdError``: its own ``exit_code`` (2 bad input/environment, 1 judged FAIL, 3 inconclusive, 4 invalid);
- typer usage errors (unknown command or option, missing argument, bad value): 2, one line;
- an OSError the user or the machine causes (disk full, permission, read-only, not a directory, file
  exists...): 2, naming the path and the fix;
- KeyboardInterrupt / abort: 130;
- anything else is a bug in edgekd: ``EXIT_INTERNAL`` (70) with a one-line summary; the traceback only with
  ``--debug`` or ``EDGEKD_DEBUG=1``.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import traceback

import typer

from edgekd.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EdgekdError

# What the user (or the machine they run on) controls, with the fix to print.
_OS_FIXES: dict[int, str] = {
    errno.ENOSPC: "free disk space or write somewhere else (--out)",
    errno.EDQUOT: "free space in your quota or write somewhere else (--out)",
    errno.EACCES: "check the path's permissions or write somewhere else (--out)",
    errno.EPERM: "check the path's permissions/attributes (immutable?) or write somewhere else (--out)",
    errno.EROFS: "the file system is read-only: write somewhere else (--out)",
    errno.ENOTDIR: "a parent of the path is a file, not a folder: choose another path",
    errno.EISDIR: "the path is a folder: give a file path",
    errno.EEXIST: "the path exists and is not what edgekd expects (e.g. a file where a folder goes): "
                  "remove it or choose another path",
    errno.ENOENT: "check the path (a folder on it may not exist, or /proc and /sys do not accept new files)",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.ELOOP: "the path has a symlink loop: fix the link",
    errno.EFBIG: "the file is too large for this file system: write somewhere else",
    errno.EMFILE: "too many open files: raise `ulimit -n`",
    errno.ENXIO: "the path is a device or FIFO without a reader: give a regular file",
}
# Rust-backed libraries (safetensors, tokenizers) report an errno only in the message.
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def debug_requested(flag: bool) -> bool:
    """The global ``--debug`` flag or ``EDGEKD_DEBUG=1``."""
    return flag or os.environ.get("EDGEKD_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _usage_error(exc: typer.TyperException) -> int:
    """One line for a parser error, with where to read the usage."""
    ctx = getattr(exc, "ctx", None)
    where = getattr(ctx, "command_path", None) or "edgekd"
    msg = " ".join(exc.format_message().split())
    _say(f"usage error: {msg} (see `{where} -h`)")
    code = int(getattr(exc, "exit_code", EXIT_BAD_INPUT) or EXIT_BAD_INPUT)
    # A plain ClickException exits 1 in click, which edgekd keeps for a judged FAIL.
    return EXIT_BAD_INPUT if code == 1 else code


def _os_errno(exc: BaseException) -> int | None:
    if isinstance(exc, OSError) and exc.errno in _OS_FIXES:
        return exc.errno
    m = _RUST_OS_ERROR.search(str(exc))
    if m and int(m.group(1)) in _OS_FIXES:
        return int(m.group(1))
    return None


def _os_error(exc: BaseException, code: int) -> int:
    path = getattr(exc, "filename", None)
    path2 = getattr(exc, "filename2", None)
    where = f" {str(path)!r}" if path is not None else ""
    where += f" -> {str(path2)!r}" if path2 is not None else ""
    _say(f"error: {os.strerror(code)}{where}\n  fix: {_OS_FIXES[code]}")
    return EXIT_BAD_INPUT


def _no_args_help(exc: typer.TyperException) -> int | None:
    """``edgekd`` alone (no_args_is_help): typer printed the help already; exit 2 like any usage error."""
    return EXIT_BAD_INPUT if type(exc).__name__ == "NoArgsIsHelpError" else None


def exit_code_for(exc: BaseException, *, debug: bool = False) -> int:
    """Print what went wrong (one line and the fix) and return the exit code for ``exc``."""
    if isinstance(exc, EdgekdError):
        from edgekd.cli._common import print_error

        print_error(exc)
        return exc.exit_code
    if isinstance(exc, typer.Exit):
        return int(exc.exit_code or 0)
    if isinstance(exc, KeyboardInterrupt | typer.Abort):
        _say("interrupted")
        return EXIT_INTERRUPTED
    if isinstance(exc, typer.TyperException):
        shown = _no_args_help(exc)
        return shown if shown is not None else _usage_error(exc)
    if isinstance(exc, BrokenPipeError):
        return _broken_pipe()
    code = _os_errno(exc)
    if code is not None:
        return _os_error(exc, code)
    if isinstance(exc, MemoryError):
        _say("error: out of memory\n  fix: use smaller inputs/settings or a machine with more memory")
        return EXIT_BAD_INPUT
    return _internal(exc, debug)


def _broken_pipe() -> int:
    """``edgekd ... | head``: the reader left; stop quietly (128 + SIGPIPE, as a shell reports it)."""
    try:
        # Python flushes stdout again at exit: point it at /dev/null so that flush cannot fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


def _stdout_is_devnull() -> bool:
    try:
        out, null = os.fstat(sys.__stdout__.fileno()), os.stat(os.devnull)  # type: ignore[union-attr]
    except (OSError, ValueError, AttributeError):
        return False
    return (out.st_dev, out.st_ino) == (null.st_dev, null.st_ino)


def system_exit_code(exc: SystemExit) -> int:
    """A library's ``sys.exit``. edgekd itself never calls it (a judged FAIL is a typer.Exit or GateFailed),
    so a 1 is not a FAIL: rich exits 1 after pointing stdout at /dev/null when the reader of a pipe left."""
    code = exc.code
    if code is None or code == 0:
        return 0
    ctx = exc.__context__
    if code == 1 and (_stdout_is_devnull() or (isinstance(ctx, OSError) and ctx.errno == errno.EPIPE)):
        return 141  # typer, too, exits 1 on a broken pipe
    if isinstance(code, int) and code != 1:
        return code
    _say(f"internal error: a library exited with {code!r}; re-run with --debug or EDGEKD_DEBUG=1 and report it")
    return EXIT_INTERNAL


def _internal(exc: BaseException, debug: bool) -> int:
    """A bug in edgekd: a summary line, the traceback on request."""
    if debug_requested(debug):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    msg = " ".join(str(exc).split())
    if len(msg) > 300:
        msg = msg[:300] + "..."
    _say(f"internal error: {type(exc).__name__}: {msg}; re-run with --debug or EDGEKD_DEBUG=1 for the "
         "traceback, and report it")
    return EXIT_INTERNAL
