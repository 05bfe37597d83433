"""Real-flight logs in the assumed released layout load from a tiny fixture written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgekd.errors import ConfigError
from edgekd.tasks.drone.datasets import FlightLogs


def _write_flight(root: Path, name: str, rows: list[str], n_frames: int = 3) -> None:
    frames = root / name / "frames"
    frames.mkdir(parents=True)
    for i in range(n_frames):
        arr = np.zeros((40, 60, 3), np.uint8)
        arr[..., 0] = 50 * i
        Image.fromarray(arr).save(frames / f"{i:06d}.png")
    (root / name / "commands.csv").write_text("\n".join(["timestamp,frame,vx,vy,wz", *rows]) + "\n")


def test_loads_frames_and_scaled_commands(tmp_path: Path) -> None:
    _write_flight(tmp_path, "flight_b", ["0.0,000000,0.5,0,-0.2", "0.1,000002.png,2.0,-0.25,0.1"])
    _write_flight(tmp_path, "flight_a", ["0.0,1,0.1,0.2,0.3"])
    ds = FlightLogs(tmp_path, image_size=32, scale=(1.0, 0.5, 0.5))
    assert len(ds) == 3 and ds.flights() == ["flight_a", "flight_b"]
    a = ds[0]  # flight_a, frame index 1
    assert a["image"].shape == (3, 32, 32)
    np.testing.assert_allclose(a["image"][0].numpy(), 50 / 255, atol=1e-6)
    np.testing.assert_allclose(a["command"].numpy(), [0.1, 0.4, 0.6], atol=1e-6)
    last = ds[2]  # flight_b, frame 000002.png, vx clipped from 2.0 to 1.0
    np.testing.assert_allclose(last["command"].numpy(), [1.0, -0.5, 0.2], atol=1e-6)
    np.testing.assert_allclose(last["image"][0].numpy(), 100 / 255, atol=1e-6)
    assert float(last["labelled"]) == 1.0
    assert len(FlightLogs(tmp_path, flights=["flight_b"])) == 2


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such folder"):
        FlightLogs(tmp_path / "nope")
    _write_flight(tmp_path, "f1", ["0,000009,0,0,0"])
    with pytest.raises(ConfigError, match="frame '000009' is not in"):
        FlightLogs(tmp_path)
    (tmp_path / "f1" / "commands.csv").write_text("frame,forward,vy,wz\n0,0,0,0\n")
    with pytest.raises(ConfigError, match=r"columns \['vx'\] are missing"):
        FlightLogs(tmp_path)
    assert len(FlightLogs(tmp_path, columns=("forward", "vy", "wz"))) == 1
