"""Closed loop: the teacher succeeds, a do-nothing controller does not, metrics are sane."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd.tasks.drone import closed_loop, sim
from edgekd.tasks.drone.config import DroneTaskConfig
from edgekd.tasks.drone.plots import plot_trajectories
from edgekd.tasks.drone.teacher import CentroidController, IBVSTeacher, controller_predict


def _zero(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [np.zeros((len(feeds["image"]), 3), np.float32)]


def test_teacher_succeeds_where_hovering_and_centroid_fail(tiny: DroneTaskConfig, tmp_path: Path) -> None:
    bank = sim.make_bank(tiny.scene, 0, closed_loop.STREAM["val"])
    eps = closed_loop.make_episodes(tiny, bank, "val", 0)
    rolls = {}
    for name, pred in (("teacher", controller_predict(IBVSTeacher(tiny))), ("hover", _zero),
                       ("centroid", controller_predict(CentroidController(tiny)))):
        rolls[name] = closed_loop.rollout(tiny, bank, eps, pred, seed=0)
    t, h = (closed_loop.summarise(rolls[k], tiny) for k in ("teacher", "hover"))
    c = closed_loop.summarise(rolls["centroid"], tiny)
    assert t["success_rate"] == 1.0 and h["success_rate"] == 0.0
    assert c["success_rate"] < 1.0  # never turns, so yawed starts cannot reach the goal
    assert t["final_error_px"] < 1.25 < h["final_error_px"]
    assert t["iou_last"] > h["iou_last"]
    assert h["path_length_m"] < 0.5 < t["path_length_m"]  # hovering only drifts with the noise
    assert t["time_to_success_s"] is not None and t["time_to_success_s"] <= tiny.closed_loop.timeout_s
    png = plot_trajectories(tmp_path / "traj.png", tiny, bank, eps.scene_ids, rolls)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_test_split_holds_the_papers_8_starts_plus_random(tiny: DroneTaskConfig) -> None:
    cfg = tiny.model_copy(update={"closed_loop": tiny.closed_loop.model_copy(update={"random_starts_test": 3})})
    bank = sim.make_bank(cfg.scene, 0, closed_loop.STREAM["test"])
    eps = closed_loop.make_episodes(cfg, bank, "test", 0)
    assert len(eps.starts) == 11 and eps.names[0] == "paper:front" and eps.names[-1] == "random:2"
    # every start sees the whole target
    cam = sim.camera_from(cfg)
    px = cam.to_pixels(sim.true_corners(cfg, bank, eps.starts, eps.scene_ids))
    assert px.min() > 0 and px.max() < cfg.image_size - 1


def test_iou_of_the_desired_box_is_one_and_shifted_is_less() -> None:
    cfg = DroneTaskConfig(image_size=48)
    iou = closed_loop.QuadIoU(cfg, sim.camera_from(cfg))
    s = sim.desired_features(cfg)
    shifted = s + np.array([s[:, 0].max(), 0.0])  # moved by half its width: IoU = 1/3
    np.testing.assert_allclose(iou(np.stack([s, shifted])), [1.0, 1 / 3], atol=0.03)
