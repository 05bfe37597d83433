"""Helpers shared by the real-dataset loaders: grayscale, resize, packing into GazeArrays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgekd.errors import ConfigError
from edgekd.tasks.gaze.synth import GazeArrays


def to_gray(img: np.ndarray, *, bgr: bool = False) -> np.ndarray:
    """[H, W] or [H, W, 3] uint8 -> [H, W] uint8 (ITU-R BT.601 luma; ``bgr`` for OpenCV-ordered pixels)."""
    a = np.asarray(img)
    if a.ndim == 2:
        return a.astype(np.uint8)
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise ConfigError(f"image of shape {a.shape}: expected [H, W] or [H, W, 3]")
    c = a[..., :3].astype(np.float64)
    r, g, b = (c[..., 2], c[..., 1], c[..., 0]) if bgr else (c[..., 0], c[..., 1], c[..., 2])
    return np.clip(0.299 * r + 0.587 * g + 0.114 * b + 0.5, 0, 255).astype(np.uint8)


def resize(img: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """[H, W] uint8 -> [h, w] (bilinear) for ``size=(h, w)``; unchanged for None or the same size."""
    if size is None or img.shape == tuple(size):
        return img
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((size[1], size[0]), Image.Resampling.BILINEAR), dtype=np.uint8)


def read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise ConfigError(f"{path}: not a readable image ({exc})") from None


def pack(images: Sequence[np.ndarray], gaze_deg: np.ndarray, wearer: Sequence[int], source: str) -> GazeArrays:
    """Stack [H, W] uint8 images into edgekd's GazeArrays (optical axis unknown for real data: NaN)."""
    if not images:
        raise ConfigError(f"{source}: no samples found", hint="check the dataset root and the split/subject names")
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ConfigError(f"{source}: images have different sizes {sorted(shapes)}",
                          hint="pass size=(H, W) to resize them to the model's input")
    g = np.asarray(gaze_deg, dtype=np.float32).reshape(-1, 2)
    if len(g) != len(images):
        raise ConfigError(f"{source}: {len(images)} images but {len(g)} gaze labels")
    return GazeArrays(images=np.stack(images)[:, None], gaze=g, optical=np.full_like(g, np.nan),
                      wearer=np.asarray(wearer, dtype=np.int64))


def require_dir(path: Path, what: str, hint: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"{what} {str(p)!r} is not a folder", hint=hint)
    return p
