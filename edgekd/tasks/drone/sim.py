"""A small quadrotor simulator: a downward-looking pinhole camera at fixed altitude over a
textured ground with one target rectangle (marked front) and distractors.

Frames (all right-handed):

- world: X, Y on the ground plane, Z up. The target's centre is the world origin.
- body: x_b forward, y_b left, z_b up; the drone's state is (x, y, yaw) of the body in the
  world, at a fixed height ``h`` above the ground.
- camera: looks straight down; x_c = -y_b (image right), y_c = -x_b (image down), z_c = -z_b.
  So the image is an ordinary top view: up = the drone's forward, right = its right.

A ground point with body coordinates (dx, dy, -h) has normalised image coordinates
``x = -dy / h``, ``y = -dx / h`` and pixel coordinates ``u = f x + c``, ``v = f y + c``.

Commands are body-frame velocities (v_x, v_y, w_z) normalised to [-1, 1] by the bounds
(``v_max``, ``w_max``); the drone follows them through a first-order lag, with clipping and
velocity noise. Everything is vectorised over a batch of drones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from edgekd.tasks.drone.config import DroneTaskConfig, DynamicsConfig, SceneConfig

# Target colours (RGB in [0, 1]): a red body with a yellow front mark. The ground palette
# (greens, greys, browns) and the distractor colours stay out of both threshold regions except
# for small target-coloured blobs, which connected components must reject.
TARGET_RGB = (0.80, 0.12, 0.10)
FRONT_RGB = (0.95, 0.85, 0.12)
DISTRACTOR_RGB = ((0.15, 0.25, 0.80), (0.90, 0.90, 0.88), (0.10, 0.10, 0.12), (0.55, 0.20, 0.65))


@dataclass(frozen=True)
class Camera:
    size: int  # square image side, pixels
    f: float  # focal length, pixels
    c: float  # principal point (both axes), pixels; pixel i is centred at coordinate i
    altitude: float  # metres above the ground = depth of every ground point

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        return xy * self.f + self.c

    def to_normalised(self, uv: np.ndarray) -> np.ndarray:
        return (uv - self.c) / self.f


def camera_from(cfg: DroneTaskConfig) -> Camera:
    n = cfg.image_size
    f = (n / 2) / math.tan(math.radians(cfg.scene.hfov_deg) / 2)
    return Camera(size=n, f=f, c=(n - 1) / 2, altitude=cfg.scene.altitude_m)


def rot2(yaw: np.ndarray) -> np.ndarray:
    """[..., 2, 2] rotation matrices (body -> world)."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def project(points_w: np.ndarray, state: np.ndarray, altitude: float) -> np.ndarray:
    """Normalised image coordinates [..., P, 2] of ground points [..., P, 2] seen from drone
    states [..., 3] (x, y, yaw)."""
    d = points_w - state[..., None, :2]
    c, s = np.cos(state[..., 2])[..., None], np.sin(state[..., 2])[..., None]
    dx = c * d[..., 0] + s * d[..., 1]  # R(yaw)^T d
    dy = -s * d[..., 0] + c * d[..., 1]
    return np.stack([-dy / altitude, -dx / altitude], -1)


def unproject(xy: np.ndarray, state: np.ndarray, altitude: float) -> np.ndarray:
    """Ground points [..., P, 2] behind normalised image coordinates [..., P, 2]."""
    dx, dy = -altitude * xy[..., 1], -altitude * xy[..., 0]
    c, s = np.cos(state[..., 2])[..., None], np.sin(state[..., 2])[..., None]
    return np.stack([state[..., None, 0] + c * dx - s * dy, state[..., None, 1] + s * dx + c * dy], -1)


def target_corners_world(length: float, width: float, yaw: float | np.ndarray) -> np.ndarray:
    """Corners [..., 4, 2] ordered front-left, front-right, back-right, back-left of a target
    centred at the origin whose front points along ``yaw``."""
    yaw = np.asarray(yaw, dtype=np.float64)
    f = np.stack([np.cos(yaw), np.sin(yaw)], -1)[..., None, :]
    left = np.stack([-np.sin(yaw), np.cos(yaw)], -1)[..., None, :]
    a = np.array([1.0, 1.0, -1.0, -1.0])[:, None] * (length / 2)
    b = np.array([1.0, -1.0, -1.0, 1.0])[:, None] * (width / 2)
    return a * f + b * left


