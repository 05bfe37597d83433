"""Conversions from each dataset's gaze convention into edgekd's (see :mod:`edgekd.tasks.gaze.metric`).

edgekd: (yaw, pitch) in DEGREES of the unit vector ``g = (-cos p sin y, -sin p, -cos p cos y)`` in the
frame of a camera facing the wearer (x right in the image = the wearer's left, y down, z from the
camera towards the wearer); looking straight ahead (into that camera) is (0, 0, -1).

- MPIIGaze (normalized) and ETH-XGaze use exactly this vector formula (Zhang et al., CVPR 2015 /
  ECCV 2020, their ``pitchyaw_to_vector``) but store (pitch, yaw) in RADIANS; MPIIGaze stores the
  3D vector itself.
- Head-fixed frames with z pointing forward out of the face (Project Aria's Central Pupil Frame,
  CPF: x to the wearer's left, y up, z forward; OpenEDS2020 gaze vectors) map by
  ``e = (v_left, -v_up, -v_forward)``.
- Aria's yaw/pitch are NOT spherical angles: the direction is ``(tan yaw, tan pitch, 1)`` in CPF
  (projectaria_tools' ``get_eyegaze_point_at_depth``), so edgekd yaw = -yaw_cpf and edgekd pitch =
  atan(tan pitch_cpf / sqrt(1 + tan^2 yaw_cpf)).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from edgekd.tasks.gaze.metric import angles_to_vector, vector_to_angles


def from_pitchyaw_rad(pitchyaw: np.ndarray) -> np.ndarray:
    """ETH-XGaze / MPIIGaze [..., 2] (pitch, yaw) radians -> edgekd [..., 2] (yaw, pitch) degrees."""
    a = np.asarray(pitchyaw, dtype=np.float64)
    return np.rad2deg(np.stack([a[..., 1], a[..., 0]], axis=-1))


def to_pitchyaw_rad(yaw_pitch_deg: np.ndarray) -> np.ndarray:
    a = np.deg2rad(np.asarray(yaw_pitch_deg, dtype=np.float64))
    return np.stack([a[..., 1], a[..., 0]], axis=-1)


def from_camera_vector(vec: np.ndarray) -> np.ndarray:
    """MPIIGaze normalized 3D gaze vectors (camera frame, any length) -> edgekd (yaw, pitch) degrees."""
    return vector_to_angles(vec)


def to_camera_vector(yaw_pitch_deg: np.ndarray) -> np.ndarray:
    return angles_to_vector(yaw_pitch_deg)


def from_head_vector(vec: np.ndarray, *, x_axis: Literal["left", "right"] = "left",
                     y_axis: Literal["up", "down"] = "up") -> np.ndarray:
    """A gaze vector in a head-fixed frame whose z points forward out of the face -> edgekd degrees."""
    v = np.asarray(vec, dtype=np.float64)
    left = v[..., 0] if x_axis == "left" else -v[..., 0]
    up = v[..., 1] if y_axis == "up" else -v[..., 1]
    return vector_to_angles(np.stack([left, -up, -v[..., 2]], axis=-1))


def to_head_vector(yaw_pitch_deg: np.ndarray, *, x_axis: Literal["left", "right"] = "left",
                   y_axis: Literal["up", "down"] = "up") -> np.ndarray:
    e = angles_to_vector(yaw_pitch_deg)
    left, up, fwd = e[..., 0], -e[..., 1], -e[..., 2]
    return np.stack([left if x_axis == "left" else -left, up if y_axis == "up" else -up, fwd], axis=-1)


def from_aria_cpf(yaw_rad: np.ndarray, pitch_rad: np.ndarray) -> np.ndarray:
    """Project Aria eye-gaze CSV (yaw_rads_cpf, pitch_rads_cpf) -> edgekd [..., 2] degrees."""
    y, p = np.asarray(yaw_rad, dtype=np.float64), np.asarray(pitch_rad, dtype=np.float64)
    return from_head_vector(np.stack([np.tan(y), np.tan(p), np.ones_like(y)], axis=-1))


def to_aria_cpf(yaw_pitch_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = to_head_vector(yaw_pitch_deg)
    if np.any(v[..., 2] <= 0):
        raise ValueError("gaze behind the wearer has no Aria CPF yaw/pitch (z must be > 0)")
    return np.arctan(v[..., 0] / v[..., 2]), np.arctan(v[..., 1] / v[..., 2])
