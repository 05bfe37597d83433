"""Wind on closed-loop flights: a steady wind (a random direction per flight, ``closed_loop.wind_mps``)
plus gusts (an Ornstein-Uhlenbeck process per world axis with std ``gust_mps`` and correlation time
``gust_tau_s``). It moves the drone in the world frame on top of its own velocity, so a controller
holds position only by leaning against it: a proportional controller such as IBVS keeps a steady-state
error that grows with the wind, and an imprecise student drifts out of the success tolerance.

It draws from its own random stream, so flights without wind are the same as before it existed, and
every controller meets the same wind on the same flight."""

from __future__ import annotations

import math

import numpy as np

from edgekd.tasks.drone.config import ClosedLoopConfig


class Wind:
    """World-frame wind velocities [N, 2] (m/s) for ``n`` flights, advanced by ``dt`` per call."""

    def __init__(self, cfg: ClosedLoopConfig, n: int, dt: float, seed: int) -> None:
        self.rng = np.random.default_rng([seed, 7_919])
        angle = self.rng.uniform(-math.pi, math.pi, n)
        self.steady = cfg.wind_mps * np.stack([np.cos(angle), np.sin(angle)], -1)
        self.decay = math.exp(-dt / cfg.gust_tau_s)
        # the stationary std of a(t+1) = d a(t) + s e is s / sqrt(1 - d^2): start in that distribution
        self.step_std = cfg.gust_mps * math.sqrt(1.0 - self.decay ** 2)
        self.gust = cfg.gust_mps * self.rng.normal(size=(n, 2))
        self.active = cfg.wind_mps > 0 or cfg.gust_mps > 0

    def __call__(self) -> np.ndarray:
        """The wind during the next control period."""
        self.gust = self.decay * self.gust + self.step_std * self.rng.normal(size=self.gust.shape)
        return self.steady + self.gust
