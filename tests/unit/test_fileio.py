import json
import os
from pathlib import Path

import pytest

from edgekd.fileio import atomic_open, atomic_path, sha256_file, write_json


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "r.json"
    write_json(target, {"x": 1})
    write_json(target, {"x": 2})
    assert json.loads(target.read_text()) == {"x": 2}
    assert os.listdir(target.parent) == ["r.json"]


def test_crash_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "r.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["r.txt"]


def test_atomic_path_for_path_writers(tmp_path: Path) -> None:
    target = tmp_path / "m.bin"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"abc")
        assert not target.exists()
    assert target.read_bytes() == b"abc"
    assert sha256_file(target) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_atomic_files_get_the_umask_mode_not_0600(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    from edgekd.fileio import write_text

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644


def test_temp_names_of_every_writer_are_recognised_and_nothing_else(tmp_path: Path) -> None:
    import tempfile

    from edgekd.fileio import is_temp_name

    with atomic_path(tmp_path / "student.int8.onnx") as tmp:
        assert is_temp_name(tmp.name)
        tmp.write_bytes(b"x")
    work = Path(tempfile.mkdtemp(prefix=".student.onnx.", dir=tmp_path))  # edgekd.export.onnx's work folder
    ov = Path(tempfile.mkdtemp(prefix=".edgekd-ov-", dir=tmp_path))  # edgekd.export.dispatch's
    assert is_temp_name(work.name) and is_temp_name(ov.name)
    for name in (".gitignore", ".edgekd.lock", "student.onnx", ".student.onnx", "RUN_IN_PROGRESS",
                 ".student.onnx.abc", "x.student.onnx.abcd1234"):
        assert not is_temp_name(name), name


def test_remove_temps_sweeps_files_and_work_folders_recursively(tmp_path: Path) -> None:
    from edgekd.fileio import remove_temps

    (tmp_path / "sub" / ".w.onnx.abcd1234").mkdir(parents=True)
    (tmp_path / "sub" / ".w.onnx.abcd1234" / "raw.onnx").write_text("x")
    (tmp_path / ".r.json.zz_9abcd.tmp.json").write_text("half")
    (tmp_path / "keep.json").write_text("{}")
    (tmp_path / ".git").mkdir()  # hidden folders are not walked
    (tmp_path / ".git" / ".x.abcd1234").write_text("not ours")
    removed = remove_temps(tmp_path)
    assert sorted(p.name for p in removed) == [".r.json.zz_9abcd.tmp.json", ".w.onnx.abcd1234"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == [".git", ".x.abcd1234", "keep.json", "sub"]
    assert remove_temps(tmp_path / "missing") == []
    deep = tmp_path / "a" / "b" / "c" / "d" / "e"
    deep.mkdir(parents=True)
    (deep / ".t.json.abcd1234.tmp.json").write_text("x")
    assert remove_temps(tmp_path) == [] and remove_temps(tmp_path, depth=5) != []


def test_kill_point_kills_only_when_asked(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    code = ("from edgekd.fileio import write_text; import sys; write_text(sys.argv[1] + '/a.txt', 'a'); "
            "write_text(sys.argv[1] + '/b.txt', 'b')")
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root, "EDGEKD_TEST_KILL_AT": "write:b.txt"}
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, timeout=60)
    assert res.returncode == -signal.SIGKILL
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0].startswith(".b.txt.") and names[1:] == ["a.txt"]  # b's temp complete, never renamed
    env["EDGEKD_TEST_KILL_AT"] = ""
    assert subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, timeout=60).returncode == 0


def test_writers_that_replace_the_temp_file_keep_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "w.bin") as tmp:
            tmp.unlink()  # as safetensors does: a fresh file with its own mode
            fd = os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
    finally:
        os.umask(old)
    assert (tmp_path / "w.bin").stat().st_mode & 0o777 == 0o644
