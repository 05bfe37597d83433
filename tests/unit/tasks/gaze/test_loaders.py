"""Real-dataset loaders on tiny fixtures written in each dataset's on-disk layout, and convention round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekd.errors import ConfigError
from edgekd.tasks.gaze.loaders import convention as cv
from edgekd.tasks.gaze.loaders import load_aea, load_ethxgaze, load_mpiigaze, load_openeds2020
from edgekd.tasks.gaze.metric import angles_to_vector, angular_error_deg

RNG = np.random.default_rng(0)
ANGLES = RNG.uniform(-40, 40, (20, 2))  # edgekd (yaw, pitch) degrees


# ---------------------------------------------------------------- conventions

def test_pitchyaw_round_trip_and_formula() -> None:
    py = cv.to_pitchyaw_rad(ANGLES)
    np.testing.assert_allclose(cv.from_pitchyaw_rad(py), ANGLES, atol=1e-9)
    p, y = py[:, 0], py[:, 1]  # ETH-XGaze's pitchyaw_to_vector
    vec = np.stack([-np.cos(p) * np.sin(y), -np.sin(p), -np.cos(p) * np.cos(y)], axis=1)
    np.testing.assert_allclose(angles_to_vector(cv.from_pitchyaw_rad(py)), vec, atol=1e-12)


def test_camera_vector_round_trip_any_length() -> None:
    v = cv.to_camera_vector(ANGLES) * 3.0
    np.testing.assert_allclose(cv.from_camera_vector(v), ANGLES, atol=1e-9)


@pytest.mark.parametrize("x_axis", ["left", "right"])
@pytest.mark.parametrize("y_axis", ["up", "down"])
def test_head_vector_round_trip(x_axis: str, y_axis: str) -> None:
    v = cv.to_head_vector(ANGLES, x_axis=x_axis, y_axis=y_axis)  # type: ignore[arg-type]
    np.testing.assert_allclose(cv.from_head_vector(v, x_axis=x_axis, y_axis=y_axis), ANGLES,  # type: ignore[arg-type]
                               atol=1e-9)


def test_head_frame_directions() -> None:
    ahead = cv.from_head_vector(np.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(ahead, [0, 0], atol=1e-12)
    up = cv.from_head_vector(np.array([0.0, np.sin(0.2), np.cos(0.2)]))  # CPF: y up
    assert up[1] == pytest.approx(np.rad2deg(0.2)) and abs(up[0]) < 1e-9
    # the wearer's left is the facing camera's +x: edgekd yaw negative (positive yaw = towards camera -x)
    left = cv.from_head_vector(np.array([np.sin(0.3), 0.0, np.cos(0.3)]))
    assert left[0] == pytest.approx(-np.rad2deg(0.3)) and abs(left[1]) < 1e-9


def test_aria_cpf_round_trip_and_tan_convention() -> None:
    yaw, pitch = cv.to_aria_cpf(ANGLES)
    np.testing.assert_allclose(cv.from_aria_cpf(yaw, pitch), ANGLES, atol=1e-9)
    # pure pitch: tan-based and spherical pitch agree; pure yaw: edgekd yaw = -yaw_cpf
    np.testing.assert_allclose(cv.from_aria_cpf(np.array([0.0]), np.array([0.25])), [[0, np.rad2deg(0.25)]],
                               atol=1e-9)
    np.testing.assert_allclose(cv.from_aria_cpf(np.array([0.25]), np.array([0.0])), [[-np.rad2deg(0.25), 0]],
                               atol=1e-9)


# ---------------------------------------------------------------- MPIIGaze (.mat)

def _write_mpiigaze(root: Path) -> dict[str, np.ndarray]:
    import scipy.io

    truth = {}
    for pid, n in ((0, 3), (7, 2)):
        d = root / "MPIIGaze" / "Data" / "Normalized" / f"p{pid:02d}"
        d.mkdir(parents=True)
        ang_r, ang_l = RNG.uniform(-20, 20, (n, 2)), RNG.uniform(-20, 20, (n, 2))
        img = RNG.integers(0, 255, (n, 36, 60), dtype=np.uint8)
        truth[f"p{pid}_right"], truth[f"p{pid}_left"], truth[f"p{pid}_img"] = ang_r, ang_l, img
        data = {"right": {"image": img, "gaze": cv.to_camera_vector(ang_r), "pose": np.zeros((n, 3))},
                "left": {"image": img, "gaze": cv.to_camera_vector(ang_l), "pose": np.zeros((n, 3))}}
        scipy.io.savemat(str(d / "day01.mat"), {"data": data, "filenames": np.array(["a"] * n, dtype=object)})
    return truth


def test_mpiigaze_loads_both_eyes_with_left_mirrored(tmp_path: Path) -> None:
    truth = _write_mpiigaze(tmp_path)
    a = load_mpiigaze(tmp_path / "MPIIGaze")
    assert a.images.shape == (10, 1, 36, 60) and a.images.dtype == np.uint8
    assert a.wearer.tolist() == [0] * 6 + [7] * 4
    np.testing.assert_allclose(a.gaze[:3], truth["p0_right"], atol=1e-4)
    mirrored = truth["p0_left"] * np.array([-1.0, 1.0])  # yaw negated for the flipped left eye
    np.testing.assert_allclose(a.gaze[3:6], mirrored, atol=1e-4)
    np.testing.assert_array_equal(a.images[3, 0], truth["p0_img"][0, :, ::-1])
    r = load_mpiigaze(tmp_path / "MPIIGaze", participants=[7], eyes="right", size=(32, 48))
    assert r.images.shape == (2, 1, 32, 48)
    with pytest.raises(ConfigError, match="not a folder"):
        load_mpiigaze(tmp_path / "nowhere")


# ---------------------------------------------------------------- ETH-XGaze (HDF5)

def test_ethxgaze_loads_bgr_patches_and_pitchyaw(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    d = tmp_path / "xgaze_224" / "train"
    d.mkdir(parents=True)
    ang = RNG.uniform(-30, 30, (4, 2))
    patch = np.zeros((4, 24, 24, 3), dtype=np.uint8)
    patch[..., 0] = 200  # blue channel only (BGR order): luma 0.114 * 200
    with h5py.File(d / "subject0003.h5", "w") as h:
        h["face_patch"] = patch
        h["face_gaze"] = cv.to_pitchyaw_rad(ang).astype(np.float32)
        h["face_head_pose"] = np.zeros((4, 2), np.float32)
        h["frame_index"] = np.arange(4)
        h["cam_index"] = np.zeros(4, np.int64)
    a = load_ethxgaze(tmp_path / "xgaze_224", "train", size=(16, 24), max_per_subject=3)
    assert a.images.shape == (3, 1, 16, 24) and set(a.wearer.tolist()) == {3}
    assert int(a.images[0, 0, 5, 5]) == round(0.114 * 200)
    assert angular_error_deg(a.gaze, ang[:3]).max() < 1e-3
    t = tmp_path / "xgaze_224" / "test"
    t.mkdir()
    with h5py.File(t / "subject0100.h5", "w") as h:
        h["face_patch"] = patch
    with pytest.raises(ConfigError, match="no labels"):
        load_ethxgaze(tmp_path / "xgaze_224", "test")


def test_ethxgaze_without_h5py_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import builtins

    from edgekd.errors import DependencyMissingError

    real = builtins.__import__

    def fake(name: str, *a: object, **k: object) -> object:
        if name == "h5py":
            raise ImportError("no h5py")
        return real(name, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(DependencyMissingError) as ei:
        load_ethxgaze(tmp_path)
    assert ei.value.extra == "datasets" and "h5py" in str(ei.value)


# ---------------------------------------------------------------- OpenEDS2020 (PNG sequences + label txt)

def test_openeds2020_sequences_and_labels(tmp_path: Path) -> None:
    from PIL import Image

    base = tmp_path / "openEDS2020-GazePrediction" / "validation"
    ang = RNG.uniform(-20, 20, (5, 2))
    vec = cv.to_head_vector(ang, x_axis="right", y_axis="down")
    for s, frames in (("1001", [0, 1, 2]), ("1002", [0, 1])):
        (base / "sequences" / s).mkdir(parents=True)
        for f in frames:
            Image.fromarray(RNG.integers(0, 255, (40, 64), dtype=np.uint8)).save(base / "sequences" / s / f"{f:03d}.png")
    (base / "labels").mkdir()
    (base / "labels" / "1001.txt").write_text("".join(f"{i:03d},{v[0]:.8f},{v[1]:.8f},{v[2]:.8f}\n"
                                                      for i, v in enumerate(vec[:3])), encoding="utf-8")
    # second sequence: only frame 0 labelled (frame 1 is a hidden future frame)
    (base / "labels" / "1002.txt").write_text(f"000,{vec[3][0]},{vec[3][1]},{vec[3][2]}\n", encoding="utf-8")
    a = load_openeds2020(tmp_path / "openEDS2020-GazePrediction", "validation", size=(32, 48))
    assert a.images.shape == (4, 1, 32, 48) and a.wearer.tolist() == [0, 0, 0, 1]
    np.testing.assert_allclose(a.gaze, ang[:4], atol=1e-4)
    (base / "labels" / "1002.txt").unlink()
    with pytest.raises(ConfigError, match="no label file"):
        load_openeds2020(tmp_path / "openEDS2020-GazePrediction", "validation")


# ---------------------------------------------------------------- AEA / Aria MPS CSV

def test_aea_csv_and_frames(tmp_path: Path) -> None:
    from PIL import Image

    rec = tmp_path / "loc1_script2_seq3_rec1"
    (rec / "eye_gaze").mkdir(parents=True)
    (rec / "eye_frames").mkdir()
    ang = RNG.uniform(-25, 25, (3, 2))
    yaw, pitch = cv.to_aria_cpf(ang)
    lines = ["tracking_timestamp_us,yaw_rads_cpf,pitch_rads_cpf,depth_m,left_yaw_rads_cpf,right_yaw_rads_cpf"]
    for i in range(3):
        lines.append(f"{1000 + i},{yaw[i]:.10f},{pitch[i]:.10f},1.0,{yaw[i]:.10f},{yaw[i]:.10f}")
    (rec / "eye_gaze" / "general_eye_gaze.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for i in (0, 2):  # frame 1001 was not exported: skipped
        Image.fromarray(RNG.integers(0, 255, (64, 96), dtype=np.uint8)).save(rec / "eye_frames" / f"{1000 + i}.png")
    a = load_aea(tmp_path)
    assert a.images.shape == (2, 1, 64, 96) and a.wearer.tolist() == [0, 0]
    np.testing.assert_allclose(a.gaze, ang[[0, 2]], atol=1e-5)
    (rec / "eye_gaze" / "general_eye_gaze.csv").write_text("time,yaw\n1,2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not an Aria eye-gaze CSV"):
        load_aea(tmp_path)
