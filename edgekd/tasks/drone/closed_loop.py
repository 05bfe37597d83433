"""Closed-loop evaluation: fly every start pose with a controller given as a numpy PredictFn
(``{"image": [B,3,H,W] float32} -> [commands [B,3]]``), so PyTorch students, ONNX/INT8 artifacts
and the analytic controllers are judged by the same code.

Per episode (all episodes of a split fly at once, one batched predict per control step; every
episode flies the full ``timeout_s``, so the figures after success measure the steady state):

- success: the mean corner error (pixels, ground-truth projection of the target's corners vs
  the desired corners s*) stays below ``success_px`` (scaled to the render width) for ``hold_s``
  at some point of the flight; else the episode is a failure (timeout).
- time to success: when that hold completed; path length: metres flown (ground plane) until
  then, or over the whole flight for a failure.
- final error: the mean corner error at the end of the flight (steady-state precision).
- disturbances: ``closed_loop.wind_mps`` / ``gust_mps`` blow every flight off its course
  (:mod:`edgekd.tasks.drone.wind`); ``test_start_radius_m`` starts the test split's random flights farther.
- IoU: overlap of the target's image quadrilateral with the desired one, rasterised on a 2x
  supersampled grid spanning 1.5x the image, averaged over the last ``iou_window_s``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgekd.errors import ConfigError
from edgekd.tasks.base import PredictFn
from edgekd.tasks.drone import sim
from edgekd.tasks.drone.config import DroneTaskConfig
from edgekd.tasks.drone.wind import Wind

# Distinct random streams per split: scenes and start poses never overlap between them.
STREAM = {"train": 11, "val": 23, "test": 37}


@dataclass
class Episodes:
    starts: np.ndarray  # [N, 3]
    scene_ids: np.ndarray  # [N]
    names: list[str]


@dataclass
class Rollout:
    poses: np.ndarray  # [T+1, N, 3]
    errors_px: np.ndarray  # [T+1, N] mean corner error, pixels
    ious: np.ndarray  # [T+1, N]
    end_step: np.ndarray  # [N] step at which the success hold completed (T for failures)
    success: np.ndarray  # [N] bool
    dt: float
    names: list[str] = field(default_factory=list)


def make_episodes(cfg: DroneTaskConfig, bank: sim.SceneBank, split: str, seed: int) -> Episodes:
    """'test': the paper's 8 start poses plus ``random_starts_test`` random ones; 'val': random only."""
    cl = cfg.closed_loop
    rng = np.random.default_rng([seed, STREAM.get(split, 99), 4_243])
    starts, ids, names = [], [], []
    if split == "test":
        pid = np.arange(len(sim.PAPER_STARTS)) % bank.k
        starts.append(sim.paper_starts(bank.target_yaw[pid], 0.85 * cl.start_radius_m))
        ids.append(pid)
        names += [f"paper:{n}" for n, _, _ in sim.PAPER_STARTS]
        n_rand = cl.random_starts_test
    elif split == "val":
        n_rand = cl.random_starts_val
    else:
        raise ConfigError(f"closed-loop split {split!r}: allowed are 'val' and 'test'")
    if n_rand:
        rid = rng.integers(0, bank.k, n_rand)
        radius = cl.test_start_radius_m if split == "test" and cl.test_start_radius_m else cl.start_radius_m
        starts.append(sim.random_starts(rng, bank.target_yaw[rid], radius, cl.start_yaw_deg))
        ids.append(rid)
        names += [f"random:{i}" for i in range(n_rand)]
    return Episodes(np.concatenate(starts), np.concatenate(ids), names)


def corner_error_px(cfg: DroneTaskConfig, cam: sim.Camera, corners_n: np.ndarray) -> np.ndarray:
    """Mean pixel distance [N] between corners [N, 4, 2] (normalised) and s*."""
    d = (corners_n - sim.desired_features(cfg)[None]) * cam.f
    return np.linalg.norm(d, axis=-1).mean(-1)


