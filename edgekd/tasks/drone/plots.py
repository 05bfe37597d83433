"""Trajectory plots for the report: each controller's flights seen from above, in the target's
frame (target front pointing up), green = success, red = timeout."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from edgekd.fileio import atomic_path
from edgekd.tasks.drone import sim
from edgekd.tasks.drone.closed_loop import Rollout
from edgekd.tasks.drone.config import DroneTaskConfig


def _in_target_frame(poses: np.ndarray, target_yaw: np.ndarray) -> np.ndarray:
    """World (x, y) [T, N, 2] -> target frame rotated so the target's front is +y (up)."""
    a = math.pi / 2 - target_yaw  # rotate the front direction onto +y
    c, s = np.cos(a)[None], np.sin(a)[None]
    x, y = poses[..., 0], poses[..., 1]
    return np.stack([c * x - s * y, s * x + c * y], -1)


def plot_trajectories(path: str | Path, cfg: DroneTaskConfig, bank: sim.SceneBank, scene_ids: np.ndarray,
                      rollouts: Mapping[str, Rollout]) -> Path:
    """One panel per controller; writes a PNG atomically and returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rollouts)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.8), squeeze=False)
    ty = bank.target_yaw[np.asarray(scene_ids)]
    rect = sim.target_corners_world(cfg.scene.target_length_m, cfg.scene.target_width_m, math.pi / 2)
    lim = 1.2 * cfg.closed_loop.start_radius_m + 0.6
    for ax, (name, r) in zip(axes[0], rollouts.items(), strict=True):
        closed = np.vstack([rect, rect[:1]])
        ax.fill(closed[:, 0], closed[:, 1], color="#d33", alpha=0.35, lw=0)
        ax.plot(rect[:2, 0], rect[:2, 1], color="#eb0", lw=3)  # the front edge
        xy = _in_target_frame(r.poses, ty)
        for i in range(xy.shape[1]):
            col = "#2a2" if r.success[i] else "#c22"
            ax.plot(xy[:, i, 0], xy[:, i, 1], color=col, lw=1)
            ax.plot(xy[0, i, 0], xy[0, i, 1], "o", color=col, ms=3)
            heading = r.poses[0, i, 2] - ty[i] + math.pi / 2
            ax.arrow(xy[0, i, 0], xy[0, i, 1], 0.25 * math.cos(heading), 0.25 * math.sin(heading),
                     head_width=0.06, color=col, lw=0.6)
        ax.plot(0, 0, "k+", ms=8)
        ax.set_title(f"{name}: {100 * float(np.mean(r.success)):.0f}% success", fontsize=9)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out
