"""Tiny drone configurations: small renders, few scenes, short flights (tests stay fast)."""

from __future__ import annotations

from typing import Any

import pytest

from edgekd.tasks.drone.config import DroneTaskConfig


def tiny_config(**overrides: Any) -> DroneTaskConfig:
    base: dict[str, Any] = {
        "image_size": 48, "train_episodes": 3, "episode_steps": 6, "val_frames": 12,
        "scene": {"scenes": 2, "distractors": 3},
        "closed_loop": {"timeout_s": 8.0, "hold_s": 0.5, "random_starts_val": 3, "random_starts_test": 0},
    }
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = {**base[k], **v}
        else:
            base[k] = v
    return DroneTaskConfig(**base)


@pytest.fixture
def tiny() -> DroneTaskConfig:
    return tiny_config()