def _inside_convex(quad: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """[N, P] bool: points [P, 2] inside convex quads [N, 4, 2] (either winding)."""
    a = quad[:, :, None, :]  # [N, 4, 1, 2]
    b = np.roll(quad, -1, axis=1)[:, :, None, :]
    p = pts[None, None]
    cross = (b[..., 0] - a[..., 0]) * (p[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (p[..., 0] - a[..., 0])
    return np.all(cross >= 0, axis=1) | np.all(cross <= 0, axis=1)


class QuadIoU:
    """Rasterised IoU of quads with the desired quad, on a fixed grid (normalised coordinates)."""

    def __init__(self, cfg: DroneTaskConfig, cam: sim.Camera) -> None:
        half = 1.5 * (cam.size / 2) / cam.f
        n = 3 * cam.size  # 2 samples per pixel over 1.5x the image
        g = (np.arange(n) + 0.5) / n * 2 * half - half
        gx, gy = np.meshgrid(g, g)
        self.pts = np.stack([gx.ravel(), gy.ravel()], -1)
        self.desired = _inside_convex(sim.desired_features(cfg)[None], self.pts)[0]

    def __call__(self, corners_n: np.ndarray) -> np.ndarray:
        m = _inside_convex(corners_n, self.pts)
        inter = (m & self.desired[None]).sum(-1)
        union = (m | self.desired[None]).sum(-1)
        return inter / np.maximum(union, 1)


def _predict_chunked(predict: PredictFn, images: np.ndarray, batch_size: int) -> np.ndarray:
    outs = []
    for i in range(0, len(images), batch_size):
        out = np.asarray(predict({"image": images[i:i + batch_size]})[0], dtype=np.float64)
        if out.ndim != 2 or out.shape[1] != 3:
            raise ConfigError(f"drone controller output has shape {tuple(out.shape)}; expected [batch, 3] "
                              "(normalised v_x, v_y, w_z)")
        outs.append(out)
    return np.concatenate(outs)


def rollout(cfg: DroneTaskConfig, bank: sim.SceneBank, episodes: Episodes, predict: PredictFn, *,
            seed: int = 0, batch_size: int = 64) -> Rollout:
    """Fly every episode with ``predict`` for ``timeout_s``; record the first held success."""
    cam = sim.camera_from(cfg)
    dyn, cl = cfg.dynamics, cfg.closed_loop
    steps = int(math.ceil(cl.timeout_s / dyn.dt_s))
    hold = max(1, int(round(cl.hold_s / dyn.dt_s)))
    thr = cl.success_px * cfg.image_size / 96
    iou_fn = QuadIoU(cfg, cam)
    rng = np.random.default_rng([seed, 5_381])
    n = len(episodes.starts)
    state = sim.DroneState(episodes.starts.astype(np.float64).copy(), np.zeros((n, 3)))
    poses = np.zeros((steps + 1, n, 3))
    errs = np.zeros((steps + 1, n))
    ious = np.zeros((steps + 1, n))
    below = np.zeros(n, dtype=int)
    success = np.zeros(n, dtype=bool)
    success_step = np.full(n, steps)
    wind = Wind(cl, n, dyn.dt_s, seed)
    for t in range(steps + 1):
        corners = sim.true_corners(cfg, bank, state.pose, episodes.scene_ids)
        poses[t] = state.pose
        errs[t] = corner_error_px(cfg, cam, corners)
        ious[t] = iou_fn(corners)
        below = np.where(errs[t] < thr, below + 1, 0)
        hit = (below >= hold) & ~success
        success |= hit
        success_step[hit] = t
        if t == steps:
            break
        images = sim.render(bank, cam, state.pose, episodes.scene_ids, rng, dyn.pixel_noise).numpy()
        cmd = _predict_chunked(predict, images, batch_size)
        state = sim.step(state, cmd, dyn, rng)
        if wind.active:
            state.pose[:, :2] += dyn.dt_s * wind()
    return Rollout(poses, errs, ious, success_step, success, dyn.dt_s, list(episodes.names))


def summarise(r: Rollout, cfg: DroneTaskConfig) -> dict[str, Any]:
    """Success rate and the per-episode figures (means over episodes, and per episode)."""
    n = len(r.success)
    final = r.errors_px[-1]
    window = max(1, int(round(cfg.closed_loop.iou_window_s / r.dt)))
    iou_last = r.ious[-window:].mean(0)
    steps_xy = np.linalg.norm(np.diff(r.poses[..., :2], axis=0), axis=-1)  # [T, N]
    upto = np.arange(len(steps_xy))[:, None] < r.end_step[None]
    path = (steps_xy * upto).sum(0)
    time_s = r.end_step * r.dt
    succ = r.success
    return {
        "success_rate": float(succ.mean()),
        "episodes": n,
        "final_error_px": float(np.mean(final)),
        "final_error_px_median": float(np.median(final)),
        "iou_last": float(np.mean(iou_last)),
        "time_to_success_s": float(np.mean(time_s[succ])) if succ.any() else None,
        "path_length_m": float(np.mean(path)),
        "per_episode": {name: {"success": bool(succ[i]), "final_error_px": round(float(final[i]), 3),
                               "iou_last": round(float(iou_last[i]), 4), "time_s": round(float(time_s[i]), 2),
                               "path_m": round(float(path[i]), 3)} for i, name in enumerate(r.names)},
    }


def evaluate_controller(cfg: DroneTaskConfig, bank: sim.SceneBank, predict: PredictFn, split: str, seed: int,
                        batch_size: int = 64) -> tuple[dict[str, Any], Rollout]:
    episodes = make_episodes(cfg, bank, split, seed)
    r = rollout(cfg, bank, episodes, predict, seed=seed, batch_size=batch_size)
    return summarise(r, cfg), r


def table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """A plain-text side-by-side table of closed-loop summaries."""
    head = f"{'controller':<24}{'success':>9}{'final px':>10}{'IoU last':>10}{'t succ s':>10}{'path m':>9}"
    lines = [head, "-" * len(head)]
    for name, s in rows.items():
        t = s.get("time_to_success_s")
        lines.append(f"{name:<24}{100 * s['success_rate']:>8.1f}%{s['final_error_px']:>10.2f}{s['iou_last']:>10.3f}"
                     f"{(f'{t:.2f}' if t is not None else '-'):>10}{s['path_length_m']:>9.2f}")
    return "\n".join(lines)