def desired_features(cfg: DroneTaskConfig) -> np.ndarray:
    """s*: the corners [4, 2] (normalised) seen from right above the target, facing its front."""
    s = cfg.scene
    return project(target_corners_world(s.target_length_m, s.target_width_m, 0.0), np.zeros(3), s.altitude_m)


# ---------------------------------------------------------------- scenes
@dataclass
class SceneBank:
    """K ground textures side by side in one atlas (one grid_sample call renders any mix)."""

    atlas: torch.Tensor  # [1, 3, S, S*K] float32
    target_yaw: np.ndarray  # [K] world yaw of each scene's target front
    extent: float  # metres covered by one scene texture (centred on the target)
    texels: int  # S

    @property
    def k(self) -> int:
        return len(self.target_yaw)


def _value_noise(rng: np.random.Generator, size: int, cells: int) -> torch.Tensor:
    """Smooth noise in [0, 1]: a random cells x cells grid upsampled bicubically."""
    g = torch.from_numpy(rng.random((1, 1, cells, cells)).astype(np.float32))
    return F.interpolate(g, size=(size, size), mode="bicubic", align_corners=True)[0, 0].clamp(0, 1)


def _paint_rect(tex: np.ndarray, xs: np.ndarray, center: tuple[float, float], yaw: float,
                length: float, width: float, rgb: tuple[float, float, float]) -> None:
    """Fill the texels of a rotated rectangle (length along ``yaw``) with a colour, in place."""
    cx, cy = center
    dx, dy = xs[None, :] - cx, xs[:, None] - cy  # tex[row=Y, col=X]
    a = np.cos(yaw) * dx + np.sin(yaw) * dy
    b = -np.sin(yaw) * dx + np.cos(yaw) * dy
    inside = (np.abs(a) <= length / 2) & (np.abs(b) <= width / 2)
    tex[:, inside] = np.asarray(rgb, dtype=np.float32)[:, None]


