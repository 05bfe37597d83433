"""Reduced image-based visual servoing (IBVS) for a drone at fixed altitude.

Classical IBVS (Espiau, Chaumette & Rives 1992; Chaumette & Hutchinson, "Visual servo control
I", 2006) drives image features s to their desired values s* with the camera twist
``v = -lambda L^+ (s - s*)``, where L is the interaction matrix (ds/dt = L v). For a point at
depth Z with normalised coordinates (x, y) and the full camera twist,
``L = [[-1/Z, 0, x/Z, xy, -(1+x^2), y], [0, -1/Z, y/Z, 1+y^2, -xy, -x]]``.

A multirotor at fixed altitude with a level downward camera only commands (v_x, v_y, w_z) in its
body frame. With this package's frames (camera x = -body y, camera y = -body x, camera z = -body
z; see :mod:`edgekd.tasks.drone.sim`) the camera twist is (v_cx, v_cy, w_cz) = (-v_y, -v_x, -w_z),
so the 2x3 reduced interaction matrix of a point is

    d/dt [x, y] = [[0, 1/Z, -y], [1/Z, 0, x]] @ [v_x, v_y, w_z].

Four corners stack into an 8x3 matrix; the least-squares law is ``v = Lambda L^+ (s* - s)``,
with the gain Lambda switched on the error norm (NSER-IBVS uses a two-level gain: a gentler one
while far, a stronger one near the goal, where exponential decay would otherwise crawl), then
clipped to the command bounds and normalised to [-1, 1].
"""

from __future__ import annotations

import numpy as np


def interaction_matrix(xy: np.ndarray, depth: float | np.ndarray) -> np.ndarray:
    """Stacked reduced interaction matrices [..., 2P, 3] of points [..., P, 2] at depth Z
    (rows x_1, y_1, x_2, y_2, ...; columns v_x, v_y, w_z in the body frame)."""
    xy = np.asarray(xy, dtype=np.float64)
    z = np.asarray(depth, dtype=np.float64)[..., None]
    x, y = xy[..., 0], xy[..., 1]
    zero = np.zeros_like(x)
    inv = np.broadcast_to(1.0 / z, x.shape)
    row_x = np.stack([zero, inv, -y], -1)
    row_y = np.stack([inv, zero, x], -1)
    return np.stack([row_x, row_y], -2).reshape(*xy.shape[:-2], 2 * xy.shape[-2], 3)


def ibvs_velocity(s: np.ndarray, s_star: np.ndarray, depth: float, *, gain_far: float, gain_near: float,
                  switch_error: float, v_bounds: np.ndarray) -> np.ndarray:
    """Physical body velocities [..., 3] (m/s, m/s, rad/s) for features s [..., 4, 2] and targets
    s* [4, 2]: ``v = lambda(||e||) L(s)^+ (s* - s)``, then each axis clipped to +-v_bounds.

    The interaction matrix is evaluated at the current features (the classical choice; it is
    exact for the motion of the current image), with the known depth Z = altitude.
    """
    s = np.asarray(s, dtype=np.float64)
    e = (np.asarray(s_star, dtype=np.float64) - s).reshape(*s.shape[:-2], -1)  # [..., 8]
    lmat = interaction_matrix(s, depth)
    v = np.einsum("...ij,...j->...i", np.linalg.pinv(lmat), e)
    norm = np.linalg.norm(e, axis=-1, keepdims=True)
    gain = np.where(norm >= switch_error, gain_far, gain_near)
    return np.clip(gain * v, -v_bounds, v_bounds)


def normalise_command(v: np.ndarray, v_bounds: np.ndarray) -> np.ndarray:
    """Physical velocities -> commands in [-1, 1] (what the student regresses, tanh-bounded)."""
    return np.clip(np.asarray(v) / v_bounds, -1.0, 1.0)
