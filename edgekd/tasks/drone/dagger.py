"""DAgger for the drone student (Ross, Gordon & Bagnell 2011, "A Reduction of Imitation Learning
and Structured Prediction to No-Regret Online Learning").

Behaviour cloning trains on the states the teacher visits; the student then drifts into states
the teacher never showed it. DAgger closes the gap: at iteration i the drones fly the mixed
policy ``pi_i = beta_i pi_teacher + (1 - beta_i) pi_student`` (per drone and step, the teacher's
command with probability beta_i), the analytic teacher labels every frame visited, the frames
join the aggregate dataset D <- D u D_i, and the student is retrained on D. Iteration 0 is the
behaviour-cloning data itself (beta = 1); here beta_i = beta0 ** i for i >= 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekd.config.recipe import TrainConfig
from edgekd.errors import ConfigError
from edgekd.tasks.base import PredictFn, torch_predict
from edgekd.tasks.drone import closed_loop, record
from edgekd.tasks.drone.task import DroneFrames, DroneTask
from edgekd.tasks.drone.teacher import IBVSTeacher


@dataclass
class DaggerResult:
    student: nn.Module
    frames: record.FrameSet  # the aggregate dataset D
    history: list[dict[str, Any]] = field(default_factory=list)


def mixed_policy(student: PredictFn, teacher: IBVSTeacher, beta: float, rng: np.random.Generator) -> PredictFn:
    """Per drone and step: the teacher's command with probability ``beta``, else the student's."""

    def predict(feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        s = np.asarray(student(feeds)[0], dtype=np.float64)
        if beta <= 0:
            return [s]
        t = teacher(torch.from_numpy(np.ascontiguousarray(feeds["image"]))).numpy().astype(np.float64)
        pick = rng.random(len(s)) < beta
        return [np.where(pick[:, None], t, s)]

    return predict


def run_dagger(task: DroneTask, student: nn.Module, base: record.FrameSet, *, iterations: int, episodes: int,
               train_cfg: TrainConfig, beta0: float = 0.5, seed: int = 0, progress: bool = False,
               val_fn: Callable[[nn.Module], float] | None = None) -> DaggerResult:
    """``iterations`` rounds of: fly ``episodes`` drones with the mixed policy, label with the
    teacher, aggregate with ``base`` (the behaviour-cloning frames), retrain ``student`` (warm
    start) on everything for ``train_cfg.epochs`` epochs with the task loss on teacher labels."""
    from edgekd.distill.loop import fit

    if iterations < 1:
        raise ConfigError(f"dagger iterations={iterations}: must be >= 1", hint="pass iterations=1 or more")
    if not 0 <= beta0 <= 1:
        raise ConfigError(f"dagger beta0={beta0}: must lie in [0, 1]", hint="0 = student only, 1 = teacher only")
    cfg = task.config
    teacher = task.build_teacher()
    bank = task.bank("train")
    frames = base
    history: list[dict[str, Any]] = []
    spec = task.io_spec()
    for i in range(1, iterations + 1):
        rng = np.random.default_rng([seed, closed_loop.STREAM["train"], 31_337, i])
        beta = beta0 ** i
        starts, ids = record.training_starts(cfg, bank, episodes, rng)
        policy = mixed_policy(torch_predict(student, spec), teacher, beta, rng)
        new = record.collect(cfg, bank, starts, ids, teacher, steps=cfg.episode_steps, rng=rng, actor=policy,
                             exploration=0.0)
        frames = record.FrameSet.concat([frames, new])
        ds = DroneFrames(frames, frames.commands, np.ones(len(frames)), cfg.salt_pepper if cfg.augment else None)
        res = fit(student, train_set=ds, input_names=spec.input_names, cfg=train_cfg, task_loss=task.task_loss,
                  val_fn=val_fn, lower_is_better=False, seed=seed + i, progress=progress, desc=f"dagger {i}")
        student = res.student
        history.append({"iteration": i, "beta": beta, "new_frames": len(new), "frames": len(frames),
                        "best_val": res.best_metric, "seconds": round(res.seconds, 1)})
    return DaggerResult(student, frames, history)
