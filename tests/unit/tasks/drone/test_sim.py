"""Simulator geometry and dynamics: the IBVS interaction matrix must match finite differences of
the simulator's own projection, so sign and frame errors cannot hide."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgekd.tasks.drone import ibvs, sim
from edgekd.tasks.drone.config import DroneTaskConfig, DynamicsConfig


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_interaction_matrix_matches_finite_differences_of_projection(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h = float(rng.uniform(2, 6))
    pts = rng.uniform(-3, 3, size=(5, 2))
    state = np.array([rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-math.pi, math.pi)])
    vel = rng.uniform(-1, 1, size=3)  # body v_x, v_y, w_z
    s0 = sim.project(pts, state, h)
    rate = sim.body_velocity_to_state_rate(state[None], vel[None])[0]
    eps = 1e-6
    fd = (sim.project(pts, state + eps * rate, h) - sim.project(pts, state - eps * rate, h)) / (2 * eps)
    predicted = ibvs.interaction_matrix(s0, h) @ vel
    np.testing.assert_allclose(predicted, fd.reshape(-1), atol=1e-6)


def test_interaction_matrix_formula_and_stacking() -> None:
    lmat = ibvs.interaction_matrix(np.array([[0.1, -0.2], [0.3, 0.4]]), 2.0)
    assert lmat.shape == (4, 3)
    np.testing.assert_allclose(lmat[0], [0.0, 0.5, 0.2])  # dx/dt = v_y/Z - y w_z
    np.testing.assert_allclose(lmat[1], [0.5, 0.0, 0.1])  # dy/dt = v_x/Z + x w_z
    np.testing.assert_allclose(lmat[3], [0.5, 0.0, 0.3])


def test_image_is_a_top_view_forward_is_up_right_is_right() -> None:
    h = 4.0
    ahead = sim.project(np.array([[1.0, 0.0]]), np.zeros(3), h)[0]  # 1 m in front of the drone
    right = sim.project(np.array([[0.0, -1.0]]), np.zeros(3), h)[0]  # 1 m to its right (y_b < 0)
    assert ahead[1] < 0 and abs(ahead[0]) < 1e-12  # up in the image
    assert right[0] > 0 and abs(right[1]) < 1e-12  # right in the image


def test_unproject_inverts_project() -> None:
    rng = np.random.default_rng(3)
    pts = rng.uniform(-2, 2, size=(7, 2))
    state = np.array([0.3, -0.4, 1.1])
    back = sim.unproject(sim.project(pts, state, 3.0), state, 3.0)
    np.testing.assert_allclose(back, pts, atol=1e-12)


def test_desired_features_are_the_centred_front_up_rectangle() -> None:
    cfg = DroneTaskConfig()
    s = sim.desired_features(cfg)
    h, L, W = cfg.scene.altitude_m, cfg.scene.target_length_m, cfg.scene.target_width_m
    np.testing.assert_allclose(s, [[-W / 2 / h, -L / 2 / h], [W / 2 / h, -L / 2 / h],
                                   [W / 2 / h, L / 2 / h], [-W / 2 / h, L / 2 / h]])


def test_first_order_lag_clipping_and_integration() -> None:
    dyn = DynamicsConfig(dt_s=0.1, lag_s=0.25, v_max=1.0, w_max_deg=45.0, noise=0.0)
    rng = np.random.default_rng(0)
    st = sim.DroneState(np.zeros((1, 3)), np.zeros((1, 3)))
    st = sim.step(st, np.array([[3.0, 0.0, 0.0]]), dyn, rng)  # clipped to 1
    alpha = 1 - math.exp(-0.1 / 0.25)
    np.testing.assert_allclose(st.vel[0], [alpha, 0, 0])
    for _ in range(60):
        st = sim.step(st, np.array([[1.0, 0.0, 0.0]]), dyn, rng)
    np.testing.assert_allclose(st.vel[0, 0], 1.0, atol=1e-6)
    # yaw by 90 deg, then a forward command moves along world +y
    st = sim.DroneState(np.array([[0.0, 0.0, math.pi / 2]]), np.array([[1.0, 0.0, 0.0]]))
    st = sim.step(st, np.array([[1.0, 0.0, 0.0]]), dyn, rng)
    np.testing.assert_allclose(st.pose[0, :2], [0.0, 0.1], atol=1e-9)


def test_render_shows_the_target_where_it_projects() -> None:
    cfg = DroneTaskConfig(image_size=64, scene={"scenes": 2, "distractors": 0})
    bank = sim.make_bank(cfg.scene, 0, 1)
    cam = sim.camera_from(cfg)
    states = np.array([[0.3, -0.2, bank.target_yaw[0] + 0.4], [-0.5, 0.1, bank.target_yaw[1] - 0.7]])
    img = sim.render(bank, cam, states, np.array([0, 1]))
    assert img.shape == (2, 3, 64, 64) and float(img.min()) >= 0 and float(img.max()) <= 1
    centre = cam.to_pixels(sim.project(np.zeros((1, 2)), states, cfg.scene.altitude_m))[:, 0]
    for i, (u, v) in enumerate(np.round(centre).astype(int)):
        r, g, b = img[i, :, v, u].tolist()
        assert r > 0.6 and g < 0.3 and b < 0.3, "the target's red body is at its projected centre"
    back = cam.to_pixels(sim.true_corners(cfg, bank, states, np.array([0, 1])))
    front_mid = back[:, :2].mean(1) * 0.85 + back[:, 2:].mean(1) * 0.15
    for i, (u, v) in enumerate(np.round(front_mid).astype(int)):
        r, g, b = img[i, :, v, u].tolist()
        assert r > 0.6 and g > 0.6 and b < 0.3, "the yellow front mark is at the projected front"
