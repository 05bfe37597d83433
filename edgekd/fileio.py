"""Crash-safe file writing and hashing.

Every artifact, checkpoint and report is written to a temporary file in the same
folder, flushed and fsynced, then renamed over the target: a crash leaves either the
old file or the new one, never half of one.

Temporary names: ``.NAME.XXXXXXXX.tmpSUFFIX`` for files (:func:`atomic_path`) and
``.NAME.XXXXXXXX`` for the work folders some writers use (ONNX, OpenVINO). A SIGKILL skips
the clean-up, so whoever owns a folder sweeps them with :func:`remove_temps` (a run folder
does at the start and at the end of each run, edgekd.pipeline.runfolder).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    Use for writers that insist on a path (torch.onnx.export, ov.save_model, safetensors).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; give the file the mode a plain open() would (0666 minus the umask), so reports
    # and artifacts stay readable by CI uploaders and other users as any other file would be.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        # some writers (safetensors) replace the file they are given, losing the mode set above
        os.chmod(tmp_path, 0o666 & ~umask)
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        kill_point(f"write:{target.name}")
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; rename it over ``path`` on success."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path) as fh:
        fh.write(text)


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    with atomic_open(path) as fh:
        json.dump(data, fh, indent=2, sort_keys=False, default=_json_default)
        fh.write("\n")


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# mkstemp/mkdtemp draw 8 characters from this alphabet (CPython's tempfile._RandomNameSequence).
_TEMP_NAME = re.compile(r"^\.(?:.+\.|edgekd-ov-)[a-z0-9_]{8}(?:\.tmp.*)?$")


def is_temp_name(name: str) -> bool:
    """True for the names edgekd's writers give their temporary files and work folders."""
    return bool(_TEMP_NAME.match(name))


def remove_temps(folder: str | os.PathLike[str], *, depth: int = 4) -> list[Path]:
    """Delete the temporary files and work folders a killed writer left under ``folder``; return them.

    Looks ``depth`` folder levels down (a run folder's deepest writer is train/<arm>/), never into hidden
    folders or through symlinks, so an ``--out`` pointed at a project root does not walk ``.git``. Only
    call it on a folder no other process is writing into (a run folder holds a lock for that)."""
    root = Path(folder)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for entry in sorted(root.iterdir()):
        if is_temp_name(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
        elif depth > 0 and entry.is_dir() and not entry.is_symlink() and not entry.name.startswith("."):
            removed.extend(remove_temps(entry, depth=depth - 1))
    return removed


KILL_ENV = "EDGEKD_TEST_KILL_AT"


def kill_point(point: str) -> None:
    """TEST-ONLY fault injection: SIGKILL this process when ``$EDGEKD_TEST_KILL_AT`` equals ``point``.

    Points: ``write:NAME`` (in :func:`atomic_path`, after the temporary file is complete and before it is
    renamed over NAME) and ``stage:NAME`` (at the start of a pipeline stage). The fault-injection tests
    (tests/unit/pipeline/test_runfolder*.py) use it to kill a run at a chosen place, exactly as ``kill -9``
    would; nothing else sets the variable."""
    if os.environ.get(KILL_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover - numpy is a core dependency
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable; not possible on every platform.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