def make_scene(cfg: SceneConfig, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """One ground texture [3, S, S] (rows = Y, cols = X) and its target's yaw."""
    s = int(round(cfg.ground_extent_m * cfg.texture_px_per_m))
    xs = (np.arange(s) + 0.5) / cfg.texture_px_per_m - cfg.ground_extent_m / 2  # texel centres
    grass = np.array([0.26, 0.45, 0.20], np.float32)
    asphalt = np.array([0.42, 0.42, 0.44], np.float32)
    dirt = np.array([0.46, 0.39, 0.30], np.float32)
    m1 = _value_noise(rng, s, 6).numpy()
    m2 = _value_noise(rng, s, 14).numpy()
    w_grass = np.clip((m1 - 0.35) * 3, 0, 1)
    w_dirt = np.clip((m2 - 0.55) * 3, 0, 1) * (1 - w_grass)
    base = (w_grass[None] * grass[:, None, None] + w_dirt[None] * dirt[:, None, None]
            + (1 - w_grass - w_dirt)[None] * asphalt[:, None, None])
    shade = 0.8 + 0.4 * _value_noise(rng, s, 30).numpy()
    grain = rng.normal(0, 0.03, size=(1, s, s)).astype(np.float32)
    tex = np.clip(base * shade[None] + grain, 0, 1).astype(np.float32)

    yaw = float(rng.uniform(-math.pi, math.pi))
    keep_out = math.hypot(cfg.target_length_m, cfg.target_width_m) / 2 + 0.9
    for i in range(cfg.distractors):
        for _ in range(50):  # rejection sampling: distractors never touch the target
            c = rng.uniform(-5.0, 5.0, size=2)
            if np.hypot(*c) > keep_out + 0.6:
                break
        if i % 3 == 2:  # a small blob in the target's own colour: only size tells it apart
            side = float(rng.uniform(0.25, 0.45))
            _paint_rect(tex, xs, (c[0], c[1]), float(rng.uniform(0, math.pi)), side, side, TARGET_RGB)
        else:
            rgb = DISTRACTOR_RGB[int(rng.integers(len(DISTRACTOR_RGB)))]
            ln = float(rng.uniform(0.8, 2.4))
            _paint_rect(tex, xs, (c[0], c[1]), float(rng.uniform(0, math.pi)), ln, ln / rng.uniform(1.2, 2.6), rgb)
    L, W = cfg.target_length_m, cfg.target_width_m
    _paint_rect(tex, xs, (0.0, 0.0), yaw, L, W, TARGET_RGB)
    fl = cfg.front_fraction * L
    shift = L / 2 - fl / 2
    _paint_rect(tex, xs, (shift * math.cos(yaw), shift * math.sin(yaw)), yaw, fl, W, FRONT_RGB)
    return tex, yaw


def make_bank(cfg: SceneConfig, seed: int, stream: int) -> SceneBank:
    """``cfg.scenes`` scenes drawn from the random stream (seed, stream): splits use distinct streams."""
    rng = np.random.default_rng([seed, stream, 7_919])
    texs, yaws = zip(*(make_scene(cfg, rng) for _ in range(cfg.scenes)), strict=True)
    atlas = torch.from_numpy(np.concatenate(texs, axis=2))[None].contiguous()
    return SceneBank(atlas=atlas, target_yaw=np.asarray(yaws), extent=cfg.ground_extent_m, texels=texs[0].shape[1])


def _pixel_rays(cam: Camera) -> np.ndarray:
    """Normalised coordinates [H, W, 2] of every pixel centre."""
    idx = np.arange(cam.size, dtype=np.float64)
    u, v = np.meshgrid(idx, idx)  # v = row, u = column
    return np.stack([(u - cam.c) / cam.f, (v - cam.c) / cam.f], -1)


def render(bank: SceneBank, cam: Camera, states: np.ndarray, scene_ids: np.ndarray,
           rng: np.random.Generator | None = None, pixel_noise: float = 0.0) -> torch.Tensor:
    """Images [N, 3, H, W] float32 in [0, 1] seen from drone states [N, 3] (world frame of
    each scene: target at the origin) over scenes ``scene_ids`` [N]."""
    states = np.asarray(states, dtype=np.float64).reshape(-1, 3)
    n, hw = len(states), cam.size
    rays = _pixel_rays(cam).reshape(1, -1, 2)
    ground = unproject(np.broadcast_to(rays, (n, hw * hw, 2)), states, cam.altitude)  # [N, HW, 2]
    half = bank.extent / 2
    ground = np.clip(ground, -half, half)  # beyond the scene: the border texels stretch
    k = bank.k
    gx = ((ground[..., 0] + half) / bank.extent + np.asarray(scene_ids)[:, None]) / k * 2 - 1
    gy = (ground[..., 1] + half) / bank.extent * 2 - 1
    grid = torch.from_numpy(np.stack([gx, gy], -1).astype(np.float32)).reshape(1, n * hw, hw, 2)
    out = F.grid_sample(bank.atlas, grid, mode="bilinear", padding_mode="border", align_corners=False)
    img = out[0].reshape(3, n, hw, hw).permute(1, 0, 2, 3).contiguous()
    if pixel_noise > 0:
        gen = np.random.default_rng() if rng is None else rng
        img = img + torch.from_numpy(gen.normal(0, pixel_noise, size=img.shape).astype(np.float32))
    return img.clamp_(0, 1)


def true_corners(cfg: DroneTaskConfig, bank: SceneBank, states: np.ndarray, scene_ids: np.ndarray) -> np.ndarray:
    """Ground-truth normalised corners [N, 4, 2] (FL, FR, BR, BL) of the target in each view."""
    s = cfg.scene
    corners = target_corners_world(s.target_length_m, s.target_width_m, bank.target_yaw[np.asarray(scene_ids)])
    return project(corners, np.asarray(states, dtype=np.float64), s.altitude_m)


# ---------------------------------------------------------------- dynamics
@dataclass
class DroneState:
    pose: np.ndarray  # [N, 3] x, y, yaw (world)
    vel: np.ndarray  # [N, 3] actual body velocity v_x, v_y, w_z (m/s, rad/s)


def bounds(cfg: DynamicsConfig) -> np.ndarray:
    """Physical value of a normalised command of 1, per axis."""
    return np.array([cfg.v_max, cfg.v_max, math.radians(cfg.w_max_deg)])


def step(state: DroneState, command: np.ndarray, cfg: DynamicsConfig, rng: np.random.Generator) -> DroneState:
    """Advance by ``dt``: clip the normalised command to [-1, 1], scale by the bounds, follow it
    through a first-order lag (exact discretisation alpha = 1 - exp(-dt/lag)), add velocity noise,
    integrate the pose with the mid-step yaw."""
    cmd = np.clip(np.nan_to_num(np.asarray(command, dtype=np.float64), nan=0.0), -1.0, 1.0) * bounds(cfg)
    alpha = 1.0 if cfg.lag_s == 0 else 1.0 - math.exp(-cfg.dt_s / cfg.lag_s)
    vel = state.vel + alpha * (cmd - state.vel)
    if cfg.noise > 0:
        vel = vel + rng.normal(0, cfg.noise, size=vel.shape) * bounds(cfg)
    yaw_mid = state.pose[:, 2] + 0.5 * cfg.dt_s * vel[:, 2]
    c, s = np.cos(yaw_mid), np.sin(yaw_mid)
    pose = state.pose.copy()
    pose[:, 0] += cfg.dt_s * (c * vel[:, 0] - s * vel[:, 1])
    pose[:, 1] += cfg.dt_s * (s * vel[:, 0] + c * vel[:, 1])
    pose[:, 2] = (state.pose[:, 2] + cfg.dt_s * vel[:, 2] + math.pi) % (2 * math.pi) - math.pi
    return DroneState(pose, vel)


def body_velocity_to_state_rate(pose: np.ndarray, vel: np.ndarray) -> np.ndarray:
    """d(x, y, yaw)/dt [N, 3] of drones at ``pose`` moving with body velocity ``vel``."""
    c, s = np.cos(pose[:, 2]), np.sin(pose[:, 2])
    return np.stack([c * vel[:, 0] - s * vel[:, 1], s * vel[:, 0] + c * vel[:, 1], vel[:, 2]], -1)


# ---------------------------------------------------------------- start poses
# The paper flies from 8 named start positions around the target (front, front-right, ...);
# here they sit on a circle of ``radius`` in the target's frame, each with a yaw offset, so the
# whole target is in view at the start (radius + half-diagonal < half the ground footprint).
PAPER_STARTS = (  # (name, bearing of the start in the target frame [deg], yaw offset [deg])
    ("front", 0.0, 35.0), ("front-left", 45.0, -40.0), ("left", 90.0, 25.0), ("back-left", 135.0, -30.0),
    ("back", 180.0, 40.0), ("back-right", 225.0, -25.0), ("right", 270.0, 30.0), ("front-right", 315.0, -35.0),
)


def paper_starts(target_yaw: np.ndarray, radius: float) -> np.ndarray:
    """Poses [8, 3] of the paper's start positions for targets with yaws [8] (one per start)."""
    out = []
    for (_, bearing, dyaw), ty in zip(PAPER_STARTS, target_yaw, strict=True):
        a = ty + math.radians(bearing)
        out.append([radius * math.cos(a), radius * math.sin(a), ty + math.radians(dyaw)])
    return np.asarray(out)


def random_starts(rng: np.random.Generator, target_yaw: np.ndarray, radius: float, yaw_deg: float) -> np.ndarray:
    """Poses [N, 3]: offsets uniform in a disc of ``radius``, yaw within +-yaw_deg of the target's."""
    n = len(target_yaw)
    r = radius * np.sqrt(rng.random(n))
    a = rng.uniform(-math.pi, math.pi, n)
    dyaw = np.radians(rng.uniform(-yaw_deg, yaw_deg, n))
    return np.stack([r * np.cos(a), r * np.sin(a), target_yaw + dyaw], -1)
