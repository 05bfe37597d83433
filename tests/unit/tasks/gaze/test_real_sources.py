"""task.source / task.root for gaze: each of the four loaders reached from a recipe, wearer-disjoint splits,
and a missing folder or a wrong layout refused at load (exit 2) naming the path and the expected layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from edgekd.cli import main
from edgekd.errors import ConfigError
from edgekd.tasks.gaze.config import GazeTaskConfig
from edgekd.tasks.gaze.loaders import convention as cv
from edgekd.tasks.gaze.loaders.real import LAYOUTS
from edgekd.tasks.gaze.task import GazeTask

RNG = np.random.default_rng(0)
SMALL = {"height": 16, "width": 24, "train_size": 1000, "val_size": 1000, "test_size": 1000}


def _mpiigaze(root: Path, people: int = 5, n: int = 2) -> Path:
    import scipy.io

    for pid in range(people):
        d = root / "Data" / "Normalized" / f"p{pid:02d}"
        d.mkdir(parents=True)
        img = RNG.integers(0, 255, (n, 36, 60), dtype=np.uint8)
        eye = {"image": img, "gaze": cv.to_camera_vector(RNG.uniform(-20, 20, (n, 2))), "pose": np.zeros((n, 3))}
        scipy.io.savemat(str(d / "day01.mat"), {"data": {"right": eye, "left": eye}})
    return root


def _openeds(root: Path, sequences: int = 4) -> Path:
    from PIL import Image

    base = root / "train"
    (base / "labels").mkdir(parents=True)
    for s in range(sequences):
        (base / "sequences" / f"{s:04d}").mkdir(parents=True)
        vec = cv.to_head_vector(RNG.uniform(-20, 20, (2, 2)), x_axis="right", y_axis="down")
        for f in range(2):
            Image.fromarray(RNG.integers(0, 255, (40, 64), dtype=np.uint8)).save(
                base / "sequences" / f"{s:04d}" / f"{f:03d}.png")
        (base / "labels" / f"{s:04d}.txt").write_text("".join(f"{f},{v[0]},{v[1]},{v[2]}\n" for f, v in enumerate(vec)))
    return root


def _aria(root: Path, recordings: int = 3) -> Path:
    from PIL import Image

    for r in range(recordings):
        rec = root / f"rec{r}"
        (rec / "eye_gaze").mkdir(parents=True)
        (rec / "eye_frames").mkdir()
        yaw, pitch = cv.to_aria_cpf(RNG.uniform(-20, 20, (2, 2)))
        rows = ["tracking_timestamp_us,yaw_rads_cpf,pitch_rads_cpf"] + [f"{100 + i},{yaw[i]},{pitch[i]}" for i in range(2)]
        (rec / "eye_gaze" / "general_eye_gaze.csv").write_text("\n".join(rows) + "\n")
        for i in range(2):
            Image.fromarray(RNG.integers(0, 255, (30, 40), dtype=np.uint8)).save(rec / "eye_frames" / f"{100 + i}.png")
    return root


def _ethxgaze(root: Path, subjects: int = 3) -> Path:
    h5py = pytest.importorskip("h5py", reason="ETH-XGaze files are HDF5 (the 'datasets' extra)")
    (root / "train").mkdir(parents=True)
    for s in range(subjects):
        with h5py.File(root / "train" / f"subject{s:04d}.h5", "w") as h:
            h["face_patch"] = RNG.integers(0, 255, (3, 24, 24, 3), dtype=np.uint8)
            h["face_gaze"] = cv.to_pitchyaw_rad(RNG.uniform(-20, 20, (3, 2))).astype(np.float32)
    return root


WRITERS = {"mpiigaze": _mpiigaze, "openeds2020": _openeds, "aria": _aria, "ethxgaze": _ethxgaze}


@pytest.mark.parametrize("source", sorted(WRITERS))
def test_each_source_gives_wearer_disjoint_splits(source: str, tmp_path: Path) -> None:
    root = WRITERS[source](tmp_path / source)
    task = GazeTask(GazeTaskConfig(source=source, root=root, **SMALL), seed=0)
    wearers = {}
    for split in ("train", "val", "test"):
        ds = task.dataset(split)
        item = ds[0]
        assert item["image"].shape == (1, 16, 24) and item["gaze"].shape == (2,)
        assert np.isfinite(ds.arrays.gaze).all()
        wearers[split] = set(ds.arrays.wearer.tolist())
    assert wearers["train"] and wearers["val"] and wearers["test"]
    assert not (wearers["train"] & wearers["val"]) and not (wearers["train"] & wearers["test"])
    assert not (wearers["val"] & wearers["test"])
    k0 = task.dataset("test_wearer_0").arrays.wearer
    assert len(set(k0.tolist())) == 1 and k0[0] in wearers["test"]


def test_sizes_cap_each_split_and_the_seed_deals_the_wearers(tmp_path: Path) -> None:
    root = _mpiigaze(tmp_path / "m", people=10, n=3)  # 6 samples per wearer (both eyes)
    capped = GazeTask(GazeTaskConfig(source="mpiigaze", root=root, **{**SMALL, "train_size": 8}), seed=0)
    assert len(capped.dataset("train")) == 8
    a = GazeTask(GazeTaskConfig(source="mpiigaze", root=root, **SMALL), seed=0).dataset("test").arrays.wearer
    b = GazeTask(GazeTaskConfig(source="mpiigaze", root=root, **SMALL), seed=5).dataset("test").arrays.wearer
    assert len(a) == 2 * 6 and set(a.tolist()) != set(b.tolist())  # 20% of 10 wearers, another pick per seed


def test_too_few_wearers_for_three_splits(tmp_path: Path) -> None:
    root = _mpiigaze(tmp_path / "m", people=2)
    with pytest.raises(ConfigError, match="2 wearer\\(s\\).*needs at least 3"):
        GazeTask(GazeTaskConfig(source="mpiigaze", root=root, **SMALL)).dataset("train")


@pytest.mark.parametrize("source", ["mpiigaze", "ethxgaze", "openeds2020", "aria"])
def test_missing_root_and_wrong_layout_name_path_and_layout(source: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=f"task.source='{source}' needs task.root"):
        GazeTaskConfig(source=source)
    missing = tmp_path / "absent"
    with pytest.raises(ValidationError, match="no such folder") as err:
        GazeTaskConfig(source=source, root=missing)
    assert str(missing) in str(err.value) and LAYOUTS[source] in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match="is not a .* folder") as err:
        GazeTaskConfig(source=source, root=tmp_path / "empty")
    assert LAYOUTS[source] in str(err.value)


def test_root_without_a_real_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="task.source is 'synth', which reads no folder"):
        GazeTaskConfig(root=tmp_path)


def test_cli_exits_2_on_a_wrong_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["distill-and-export", "gaze", "--out", str(tmp_path / "run"), "--set", "task.source=mpiigaze",
               "--set", f"task.root={tmp_path}"])
    assert rc == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "pNN" in err
    assert not (tmp_path / "run").exists()
