"""Offline, deterministic generator of near-eye images with known gaze.

Each image is rendered from a small geometric eye model, vectorised in torch:

- an eyeball of radius R centred at the camera-offset position; the iris and pupil are
  disks on its surface whose centre is ``c + 0.9 R (g_x, g_y)`` for the OPTICAL axis g, drawn
  as the ellipses a tilted disk projects to (foreshortened by |g_z| along (g_x, g_y));
- sclera with limb darkening, an iris with radial texture and a dark limbal ring, a pupil
  whose size varies (dilation);
- upper and lower eyelids (parabolic margins, a lash line, a crease) that occlude the eye;
  the aperture varies per image and the upper lid follows the pitch, as real lids do;
- skin with a per-wearer tone and a low-frequency texture, a lighting gradient and overall
  gain, two corneal glints of fixed IR LEDs (they move with the corneal centre,
  ``c + 0.45 R (g_x, g_y)``, less than the pupil: the pupil-glint vector encodes gaze),
  Gaussian blur and sensor noise, and 8-bit quantisation.

Per-WEARER parameters (eye size, iris intensity, lid shape, skin tone, camera offset, and the
angle kappa between the optical and the visual axis) come from the wearer's id, so a wearer
looks the same in every split he appears in. The label is the VISUAL axis, the image shows
the OPTICAL axis: ``visual = optical + kappa`` (about 5 deg horizontal, 1.5 deg vertical,
varying per wearer), a per-wearer bias that a model can learn only on average and that
personalisation removes.

Gaze convention (all of edgekd, see :mod:`edgekd.tasks.gaze.metric`): yaw/pitch in degrees,
unit vector in camera coordinates (x right, y down, z forward from the camera)
``g = (-cos(p) sin(y), -sin(p), -cos(p) cos(y))``: looking into the camera is (0, 0, -1),
positive yaw moves the pupil to the image's left, positive pitch moves it up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from edgekd.tasks.gaze.config import GazeTaskConfig

# Global wearer-id offsets of each split: wearers never overlap between splits.
WEARER_BASE = {"train": 0, "val": 100_000, "test": 200_000, "unlabelled": 300_000, "personal": 400_000}
# Separate random streams for each split's per-image parameters.
STREAM = {"train": 1, "val": 2, "test": 3, "unlabelled": 4, "personal": 5}
_CHUNK = 256  # images rendered at once (bounds the memory of the intermediates)


@dataclass
class GazeArrays:
    """One generated split, held in memory."""

    images: np.ndarray  # [N, 1, H, W] uint8
    gaze: np.ndarray  # [N, 2] float32, visual axis (yaw, pitch) in degrees: the label
    optical: np.ndarray  # [N, 2] float32, optical axis (what the image shows)
    wearer: np.ndarray  # [N] int64, global wearer id

    def __len__(self) -> int:
        return int(self.images.shape[0])


def wearer_params(ids: np.ndarray, cfg: GazeTaskConfig, seed: int) -> dict[str, np.ndarray]:
    """Per-wearer parameters, each a float64 array [len(ids)]; wearer ``i`` is a pure function of (seed, i)."""
    s = cfg.height / 64.0
    keys = ("R", "dx", "dy", "iris_frac", "iris_i", "sclera_i", "skin_i", "half_w", "open_up", "open_lo",
            "tilt", "kappa_h", "kappa_v", "pupil", "iris_freq", "iris_phase", "lid_dy")
    out = {k: np.empty(len(ids)) for k in keys}
    for j, wid in enumerate(np.asarray(ids, dtype=np.int64)):
        r = np.random.default_rng([seed, 7919, int(wid)])
        R = r.uniform(26, 33) * s
        vals = dict(
            R=R, dx=r.uniform(-7, 7) * s, dy=r.uniform(-4, 4) * s,
            iris_frac=r.uniform(0.40, 0.48), iris_i=r.uniform(0.12, 0.45), sclera_i=r.uniform(0.70, 0.92),
            skin_i=r.uniform(0.35, 0.75), half_w=R * r.uniform(1.05, 1.30), open_up=R * r.uniform(0.50, 0.72),
            open_lo=R * r.uniform(0.30, 0.48), tilt=r.uniform(-0.12, 0.12),
            kappa_h=r.normal(cfg.kappa_h_mean_deg, cfg.kappa_h_std_deg),
            kappa_v=r.normal(cfg.kappa_v_mean_deg, cfg.kappa_v_std_deg),
            pupil=r.uniform(0.32, 0.48), iris_freq=float(r.integers(7, 15)), iris_phase=r.uniform(0, 2 * math.pi),
            lid_dy=r.uniform(-0.12, 0.05) * R)
        for k in keys:
            out[k][j] = vals[k]
    return out


def sample_gaze(rng: np.random.Generator, n: int, cfg: GazeTaskConfig) -> np.ndarray:
    """Visual-axis (yaw, pitch) in degrees: 65% near the centre (people look ahead more), 35% uniform."""
    ry, rp = cfg.yaw_range_deg, cfg.pitch_range_deg
    centre = rng.random(n) < 0.65
    yaw = np.where(centre, rng.normal(0, ry / 2.5, n), rng.uniform(-ry, ry, n))
    pitch = np.where(centre, rng.normal(0, rp / 2.5, n), rng.uniform(-rp, rp, n))
    return np.stack([np.clip(yaw, -ry, ry), np.clip(pitch, -rp, rp)], axis=1)


def generate(cfg: GazeTaskConfig, wearer_ids: np.ndarray, seed: int, stream: int,
             gaze_deg: np.ndarray | None = None) -> GazeArrays:
    """Render one image per entry of ``wearer_ids`` (global ids). The gaze is drawn from stream
    ``stream`` unless ``gaze_deg`` [N, 2] (visual axis) is given. Deterministic in all arguments."""
    wearer_ids = np.asarray(wearer_ids, dtype=np.int64)
    n = len(wearer_ids)
    rng = np.random.default_rng([seed, 104_729, stream])
    visual = sample_gaze(rng, n, cfg) if gaze_deg is None else np.asarray(gaze_deg, dtype=np.float64)
    uniq, inv = np.unique(wearer_ids, return_inverse=True)
    wp = {k: v[inv] for k, v in wearer_params(uniq, cfg, seed).items()}
    optical = visual - np.stack([wp["kappa_h"], wp["kappa_v"]], axis=1)
    nz = cfg.noise
    per_image = dict(
        open=rng.uniform(0.55, 1.05, n), pupil_scale=rng.uniform(0.8, 1.25, n),
        light_amp=rng.uniform(0, 0.35, n) * nz, light_ang=rng.uniform(0, 2 * math.pi, n),
        gain=1 + rng.uniform(-0.18, 0.12, n) * nz, blur=rng.uniform(0, 1.1, n) * nz,
        noise=rng.uniform(0.004, 0.03, n) * nz, glint_jit=rng.normal(0, 0.6, (n, 2)) * nz,
        tex_seed=rng.integers(0, 2**62, n),
    )
    images = np.empty((n, 1, cfg.height, cfg.width), dtype=np.uint8)
    for a in range(0, n, _CHUNK):
        b = min(n, a + _CHUNK)
        sl = {k: torch.as_tensor(v[a:b]) for k, v in wp.items()}
        pi = {k: torch.as_tensor(v[a:b]) for k, v in per_image.items()}
        gen = torch.Generator().manual_seed(int(per_image["tex_seed"][a]) if b > a else 0)
        img = _render(torch.as_tensor(optical[a:b]), sl, pi, cfg.height, cfg.width, gen)
        images[a:b] = (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    return GazeArrays(images=images, gaze=visual.astype(np.float32), optical=optical.astype(np.float32),
                      wearer=wearer_ids)


def split_wearers(cfg: GazeTaskConfig, split: str) -> np.ndarray:
    """The global wearer ids of a split (disjoint between splits by construction)."""
    count = {"train": cfg.train_wearers, "val": cfg.val_wearers, "test": cfg.test_wearers}
    if split not in count:
        raise KeyError(split)
    return WEARER_BASE[split] + np.arange(count[split], dtype=np.int64)


def generate_split(cfg: GazeTaskConfig, split: str, seed: int, size: int | None = None) -> GazeArrays:
    """``train``/``val``/``test``: images spread evenly over the split's wearers."""
    wearers = split_wearers(cfg, split)
    n = size if size is not None else {"train": cfg.train_size, "val": cfg.val_size, "test": cfg.test_size}[split]
    ids = wearers[np.arange(n) % len(wearers)]
    return generate(cfg, ids, seed, STREAM[split])


