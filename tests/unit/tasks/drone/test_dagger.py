"""DAgger: the student flies, the teacher labels what it visits, data aggregates, training runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekd.config.recipe import TrainConfig
from edgekd.errors import ConfigError
from edgekd.tasks.drone.config import DroneTaskConfig
from edgekd.tasks.drone.dagger import mixed_policy, run_dagger
from edgekd.tasks.drone.record import from_uint8
from edgekd.tasks.drone.task import DroneTask


def test_one_iteration_aggregates_teacher_labelled_student_states(tiny: DroneTaskConfig) -> None:
    task = DroneTask(tiny)
    base = task.frames("train")
    cfg = TrainConfig(epochs=1, batch_size=8, max_steps_per_epoch=2, warmup_steps=0)
    res = run_dagger(task, task.build_student(), base, iterations=1, episodes=2, train_cfg=cfg, seed=0)
    new = len(res.frames) - len(base)
    assert new == 2 * tiny.episode_steps
    assert res.history[0]["beta"] == 0.5 and res.history[0]["frames"] == len(res.frames)
    tail = slice(len(base), len(res.frames))
    labels = task.build_teacher()(from_uint8(res.frames.images[tail])).numpy()
    np.testing.assert_allclose(res.frames.commands[tail], labels, atol=1e-6)
    assert res.frames.episode[tail].min() > base.episode.max()  # new flights get new episode ids
    assert not res.student.training
    with pytest.raises(ConfigError, match="iterations=0"):
        run_dagger(task, res.student, base, iterations=0, episodes=1, train_cfg=cfg)


def test_mixed_policy_picks_teacher_with_probability_beta(tiny: DroneTaskConfig) -> None:
    task = DroneTask(tiny)
    imgs = torch.stack([task.dataset("test")[i]["image"] for i in range(8)]).numpy()
    student = lambda feeds: [np.full((len(feeds["image"]), 3), 0.77)]  # noqa: E731
    teacher_out = task.build_teacher()(torch.from_numpy(imgs)).numpy()
    only_t = mixed_policy(student, task.build_teacher(), 1.0, np.random.default_rng(0))({"image": imgs})[0]
    only_s = mixed_policy(student, task.build_teacher(), 0.0, np.random.default_rng(0))({"image": imgs})[0]
    np.testing.assert_allclose(only_t, teacher_out, atol=1e-6)
    np.testing.assert_allclose(only_s, 0.77)
