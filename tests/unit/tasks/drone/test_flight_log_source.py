"""task.source: flight_logs for the drone recipe: recorded flights train the students, the last flights are
held out; a missing folder or a wrong layout is refused at load (exit 2) naming the path and the layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from edgekd.cli import main
from edgekd.tasks.drone.config import DroneTaskConfig
from edgekd.tasks.drone.datasets import LAYOUT
from edgekd.tasks.drone.task import DroneTask


def _flight(root: Path, name: str, n: int) -> None:
    (root / name / "frames").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((20, 30, 3), 10 * i, np.uint8)).save(root / name / "frames" / f"{i:04d}.png")
    rows = [f"{i:04d},{0.1 * i},{-0.1 * i},0.5" for i in range(n)]
    (root / name / "commands.csv").write_text("\n".join(["frame,vx,vy,wz", *rows]) + "\n")


def test_flights_train_and_hold_out(tmp_path: Path) -> None:
    for name, n in (("a", 3), ("b", 2), ("c", 4)):
        _flight(tmp_path, name, n)
    cfg = DroneTaskConfig(source="flight_logs", root=tmp_path, image_size=32, augment=False,
                          logs={"scale": (1.0, 1.0, 0.5)})
    task = DroneTask(cfg)
    train, test = task.dataset("train"), task.dataset("test")
    assert len(train) == 5 and len(test) == 4 and len(task.dataset("val")) == 4  # flight c held out
    item = train[1]
    assert item["image"].shape == (3, 32, 32) and float(item["labelled"]) == 1.0
    np.testing.assert_allclose(item["command"].numpy(), [0.1, -0.1, 1.0], atol=1e-6)  # wz 0.5 / 0.5
    aug = DroneTask(cfg.model_copy(update={"augment": True})).dataset("train")
    assert aug[0]["image"].shape == (3, 32, 32) and len(aug) == 5
    assert DroneTask(cfg).io_spec().input_names == ["image"]


def test_missing_root_and_wrong_layout_name_path_and_layout(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="task.source='flight_logs' needs task.root"):
        DroneTaskConfig(source="flight_logs")
    with pytest.raises(ValidationError, match="no such folder") as err:
        DroneTaskConfig(source="flight_logs", root=tmp_path / "absent")
    assert str(tmp_path / "absent") in str(err.value) and LAYOUT in str(err.value)
    (tmp_path / "not_a_flight").mkdir()
    with pytest.raises(ValidationError, match=r"sub-folders \['not_a_flight'\] lack frames/ or commands.csv"):
        DroneTaskConfig(source="flight_logs", root=tmp_path)
    (tmp_path / "not_a_flight").rmdir()
    _flight(tmp_path, "only", 2)
    with pytest.raises(ValidationError, match="has 1 flight\\(s\\).*at least one more"):
        DroneTaskConfig(source="flight_logs", root=tmp_path)
    with pytest.raises(ValidationError, match="task.source is 'sim', which reads no folder"):
        DroneTaskConfig(root=tmp_path)


def test_cli_exits_2_on_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["distill-and-export", "drone", "--out", str(tmp_path / "run"), "--set", "task.source=flight_logs",
               "--set", f"task.root={tmp_path / 'flights'}"])
    assert rc == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "flights") in err and "commands.csv" in err
