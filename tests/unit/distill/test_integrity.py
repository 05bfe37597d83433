"""Damaged or missing training state never blocks or fools a run: a bit-flipped checkpoint is refused
naming the file and the way out; `--resume` before the first checkpoint starts from scratch; a
truncated teacher cache (outputs cache or cached teacher weights) is rebuilt."""

from __future__ import annotations

import importlib.util
import json
import logging
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.cli import main
from edgekd.distill import checkpoint as ckpt
from edgekd.distill.cache import IndexedDataset, TeacherCache
from edgekd.distill.teachers import as_teacher
from edgekd.errors import TrainingError

_HERE = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("_engine_helpers", _HERE / "_engine_helpers.py")
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)  # type: ignore[union-attr]
# the toy recipe and task of `edgekd distill`'s own tests (a 64-row regression, two tiny MLPs)
_cli_spec = importlib.util.spec_from_file_location("_cli_distill_toy", _HERE / "test_cli_distill.py")
T = sys.modules["_cli_distill_toy"] = importlib.util.module_from_spec(_cli_spec)  # pydantic resolves names there
_cli_spec.loader.exec_module(T)  # type: ignore[union-attr]
recipe = T.recipe  # the fixture


def _data_offset(path: Path) -> int:
    """Where a safetensors file's tensor bytes start (after the 8-byte length and the JSON header)."""
    (n,) = struct.unpack("<Q", path.read_bytes()[:8])
    return 8 + n


def _flip(path: Path, offset: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def _save(path: Path) -> None:
    ckpt.save(path, {"student.w": torch.arange(12, dtype=torch.float32).reshape(3, 4),
                     "rng.torch": torch.zeros(5, dtype=torch.uint8)}, {"kind": "train", "epoch": 1, "t": (1, 2)})


# ---------------------------------------------------------------- checkpoints
def test_checkpoint_round_trips_with_its_digest(tmp_path: Path) -> None:
    p = tmp_path / "last.safetensors"
    _save(p)
    tensors, meta = ckpt.load(p)
    assert len(meta["sha256"]) == 64 and meta["epoch"] == 1 and meta["t"] == [1, 2]
    assert torch.equal(tensors["student.w"], torch.arange(12, dtype=torch.float32).reshape(3, 4))


@pytest.mark.parametrize("where", ["tensor bytes", "metadata"])
def test_a_bit_flipped_checkpoint_is_refused_naming_the_file_and_the_way_out(tmp_path: Path, where: str) -> None:
    p = tmp_path / "last.safetensors"
    _save(p)
    if where == "tensor bytes":
        _flip(p, _data_offset(p) + 17, bit=3)  # inside student.w: a float changes, the file still parses
    else:
        raw = p.read_bytes()
        at = raw.index(b'\\"epoch\\": 1') + len(b'\\"epoch\\": ')
        _flip(p, at, bit=0)  # "1" -> "0": valid JSON, another epoch
    with pytest.raises(TrainingError) as exc:
        ckpt.load(p)
    msg = str(exc.value)
    assert f"checkpoint {p} is damaged" in msg and f"delete {p} and run again without --resume" in msg
    assert exc.value.exit_code == 2


def test_a_checkpoint_without_a_digest_still_loads(tmp_path: Path) -> None:
    """Checkpoints written before the digest existed load as before (unchecked)."""
    from safetensors.torch import save_file

    p = tmp_path / "old.safetensors"
    save_file({"student.w": torch.ones(2)}, str(p), metadata={ckpt.META_KEY: json.dumps(
        {"format": ckpt.FORMAT, "kind": "weights"})})
    tensors, meta = ckpt.load(p)
    assert "sha256" not in meta and torch.equal(tensors["student.w"], torch.ones(2))


def test_a_truncated_checkpoint_is_refused_with_the_way_out(tmp_path: Path) -> None:
    p = tmp_path / "last.safetensors"
    _save(p)
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(TrainingError, match="without --resume"):
        ckpt.load(p)


# ---------------------------------------------------------------- edgekd distill --resume
def test_resume_before_the_first_checkpoint_starts_from_scratch(recipe: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    (out / "train" / "student_kd").mkdir(parents=True)  # killed before the student's first checkpoint
    assert main(["distill", str(recipe), "--out", str(out), "--resume", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert f"note: --resume: no checkpoint in {out / 'train' / 'student_kd'} yet; starting the student from scratch" in text
    assert (out / "train" / "student_kd" / "last.safetensors").is_file() and (out / "student_kd.safetensors").is_file()
    assert not (out / "RUN_IN_PROGRESS").exists()


def test_resume_from_a_bit_flipped_checkpoint_is_exit_2_naming_it(recipe: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["distill", str(recipe), "--out", str(out), "--no-progress"]) == 0
    last = out / "train" / "student_kd" / "last.safetensors"
    _flip(last, _data_offset(last) + 5, bit=6)
    capsys.readouterr()
    assert main(["distill", str(recipe), "--out", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {last} is damaged" in err and "without --resume" in err and "Traceback" not in err
    # the way out it names works
    last.unlink()
    assert main(["distill", str(recipe), "--out", str(out), "--no-progress"]) == 0


# ---------------------------------------------------------------- teacher caches
def test_a_truncated_teacher_output_cache_is_rebuilt(tmp_path: Path) -> None:
    torch.manual_seed(0)
    t = as_teacher(H.TinyMLP(hidden=10))
    t.set_taps(["body.0"])
    ds = IndexedDataset(H.RandomRegression(n=40))
    c1 = TeacherCache.open_or_build(tmp_path, t, ds, ["x"], batch_size=16)
    arr = c1.folder / "out_0.npy"
    full = arr.stat().st_size
    arr.write_bytes(arr.read_bytes()[: full // 2])  # a full disk or a partial copy
    del c1
    c2 = TeacherCache.open_or_build(tmp_path, t, ds, ["x"], batch_size=16)
    assert arr.stat().st_size == full
    (o,), _ = c2.lookup(torch.tensor([39]), "cpu")
    (ref,), _ = t([ds.base.x[[39]]])
    assert torch.allclose(o, ref)
    feat = c2.folder / c2.manifest["features"][0]["file"]
    np.save(feat, np.zeros((40, 3), np.float32))  # readable, but not the recorded shape
    c3 = TeacherCache.open_or_build(tmp_path, t, ds, ["x"], batch_size=16)
    assert np.load(feat, mmap_mode="r").shape == tuple(c3.manifest["features"][0]["shape"])


def test_a_truncated_cached_teacher_is_retrained_not_fatal(recipe: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("EDGEKD_CACHE", str(tmp_path / "cache"))
    args = ["distill", str(recipe), "--no-progress", "--set", "teacher.cache=true"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "teacher: trained" in capsys.readouterr().out
    (cached,) = (tmp_path / "cache" / "teachers").glob("*.safetensors")
    good = cached.read_bytes()
    cached.write_bytes(good[: len(good) // 2])
    with caplog.at_level(logging.WARNING, logger="edgekd.pipeline.teacher_source"):
        assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert "teacher: trained" in capsys.readouterr().out
    assert any(f"teacher cache {cached} is unreadable" in r.getMessage() for r in caplog.records)
    assert cached.read_bytes() == good  # retrained from the same seed, and replaced
    assert main([*args, "--out", str(tmp_path / "c")]) == 0
    assert "teacher: cache" in capsys.readouterr().out
