"""Run folders that never lie.

A run folder (``--out`` of ``edgekd distill-and-export`` or ``edgekd distill``) is trusted through its
``manifest.json``: every file it names exists with the SHA-256 it records. A re-run into the same folder
used to keep the previous run's manifest and report until its end, so a run killed half-way left a manifest
claiming files that were gone or different. :func:`run_folder` guards a run instead:

1. an exclusive lock on ``OUT/.edgekd.lock`` (``flock``, non-blocking): a second run into the same folder
   stops at once with exit 2 naming the first one's pid, instead of deleting files under it;
2. temporary files a killed writer left (``.NAME.XXXXXXXX...``, see edgekd.fileio) are swept;
3. a marker ``OUT/RUN_IN_PROGRESS`` (JSON: pid, start time, command) is written, then the previous run's
   claims (``manifest.json``, ``report.json``, ``report.md`` and any ``also_stale`` paths) are removed,
   all before any artifact is touched;
4. the run writes its artifacts, and its manifest last;
5. only then is the marker removed. A run that raises keeps the marker (marked ``failed``, with the error);
   a run killed keeps it as it was. Either way the temporaries are swept on the next run at the latest.

:func:`verify_run_folder` is the one check of that promise (also ``edgekd verify RUN``): a folder is valid
when it has no marker and either no manifest (it claims nothing) or a manifest whose every artifact exists
with its SHA-256 and size.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekd.errors import ConfigError, EdgekdError
from edgekd.fileio import is_temp_name, kill_point, remove_temps, sha256_file, write_json

try:  # POSIX only; elsewhere runs are not locked (documented in run_folder)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".edgekd.lock"
MARKER_NAME = "RUN_IN_PROGRESS"
MANIFEST_NAME = "manifest.json"
# The files through which a finished run speaks; removed before a new run touches anything.
CLAIMS = (MANIFEST_NAME, "report.json", "report.md")

__all__ = ["CLAIMS", "LOCK_NAME", "MARKER_NAME", "Verdict", "kill_point", "run_folder", "verify_run_folder"]


@contextlib.contextmanager
def run_folder(out_dir: Path, *, also_stale: Sequence[str] = (), enabled: bool = True,
               command: str | None = None) -> Iterator[Path]:
    """Guard one run writing into ``out_dir`` (steps in the module docstring); yields ``out_dir``.

    ``also_stale``: further paths (files or folders, relative to ``out_dir``) of the previous run to remove
    at the start, e.g. ``profile``. ``enabled=False`` (DDP ranks other than 0) does nothing: rank 0 holds
    the folder for the whole job. The body must write ``manifest.json`` last, if it writes one.
    """
    if not enabled:
        yield out_dir
        return
    _make_folder(out_dir)
    lock_fd = _lock(out_dir)
    try:
        remove_temps(out_dir)
        marker = out_dir / MARKER_NAME
        doc = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "command": command if command is not None else " ".join(sys.argv)}
        write_json(marker, doc)
        for rel in (*CLAIMS, *also_stale):  # the manifest first: it is the claim the others hang on
            _remove(out_dir / rel)
        try:
            yield out_dir
        except BaseException as exc:
            # keep the marker, saying why the run stopped; the missing manifest already says "incomplete"
            with contextlib.suppress(OSError):
                write_json(marker, {**doc, "status": "failed", "error": _one_line(exc)})
            raise
        kill_point("finish:before_marker_removed")
        marker.unlink(missing_ok=True)
    finally:
        remove_temps(out_dir)
        _unlock(lock_fd)


# ---------------------------------------------------------------- the folder and its lock
def _make_folder(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"--out {out_dir}: exists and is not a folder",
                          hint="pass a folder path (a new one is created)") from None
    except OSError as exc:
        raise ConfigError(f"--out {out_dir}: cannot create the run folder ({exc.strerror or exc})",
                          hint="pick a writable location for --out") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out_dir}: the folder is not writable", hint="pick a writable location for --out")


def _lock(out_dir: Path) -> int | None:
    """Take the folder's lock or raise (exit 2) naming the holder. The lock file is written in place, not
    through edgekd.fileio: replacing it would give later runs another inode to lock, and no lock at all."""
    if fcntl is None:  # pragma: no cover - Windows
        return None
    path = out_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(f"--out {out_dir}: cannot create the lock file {path} ({exc.strerror or exc})",
                          hint="pick a writable location for --out") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # someone holds it
        holder = _read_pid(fd)
        os.close(fd)
        who = f"pid {holder}" if holder else "a process that has not yet written its pid"
        raise EdgekdError(f"--out {out_dir} is in use by another edgekd run ({who})",
                          hint="wait for that run to finish, or pass another --out") from None
    except OSError:  # a filesystem without flock support (some network mounts): run unlocked, as before
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _unlock(fd: int | None) -> None:
    if fd is None:  # Windows, or a filesystem without flock
        return
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)  # the pid in the file names the holder only while it holds the lock
    os.close(fd)  # closing releases the flock


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def lock_held(out_dir: Path) -> bool:
    """True while a process holds ``out_dir``'s run lock (probed with a shared, non-blocking flock)."""
    path = out_dir / LOCK_NAME
    if fcntl is None or not path.is_file():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # no flock support here: nobody can hold it
        return False
    finally:
        os.close(fd)  # also drops the shared lock, if taken
    return False


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