# ----------------------------------------------------------------------------- rendering

def gaze_xy(yaw_deg: torch.Tensor, pitch_deg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unit gaze vector components in camera coordinates (the edgekd convention)."""
    y, p = torch.deg2rad(yaw_deg), torch.deg2rad(pitch_deg)
    return -torch.cos(p) * torch.sin(y), -torch.sin(p), -torch.cos(p) * torch.cos(y)


def _render(optical: torch.Tensor, w: dict[str, torch.Tensor], pi: dict[str, torch.Tensor], H: int, W: int,
            gen: torch.Generator) -> torch.Tensor:
    n = optical.shape[0]
    dt = torch.float32
    w = {k: v.to(dt).view(n, 1, 1) for k, v in w.items()}
    pi = {k: (v.to(dt).view(n, 1, 1) if v.ndim == 1 else v.to(dt)) for k, v in pi.items() if k != "tex_seed"}
    ys = torch.arange(H, dtype=dt).view(1, H, 1) + 0.5
    xs = torch.arange(W, dtype=dt).view(1, 1, W) + 0.5
    gx, gy, gz = gaze_xy(optical[:, 0].to(dt), optical[:, 1].to(dt))
    gx, gy, gz = gx.view(n, 1, 1), gy.view(n, 1, 1), gz.view(n, 1, 1)
    R = w["R"]
    cx, cy = W / 2 + w["dx"], H / 2 + w["dy"]

    def soft(v: torch.Tensor, width: float = 0.6) -> torch.Tensor:  # anti-aliased step, 1 where v > 0
        return torch.sigmoid(v / width)

    # --- eyeball: sclera with limb darkening
    rx, ry = xs - cx, ys - cy
    r2 = (rx * rx + ry * ry) / (R * R)
    sclera = w["sclera_i"] * (0.72 + 0.28 * torch.sqrt((1 - r2).clamp_min(0)))
    # --- iris and pupil: disks of normal g, projected to ellipses: |d|^2 + (d.(gx,gy))^2 / gz^2
    icx, icy = cx + 0.9 * R * gx, cy + 0.9 * R * gy
    dx, dy = xs - icx, ys - icy
    dot = dx * gx + dy * gy
    metric = torch.sqrt(dx * dx + dy * dy + dot * dot / (gz * gz)).clamp_min(1e-6)
    r_iris = w["iris_frac"] * R
    r_pupil = r_iris * w["pupil"] * pi["pupil_scale"]
    theta = torch.atan2(dy, dx)
    tex = 1 + 0.18 * torch.sin(w["iris_freq"] * theta + w["iris_phase"]) * (metric / r_iris).clamp(0, 1)
    ring = 1 - 0.45 * torch.exp(-((metric - r_iris) / (0.12 * r_iris)) ** 2)  # dark limbal ring
    iris = w["iris_i"] * tex * ring
    eye = sclera + (iris - sclera) * soft(r_iris - metric)
    eye = eye + (0.03 - eye) * soft(r_pupil - metric)
    # --- corneal glints from two fixed IR LEDs (move with the corneal centre c + 0.45 R g)
    ccx, ccy = cx + 0.45 * R * gx, cy + 0.45 * R * gy
    for k, (ox, oy) in enumerate(((-0.22, 0.28), (0.22, 0.28))):
        jx = pi["glint_jit"][:, 0].view(n, 1, 1) if k == 0 else -pi["glint_jit"][:, 0].view(n, 1, 1)
        gxk, gyk = ccx + ox * R + jx, ccy + oy * R + pi["glint_jit"][:, 1].view(n, 1, 1)
        d2 = (xs - gxk) ** 2 + (ys - gyk) ** 2
        eye = eye + 0.9 * torch.exp(-d2 / (2 * 0.8**2))
    # --- eyelids: parabolic margins in the eye's tilted frame; upper lid follows pitch
    ct, st = torch.cos(w["tilt"]), torch.sin(w["tilt"])
    lx = (xs - cx) * ct + (ys - cy - w["lid_dy"]) * st
    ly = -(xs - cx) * st + (ys - cy - w["lid_dy"]) * ct
    shape = (1 - (lx / w["half_w"]) ** 2)
    pitch_opt = optical[:, 1].to(dt).view(n, 1, 1)
    up = w["open_up"] * pi["open"] * (1 + 0.012 * pitch_opt).clamp(0.5, 1.5)
    lo = w["open_lo"] * (0.7 + 0.3 * pi["open"])
    y_up, y_lo = -up * shape, lo * shape
    inside = soft(ly - y_up) * soft(y_lo - ly)
    eye = eye * (1 - 0.35 * torch.exp(-(ly - y_up).clamp_min(0) / 2.5))  # lid shadow on the eyeball
    # --- skin: tone x low-frequency texture, lash line, crease
    low = torch.rand(n, 1, max(2, H // 8), max(2, W // 8), generator=gen, dtype=dt)
    low = F.interpolate(low, size=(H, W), mode="bilinear", align_corners=False)[:, 0]
    fine = torch.rand(n, H, W, generator=gen, dtype=dt)
    skin = w["skin_i"] * (0.88 + 0.22 * low + 0.05 * fine)
    lash = torch.exp(-((ly - y_up + 1.2) ** 2) / 2.5) * torch.sigmoid(shape * 12)
    skin = skin * (1 - 0.6 * lash)
    crease = torch.exp(-((ly - (y_up - 0.35 * R)) ** 2) / 3.0) * torch.sigmoid(shape * 12)
    skin = skin * (1 - 0.25 * crease)
    img = skin + (eye - skin) * inside
    # --- lighting: a linear gradient and a gain, then blur, sensor noise
    grad = (xs / W - 0.5) * torch.cos(pi["light_ang"]) + (ys / H - 0.5) * torch.sin(pi["light_ang"])
    img = img * pi["gain"] * (1 + pi["light_amp"] * 2 * grad)
    img = _blur(img.unsqueeze(1), pi["blur"].view(n))
    img = img + pi["noise"].view(n, 1, 1, 1) * torch.randn(img.shape, generator=gen, dtype=dt)
    return img


def _blur(img: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image Gaussian blur (5x5, sigma 0 = identity) as one grouped convolution."""
    n = img.shape[0]
    t = torch.arange(-2, 3, dtype=img.dtype)
    s = sigma.clamp_min(1e-3).view(n, 1)
    k1 = torch.exp(-(t.view(1, 5) ** 2) / (2 * s * s))
    k1 = k1 / k1.sum(dim=1, keepdim=True)
    k2 = (k1.view(n, 5, 1) * k1.view(n, 1, 5)).unsqueeze(1)  # [n, 1, 5, 5]
    x = F.pad(img.transpose(0, 1), (2, 2, 2, 2), mode="replicate")  # [1, n, H+4, W+4]
    return F.conv2d(x, k2, groups=n).transpose(0, 1)
