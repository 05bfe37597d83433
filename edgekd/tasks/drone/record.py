"""Recording flights: frames seen along trajectories flown by an actor (the teacher for
behaviour cloning, the student for DAgger), each labelled by the analytic teacher.

Behaviour cloning from the expert's own path alone never shows the student how to recover
from its own mistakes (Ross & Bagnell 2010: the error compounds as O(T^2 eps)). Two remedies
are offered: DART-style noise on the executed command while recording (Laskey et al. 2017,
``exploration``: the expert keeps labelling the perturbed states) and DAgger
(:mod:`edgekd.tasks.drone.dagger`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from edgekd.tasks.base import PredictFn
from edgekd.tasks.drone import sim
from edgekd.tasks.drone.config import DroneTaskConfig
from edgekd.tasks.drone.teacher import IBVSTeacher


@dataclass
class FrameSet:
    images: np.ndarray  # [N, 3, H, W] uint8
    commands: np.ndarray  # [N, 3] float32: the teacher's normalised command for the frame
    episode: np.ndarray  # [N] int64
    step: np.ndarray  # [N] int64

    def __len__(self) -> int:
        return len(self.images)

    @staticmethod
    def concat(parts: list[FrameSet]) -> FrameSet:
        off = 0
        eps = []
        for p in parts:
            eps.append(p.episode + off)
            off += int(p.episode.max()) + 1 if len(p) else 0
        return FrameSet(np.concatenate([p.images for p in parts]), np.concatenate([p.commands for p in parts]),
                        np.concatenate(eps), np.concatenate([p.step for p in parts]))


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def from_uint8(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float() / 255.0


def collect(cfg: DroneTaskConfig, bank: sim.SceneBank, starts: np.ndarray, scene_ids: np.ndarray,
            teacher: IBVSTeacher, *, steps: int, rng: np.random.Generator, actor: PredictFn | None = None,
            exploration: float = 0.0) -> FrameSet:
    """Fly ``len(starts)`` drones for ``steps`` control steps. The executed command is the actor's
    (the teacher's when ``actor`` is None) plus N(0, exploration^2) noise; every frame is labelled
    with the teacher's command for that very frame (quantised to uint8 first, as stored)."""
    cam = sim.camera_from(cfg)
    n = len(starts)
    state = sim.DroneState(np.asarray(starts, dtype=np.float64).copy(), np.zeros((n, 3)))
    images, labels, episode, step = [], [], [], []
    for t in range(steps):
        frame = to_uint8(sim.render(bank, cam, state.pose, scene_ids, rng, cfg.dynamics.pixel_noise))
        label = teacher(from_uint8(frame)).numpy().astype(np.float64)
        if actor is None:
            act = label
        else:
            act = np.asarray(actor({"image": from_uint8(frame).numpy()})[0], dtype=np.float64)
        if exploration > 0:
            act = act + rng.normal(0, exploration, size=act.shape)
        images.append(frame)
        labels.append(label.astype(np.float32))
        episode.append(np.arange(n))
        step.append(np.full(n, t))
        state = sim.step(state, act, cfg.dynamics, rng)
    return FrameSet(np.concatenate(images), np.concatenate(labels), np.concatenate(episode), np.concatenate(step))


def training_starts(cfg: DroneTaskConfig, bank: sim.SceneBank, n: int, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Start poses for recorded flights: a little wider than the evaluation's (radius and yaw x1.2),
    so the data covers the states the student may drift into."""
    cl = cfg.closed_loop
    ids = rng.integers(0, bank.k, n)
    starts = sim.random_starts(rng, bank.target_yaw[ids], 1.2 * cl.start_radius_m, min(120.0, 1.2 * cl.start_yaw_deg))
    return starts, ids