# ---------------------------------------------------------------- the verifier
@dataclass(frozen=True)
class Verdict:
    """What :func:`verify_run_folder` found. ``state``: complete, no_manifest, in_progress, interrupted,
    failed or invalid; ``valid`` is True only for complete and no_manifest."""

    path: Path
    valid: bool
    state: str
    checked: int = 0  # artifacts whose size and SHA-256 were checked
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # no manifest, or every artifact it names matches: the folder claims nothing false (it may be incomplete)
    claims_true: bool = True

    def summary(self) -> str:
        if self.state == "complete":
            return f"VALID: {self.path}: complete, {self.checked} artifacts match {MANIFEST_NAME}"
        if self.state == "no_manifest":
            return f"VALID: {self.path}: no {MANIFEST_NAME}, so the folder claims nothing"
        return f"INVALID: {self.path}: {self.state}, {len(self.problems)} problem(s)"


def verify_run_folder(path: Path) -> Verdict:
    """Check that ``path`` does not lie: no run-in-progress marker, and no manifest or a manifest whose every
    artifact exists with its recorded size and SHA-256. Raises ConfigError if ``path`` is not a folder."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{path}: not a run folder (no such directory)", hint="pass the --out of a run")
    problems: list[str] = []
    state = "complete"
    marker = path / MARKER_NAME
    if marker.exists():
        state, line = _marker_state(path, marker)
        problems.append(line)
    notes = [f"leftover temporary {p.relative_to(path)} (swept by the next run into this folder)"
             for p in _temps(path)]
    mf = path / MANIFEST_NAME
    if not mf.exists():
        if state == "complete":
            return Verdict(path, True, "no_manifest", notes=notes)
        return Verdict(path, False, state, problems=problems, notes=notes)
    checked, bad = _check_manifest(path, mf)
    problems.extend(bad)
    if bad and state == "complete":
        state = "invalid"
    return Verdict(path, not problems, state, checked, problems, notes, claims_true=not bad)


def _marker_state(path: Path, marker: Path) -> tuple[str, str]:
    try:
        doc: dict[str, Any] = json.loads(marker.read_text(encoding="utf-8"))
        if not isinstance(doc, dict):
            doc = {}
    except (OSError, ValueError):
        doc = {}
    who = f"pid {doc.get('pid', '?')}, started {doc.get('started', '?')}"
    if lock_held(path):
        return "in_progress", f"{MARKER_NAME}: a run is writing this folder now ({who})"
    if doc.get("status") == "failed":
        return "failed", f"{MARKER_NAME}: the run ({who}) failed: {doc.get('error', '?')}; re-run it"
    return "interrupted", f"{MARKER_NAME}: the run ({who}) was interrupted before it finished; re-run it"


def _check_manifest(path: Path, mf: Path) -> tuple[int, list[str]]:
    try:
        doc = json.loads(mf.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return 0, [f"{MANIFEST_NAME}: unreadable ({exc})"]
    arts = doc.get("artifacts") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith("edgekd.manifest/") \
            or not isinstance(arts, list):
        return 0, [f"{MANIFEST_NAME}: not an edgekd manifest (no schema edgekd.manifest/N or no artifacts list)"]
    problems: list[str] = []
    root = path.resolve()
    for i, a in enumerate(arts):
        if not isinstance(a, dict) or not isinstance(a.get("path"), str) or not isinstance(a.get("sha256"), str):
            problems.append(f"{MANIFEST_NAME}: artifact #{i} has no path/sha256")
            continue
        problems.extend(_check_artifact(root, a))
    return len(arts), problems


def _check_artifact(root: Path, a: dict[str, Any]) -> list[str]:
    rel = a["path"]
    p = (root / rel).resolve()
    if not p.is_relative_to(root):
        return [f"{rel}: outside the run folder"]
    if not p.is_file():
        return [f"{rel}: claimed by {MANIFEST_NAME} but missing"]
    size = p.stat().st_size
    if isinstance(a.get("bytes"), int) and a["bytes"] != size:
        return [f"{rel}: {size} bytes, {MANIFEST_NAME} says {a['bytes']}"]
    digest = sha256_file(p)
    if digest != a["sha256"]:
        return [f"{rel}: sha256 {digest[:12]}..., {MANIFEST_NAME} says {a['sha256'][:12]}..."]
    return []


def _temps(path: Path) -> list[Path]:
    """Leftover temporaries, looked for where remove_temps sweeps (not inside hidden folders)."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(path):
        found.extend(Path(folder) / n for n in (*dirs, *files) if is_temp_name(n))
        dirs[:] = [d for d in dirs if not d.startswith(".")]
    return sorted(found)
