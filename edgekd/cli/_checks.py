"""Checks of command-line values made before any work starts, each error naming the flag, the value,
what is allowed and the fix (exit 2 through :class:`~edgekd.errors.ConfigError`).

Output paths are checked up front (writable, not a folder where a file goes, not one of the command's
inputs, not a run folder whose manifest would then lie), so a long measurement never ends in a failed write.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from edgekd.errors import ConfigError


def finite(flag: str, value: float | None, *, minimum: float | None = None, above: float | None = None,
           example: str | None = None) -> None:
    """``value`` (when given) is a finite number, >= ``minimum`` / > ``above``."""
    if value is None:
        return
    hint = f"e.g. {flag} {example}" if example else None
    if not math.isfinite(value):
        raise ConfigError(f"{flag} {value}: must be a finite number", hint=hint)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{flag} {value:g}: must be >= {minimum:g}", hint=hint)
    if above is not None and value <= above:
        raise ConfigError(f"{flag} {value:g}: must be > {above:g}", hint=hint)


def at_least(flag: str, value: int | None, minimum: int, *, example: str | None = None) -> None:
    """An integer flag (when given) is >= ``minimum``."""
    if value is not None and value < minimum:
        raise ConfigError(f"{flag} {value}: must be >= {minimum}",
                          hint=f"e.g. {flag} {example}" if example else None)


def one_of(flag: str, value: str | None, allowed: Sequence[str]) -> None:
    """A choice flag (when given) is one of ``allowed``; never silently ignored."""
    if value is not None and value not in allowed:
        from edgekd.errors import suggest

        near = suggest(value, allowed)
        raise ConfigError(f"{flag} {value!r}: allowed {', '.join(allowed)}"
                          + (f". Did you mean {near!r}?" if near else ""), hint=f"e.g. {flag} {allowed[0]}")


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        return False
    return a.resolve() == b.resolve()


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _writable(flag: str, path: Path) -> None:
    """Can a file be created where ``path`` goes? Checked by creating (and removing) one there."""
    anc = _nearest_existing((path / "x" if path.is_dir() else path).parent)
    if not anc.is_dir():
        raise ConfigError(f"{flag} {str(path)!r}: {str(anc)!r} is a file, not a folder",
                          hint=f"choose another {flag} path")
    try:
        fd, probe = tempfile.mkstemp(prefix=".edgekd-write-check-", dir=anc)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{flag} {str(path)!r}: cannot write in {str(anc)!r} ({exc.strerror})",
                          hint=f"choose a writable {flag} path (check permissions, free space, read-only or "
                          "special file systems such as /proc)") from None


def _in_run_folder(path: Path) -> Path | None:
    """The edgekd run folder (it holds manifest.json) that ``path`` is or lies directly in, if any."""
    for d in (path, path.parent):
        if d.is_dir() and (d / "manifest.json").is_file():
            return d
    return None


def out_file(flag: str, path: Path, *, inputs: Iterable[Path | None] = (), run_folders: bool = True) -> None:
    """``path`` is a file edgekd may (over)write: not a folder, not an input, writable."""
    if path.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} is a folder; a file path is expected",
                          hint=f"e.g. {flag} {path / 'out.json'}")
    if run_folders:
        _not_a_run_folder(flag, path)
    _not_an_input(flag, path, inputs)
    _writable(flag, path)


def out_dir(flag: str, path: Path, *, inputs: Iterable[Path | None] = (), run_folders: bool = True) -> None:
    """``path`` is a folder edgekd creates or writes into: not an existing file, not an input, writable."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} is an existing file; a folder is expected",
                          hint=f"choose a folder path, e.g. {flag} {path.with_suffix('')}_out")
    if run_folders:
        _not_a_run_folder(flag, path)
    _not_an_input(flag, path, inputs)
    _writable(flag, path)


def _not_an_input(flag: str, path: Path, inputs: Iterable[Path | None]) -> None:
    for inp in inputs:
        if inp is not None and _same(path, Path(inp)):
            raise ConfigError(f"{flag} {str(path)!r} is the input {str(inp)!r}: writing it would destroy the "
                              "input (and compare the result with itself)",
                              hint=f"write the result elsewhere, e.g. {flag} {_sibling(Path(inp))}")


def _not_a_run_folder(flag: str, path: Path) -> None:
    run = _in_run_folder(path)
    if run is not None:
        raise ConfigError(f"{flag} {str(path)!r} writes into the edgekd run folder {str(run)!r}: its manifest.json "
                          "and profiles would no longer describe its files",
                          hint=f"write outside the run, e.g. {flag} {run.parent / (run.name + '-export')}")


def _sibling(p: Path) -> Path:
    return p.with_name(p.stem + "_out" + p.suffix) if p.suffix else p.with_name(p.name + "_out")


def in_dir(flag: str, path: Path | None, *, what: str = "folder") -> None:
    """An input folder exists and is a folder."""
    if path is None:
        return
    if not path.exists():
        raise ConfigError(f"{flag} {str(path)!r}: no such folder", hint="check the path")
    if not path.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} is not a {what}", hint="give the path of a folder")


def in_file(flag: str, path: Path | None, *, what: str = "file") -> None:
    """An input file exists and is a regular file."""
    if path is None:
        return
    if not path.exists():
        raise ConfigError(f"{flag} {str(path)!r}: no such file", hint="check the path")
    if not path.is_file():
        raise ConfigError(f"{flag} {str(path)!r} is not a {what}", hint="give the path of a file")
