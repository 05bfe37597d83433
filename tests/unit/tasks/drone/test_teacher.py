"""The analytic teacher: segmentation, corner order, IBVS law, robustness, bounds."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from edgekd.tasks.drone import ibvs, sim
from edgekd.tasks.drone.augment import augment
from edgekd.tasks.drone.config import DroneTaskConfig
from edgekd.tasks.drone.teacher import CentroidController, IBVSTeacher, detect, median3


def _views(cfg: DroneTaskConfig, n: int = 8, seed: int = 0) -> tuple[sim.SceneBank, np.ndarray, np.ndarray]:
    bank = sim.make_bank(cfg.scene, seed, 5)
    ids = np.arange(n) % bank.k
    return bank, sim.paper_starts(bank.target_yaw[ids], 1.2)[:n], ids


def test_median3_equals_the_sorted_median() -> None:
    x = torch.rand(2, 3, 11, 13)
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    ref = p.unfold(2, 3, 1).unfold(3, 3, 1).reshape(2, 3, 11, 13, 9).median(-1).values
    torch.testing.assert_close(median3(x), ref, atol=0, rtol=0)


def test_detected_corners_match_ground_truth_in_order() -> None:
    cfg = DroneTaskConfig(image_size=96, scene={"scenes": 4, "distractors": 6})
    bank, states, ids = _views(cfg)
    cam = sim.camera_from(cfg)
    img = sim.render(bank, cam, states, ids, np.random.default_rng(0), 0.01)
    det = detect(img)
    truth = cam.to_pixels(sim.true_corners(cfg, bank, states, ids))
    assert det.found.all()
    err = np.linalg.norm(det.corners_px - truth, axis=-1)
    assert err.max() < 1.0, f"corner error {err.max():.2f} px"  # sub-pixel at 96 px
    # the order is FL, FR, BR, BL: swapping any two would put corners ~17-39 px off


def test_teacher_at_goal_commands_nothing_and_off_goal_commands_the_right_way() -> None:
    cfg = DroneTaskConfig(image_size=96, dynamics={"pixel_noise": 0.0}, scene={"scenes": 1, "distractors": 0})
    bank = sim.make_bank(cfg.scene, 0, 5)
    cam = sim.camera_from(cfg)
    ty = float(bank.target_yaw[0])
    c, s = math.cos(ty), math.sin(ty)
    states = np.array([
        [0.0, 0.0, ty],  # at the goal
        [-0.5 * c, -0.5 * s, ty],  # 0.5 m behind the goal: must fly forward (v_x > 0)
        [0.5 * s, -0.5 * c, ty],  # 0.5 m to the goal's right: must fly left (v_y > 0)
        [0.0, 0.0, ty + 0.4],  # turned left of the target's heading: must turn right (w_z < 0)
    ])
    cmd = IBVSTeacher(cfg)(sim.render(bank, cam, states, np.zeros(4, int))).numpy()
    assert np.abs(cmd[0]).max() < 0.05
    assert cmd[1, 0] > 0.2 and abs(cmd[1, 1]) < 0.05
    assert cmd[2, 1] > 0.2 and abs(cmd[2, 0]) < 0.05
    assert cmd[3, 2] < -0.2
    assert np.abs(cmd).max() <= 1.0


def test_ibvs_law_converges_on_true_features() -> None:
    """Kinematic closed loop on exact features (no images): the error decays to ~0."""
    cfg = DroneTaskConfig()
    s_star = sim.desired_features(cfg)
    bounds = sim.bounds(cfg.dynamics)
    corners = sim.target_corners_world(cfg.scene.target_length_m, cfg.scene.target_width_m, 0.0)
    pose = np.array([[0.9, -0.7, 0.8]])
    start = np.abs(sim.project(corners, pose[0], cfg.scene.altitude_m) - s_star).max()
    for _ in range(400):
        s = sim.project(corners, pose[0], cfg.scene.altitude_m)
        v = ibvs.ibvs_velocity(s, s_star, cfg.scene.altitude_m, gain_far=0.5, gain_near=1.0, switch_error=0.15,
                               v_bounds=bounds)
        pose = pose + 0.05 * sim.body_velocity_to_state_rate(pose, v[None])
    final = np.abs(sim.project(corners, pose[0], cfg.scene.altitude_m) - s_star).max()
    assert start > 0.2 and final < 1e-6


def test_gain_switching_and_bounds() -> None:
    s_star = np.array([[-0.1, -0.2], [0.1, -0.2], [0.1, 0.2], [-0.1, 0.2]])
    common = dict(gain_far=0.5, gain_near=1.0, switch_error=0.15, v_bounds=np.array([10.0, 10.0, 10.0]))
    small = ibvs.ibvs_velocity(s_star + [0.01, 0.0], s_star, 4.0, **common)  # ||e|| = 0.02 < switch
    big = ibvs.ibvs_velocity(s_star + [0.1, 0.0], s_star, 4.0, **common)  # ||e|| = 0.2 >= switch
    # pure image shift in x: v_y = -Z * lambda * dx
    np.testing.assert_allclose(small, [0.0, -4.0 * 1.0 * 0.01, 0.0], atol=1e-9)
    np.testing.assert_allclose(big, [0.0, -4.0 * 0.5 * 0.1, 0.0], atol=1e-9)
    clipped = ibvs.ibvs_velocity(s_star + [0.5, 0.0], s_star, 4.0, **{**common, "v_bounds": np.array([0.3] * 3)})
    np.testing.assert_allclose(clipped, [0.0, -0.3, 0.0], atol=1e-9)


def test_teacher_sees_through_augmentation() -> None:
    cfg = DroneTaskConfig(image_size=96, scene={"scenes": 4})
    bank, states, ids = _views(cfg)
    img = sim.render(bank, sim.camera_from(cfg), states, ids, np.random.default_rng(1), 0.01)
    teacher = IBVSTeacher(cfg)
    g = torch.Generator().manual_seed(0)
    aug = torch.stack([augment(im, 0.01, g) for im in img])
    assert not torch.allclose(aug, img)
    np.testing.assert_allclose(teacher(aug).numpy(), teacher(img).numpy(), atol=0.03)


def test_no_target_means_hover_and_output_contract() -> None:
    cfg = DroneTaskConfig(image_size=48)
    grey = torch.full((3, 3, 48, 48), 0.4)
    out = IBVSTeacher(cfg)(grey)
    assert out.shape == (3, 3) and out.dtype == torch.float32
    assert torch.count_nonzero(out) == 0
    assert torch.count_nonzero(CentroidController(cfg)(grey)) == 0


def test_small_target_coloured_blobs_are_rejected() -> None:
    cfg = DroneTaskConfig(image_size=96, scene={"scenes": 1, "distractors": 0}, dynamics={"pixel_noise": 0.0})
    bank = sim.make_bank(cfg.scene, 0, 5)
    cam = sim.camera_from(cfg)
    state = np.array([[0.3, 0.2, float(bank.target_yaw[0]) + 0.3]])
    img = sim.render(bank, cam, state, np.zeros(1, int))
    clean = detect(img).corners_px
    img[0, :, 5:12, 5:12] = torch.tensor([0.8, 0.12, 0.1]).view(3, 1, 1)  # a red 7x7 blob
    np.testing.assert_allclose(detect(img).corners_px, clean, atol=1e-9)
