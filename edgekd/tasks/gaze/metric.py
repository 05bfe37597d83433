"""Gaze angles, unit vectors and angular error: THE gaze convention of edgekd.

Gaze is (yaw, pitch) in degrees. The unit vector is in camera coordinates (x right, y down,
z forward, away from the camera; OpenCV's camera frame), the convention of MPIIGaze and
ETH-XGaze (Zhang et al.):

    g = (-cos(pitch) sin(yaw), -sin(pitch), -cos(pitch) cos(yaw))

so looking straight into the camera is (0, 0, -1); positive yaw turns the gaze towards the
camera's -x (the image's left), positive pitch turns it up (-y). The inverse is
``yaw = atan2(-g_x, -g_z)``, ``pitch = asin(-g_y)``. Dataset loaders convert into this.

Angular error between predicted and true gaze: ``acos(clip(<g_pred, g_true>, -1, 1))`` in degrees.
"""

from __future__ import annotations

import numpy as np


def angles_to_vector(yaw_pitch_deg: np.ndarray) -> np.ndarray:
    """[..., 2] (yaw, pitch) degrees -> [..., 3] unit vectors."""
    a = np.deg2rad(np.asarray(yaw_pitch_deg, dtype=np.float64))
    yaw, pitch = a[..., 0], a[..., 1]
    return np.stack([-np.cos(pitch) * np.sin(yaw), -np.sin(pitch), -np.cos(pitch) * np.cos(yaw)], axis=-1)


def vector_to_angles(vec: np.ndarray) -> np.ndarray:
    """[..., 3] vectors (any length > 0) -> [..., 2] (yaw, pitch) degrees."""
    v = np.asarray(vec, dtype=np.float64)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-12)
    yaw = np.arctan2(-v[..., 0], -v[..., 2])
    pitch = np.arcsin(np.clip(-v[..., 1], -1.0, 1.0))
    return np.rad2deg(np.stack([yaw, pitch], axis=-1))


def angular_error_deg(pred_deg: np.ndarray, true_deg: np.ndarray) -> np.ndarray:
    """Per-sample angle in degrees between gaze directions given as (yaw, pitch) degrees [..., 2]."""
    a, b = angles_to_vector(pred_deg), angles_to_vector(true_deg)
    cos = np.clip((a * b).sum(axis=-1), -1.0, 1.0)
    return np.rad2deg(np.arccos(cos))


def mean_angular_error_deg(pred_deg: np.ndarray, true_deg: np.ndarray) -> float:
    return float(angular_error_deg(pred_deg, true_deg).mean())
