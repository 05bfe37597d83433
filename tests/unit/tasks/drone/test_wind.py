"""Harder test flights: steady wind and gusts move the drone, farther test starts, and their validation."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from edgekd.tasks.drone import closed_loop, sim
from edgekd.tasks.drone.config import ClosedLoopConfig
from edgekd.tasks.drone.wind import Wind

from .conftest import tiny_config


def _hover(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [np.zeros((len(feeds["image"]), 3), np.float32)]


def _fly(**closed: float) -> closed_loop.Rollout:
    cfg = tiny_config(closed_loop={"timeout_s": 2.0, **closed}, dynamics={"noise": 0.0})
    bank = sim.make_bank(cfg.scene, 0, closed_loop.STREAM["val"])
    return closed_loop.rollout(cfg, bank, closed_loop.make_episodes(cfg, bank, "val", 0), _hover, seed=0)


def test_steady_wind_blows_a_hovering_drone_downwind_at_its_speed() -> None:
    still, windy = _fly(), _fly(wind_mps=0.3)
    np.testing.assert_allclose(still.poses[-1], still.poses[0], atol=1e-12)  # no wind, no noise: it stays
    drift = np.linalg.norm(windy.poses[-1, :, :2] - windy.poses[0, :, :2], axis=-1)
    np.testing.assert_allclose(drift, 0.3 * 2.0, rtol=1e-9)  # 20 steps of 0.1 s at 0.3 m/s, any direction
    assert len({round(float(a), 6) for a in np.arctan2(*(windy.poses[-1, :, :2] - windy.poses[0, :, :2]).T)}) > 1


def test_no_wind_leaves_every_flight_as_it_was() -> None:
    a, b = _fly(), _fly(wind_mps=0.0, gust_mps=0.0)
    np.testing.assert_array_equal(a.poses, b.poses)
    assert not Wind(ClosedLoopConfig(), 3, 0.1, 0).active


def test_gusts_have_the_asked_std_and_correlation_time() -> None:
    w = Wind(ClosedLoopConfig(gust_mps=0.2, gust_tau_s=1.0), 4000, 0.1, seed=3)
    a = np.stack([w() for _ in range(50)])  # [T, N, 2]
    assert np.std(a) == pytest.approx(0.2, rel=0.03)
    lag1 = np.mean(a[1:] * a[:-1]) / np.mean(a * a)
    assert lag1 == pytest.approx(np.exp(-0.1), abs=0.02)


def test_wind_the_drone_cannot_beat_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"wind_mps \+ 3 \* gust_mps = 1.1 m/s reaches dynamics.v_max=1"):
        tiny_config(closed_loop={"wind_mps": 0.5, "gust_mps": 0.2})
    with pytest.raises(ValidationError, match="test_start_radius_m"):
        ClosedLoopConfig(test_start_radius_m=0.0)


def test_farther_test_starts_apply_to_the_test_split_only() -> None:
    near = tiny_config(closed_loop={"random_starts_test": 200, "random_starts_val": 200})
    far = tiny_config(closed_loop={"random_starts_test": 200, "random_starts_val": 200, "test_start_radius_m": 1.9})
    bank = sim.make_bank(near.scene, 0, closed_loop.STREAM["test"])
    r_near, r_far = (np.linalg.norm(closed_loop.make_episodes(c, bank, "test", 0).starts[8:, :2], axis=-1)
                     for c in (near, far))
    assert r_near.max() <= 1.4 < r_far.max() <= 1.9
    v_near, v_far = (closed_loop.make_episodes(c, bank, "val", 0).starts for c in (near, far))
    np.testing.assert_array_equal(v_near, v_far)
