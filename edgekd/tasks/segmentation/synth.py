"""The offline "mini-city" street-scene generator and its shifted test domains.

Each image is a perspective street: sky above a random horizon, a road converging to a
vanishing point with dashed lane markings, sidewalks with tiles on both sides, grass behind
them, rows of buildings with window grids, trees, thin poles, people on the sidewalks and
cars on the road, drawn far-to-near (painter's algorithm) with per-object size proportional
to the perspective scale ``d = (y - y_horizon) / (1 - y_horizon)``. Surfaces are textured
(low- and high-frequency noise), lighting varies (gain, colour cast, side shadow).

Rendering is done on a grid ``SUPER`` times finer than the output; the image is the block
mean (anti-aliasing) and the label is the block's majority class, or 255 (ignore) where the
majority covers less than ``PURITY`` of the block, i.e. on the anti-aliased borders.
Everything is drawn from ``numpy.random.default_rng([seed, stream, index])``, so an image
depends only on (seed, stream, index), not on how many were generated before it.

Shifted domains (:func:`apply_shift`) are photometric corruptions of the clean test images
(fog with a vertical depth proxy, night, rain streaks), as used to measure the
out-of-domain robustness of distilled students (GKD, Generalizable KD from foundation models).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSES = ("road", "sidewalk", "building", "vegetation", "sky", "car", "person", "pole")
ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, CAR, PERSON, POLE = range(len(CLASSES))
IGNORE = 255
SUPER = 2  # sub-samples per output pixel along each axis
PURITY = 0.75  # below this majority share a pixel is a border pixel -> 255
STREAM = {"train": 1, "val": 2, "test": 3}
SHIFT_STREAM = {"fog": 11, "night": 12, "rain": 13}


@dataclass
class SegArrays:
    images: np.ndarray  # [N, 3, H, W] uint8
    labels: np.ndarray  # [N, H, W] uint8 (class id or 255)

    def __len__(self) -> int:
        return len(self.images)


class _Canvas:
    """The super-sampled drawing surface: colours [h, w, 3] float, labels [h, w] int."""

    def __init__(self, h: int, w: int) -> None:
        self.h, self.w = h, w
        self.rgb = np.zeros((h, w, 3), np.float32)
        self.lab = np.full((h, w), SKY, np.int16)
        # pixel-centre coordinates in [0, 1]
        self.y = ((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None]
        self.x = ((np.arange(w, dtype=np.float32) + 0.5) / w)[None, :]

    def rows(self, y0: float, y1: float) -> slice:
        return slice(max(0, int(np.floor(y0 * self.h)) - 1), min(self.h, int(np.ceil(y1 * self.h)) + 1))

    def cols(self, x0: float, x1: float) -> slice:
        return slice(max(0, int(np.floor(x0 * self.w)) - 1), min(self.w, int(np.ceil(x1 * self.w)) + 1))

    def paint(self, rs: slice, cs: slice, mask: np.ndarray, colour: np.ndarray, label: int) -> None:
        """Paint ``colour`` ([3] or [h', w', 3]) with ``label`` where ``mask`` (of the slice) is True."""
        if rs.start >= rs.stop or cs.start >= cs.stop or not mask.any():
            return
        sub = self.rgb[rs, cs]
        col = np.broadcast_to(colour, sub.shape)
        sub[mask] = col[mask]
        self.lab[rs, cs][mask] = label


def _lowfreq(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth noise in [-1, 1]: a coarse random grid, bilinearly upsampled to [h, w]."""
    gh, gw = cells + 1, max(2, int(cells * w / max(h, 1))) + 1
    g = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    yi = np.linspace(0, gh - 1, h, dtype=np.float32)
    xi = np.linspace(0, gw - 1, w, dtype=np.float32)
    y0 = np.minimum(yi.astype(int), gh - 2)
    x0 = np.minimum(xi.astype(int), gw - 2)
    fy, fx = (yi - y0)[:, None], (xi - x0)[None, :]
    a, b = g[y0][:, x0], g[y0][:, x0 + 1]
    c, d = g[y0 + 1][:, x0], g[y0 + 1][:, x0 + 1]
    return (a * (1 - fy) * (1 - fx) + b * (1 - fy) * fx + c * fy * (1 - fx) + d * fy * fx).astype(np.float32)


def _texture(rng: np.random.Generator, shape: tuple[int, int], base: np.ndarray, low: float, high: float,
             cells: int = 6) -> np.ndarray:
    """base colour [3] modulated by smooth (``low``) and per-pixel (``high``) noise -> [h, w, 3]."""
    h, w = shape
    n = low * _lowfreq(rng, h, w, cells)[..., None] + high * rng.standard_normal((h, w, 1)).astype(np.float32)
    return np.clip(base[None, None, :] * (1.0 + n), 0, 1).astype(np.float32)


@dataclass(frozen=True)
class _Street:
    """The scene's perspective: horizon row, vanishing point and the road's widths (image fractions)."""

    hor: float  # horizon
    vx: float  # vanishing point x
    road_hw: float  # road half-width at the bottom row (image widths)
    side_w: float  # sidewalk width at the bottom row

    @classmethod
    def draw(cls, rng: np.random.Generator) -> _Street:
        return cls(rng.uniform(0.36, 0.5), rng.uniform(0.35, 0.65), rng.uniform(0.28, 0.45), rng.uniform(0.12, 0.3))

    def depth(self, yy: np.ndarray) -> np.ndarray:
        return np.clip((yy - self.hor) / (1.0 - self.hor), 0.0, None)  # 0 at the horizon, 1 at the bottom

    def y_at(self, d: float) -> float:
        return float(self.hor + d * (1.0 - self.hor))

    def edge(self, offset: float, d: np.ndarray | float) -> np.ndarray | float:
        """x of a line parallel to the road's axis, ``offset`` image widths from it at d = 1."""
        return self.vx + offset * d


def render(height: int, width: int, seed: int, stream: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (image [3, H, W] uint8, label [H, W] uint8). Deterministic in (seed, stream, index).

    The random draws happen in a fixed order (street, sky, ground, objects, buildings, lighting): changing
    the order changes every generated dataset, and with it every published figure."""
    rng = np.random.default_rng([seed, stream, index])
    H, W = height * SUPER, width * SUPER
    cv = _Canvas(H, W)
    st = _Street.draw(rng)
    _sky(cv, rng, st)
    _ground(cv, rng, st)
    objs = _scatter_objects(rng)
    _buildings(cv, rng, st)
    _draw_objects(cv, rng, st, objs)
    return _downsample(_lighting(cv, rng), cv.lab, height, width)


def _sky(cv: _Canvas, rng: np.random.Generator, st: _Street) -> None:
    """Vertical gradient with clouds."""
    H, W = cv.rgb.shape[:2]
    sky_top = np.array(rng.uniform([0.25, 0.4, 0.7], [0.5, 0.65, 0.95]), np.float32)
    sky_bot = np.clip(sky_top + rng.uniform(0.1, 0.3), 0, 1).astype(np.float32)
    grad = np.clip(cv.y / max(st.hor, 1e-3), 0, 1)[..., None]
    cv.rgb[:] = sky_top * (1 - grad) + sky_bot * grad
    clouds = np.clip(_lowfreq(rng, H, W, 4), 0, 1)[..., None] * rng.uniform(0.2, 0.6)
    cv.rgb[:] = cv.rgb * (1 - clouds) + 0.95 * clouds


def _ground(cv: _Canvas, rng: np.random.Generator, st: _Street) -> None:
    """Grass behind the sidewalks, tiled sidewalks, and the road with its dashed centre line."""
    H, W = cv.rgb.shape[:2]
    y, x, every = cv.y, cv.x, (slice(0, H), slice(0, W))
    below = np.broadcast_to(y > st.hor, (H, W))
    d_map = np.broadcast_to(st.depth(y), (H, W))
    grass = _texture(rng, (H, W), np.array(rng.uniform([0.15, 0.35, 0.1], [0.3, 0.55, 0.2]), np.float32), 0.25, 0.12)
    cv.paint(*every, below, grass, VEGETATION)
    walk_col = np.array(rng.uniform([0.55, 0.5, 0.45], [0.75, 0.7, 0.65]), np.float32)
    walk = _texture(rng, (H, W), walk_col, 0.08, 0.05)
    tiles = (np.abs(np.sin(12.0 / np.maximum(d_map, 0.05))) < 0.12)[..., None]
    walk = np.where(tiles, walk * 0.8, walk)
    outer = st.road_hw + st.side_w
    cv.paint(*every, below & (x > st.edge(-outer, d_map)) & (x < st.edge(outer, d_map)), walk, SIDEWALK)
    road = _texture(rng, (H, W), np.full(3, rng.uniform(0.25, 0.4), np.float32), 0.15, 0.08)
    dash = (np.abs(x - st.vx) < 0.008 * d_map + 0.002) & (np.sin(3.0 / np.maximum(d_map, 0.02)) > 0)
    road = np.where(dash[..., None], np.float32(0.92), road)
    cv.paint(*every, below & (x > st.edge(-st.road_hw, d_map)) & (x < st.edge(st.road_hw, d_map)), road, ROAD)


def _scatter_objects(rng: np.random.Generator) -> list[tuple[float, str, int]]:
    """(depth d, kind, side) of the trees, poles and people on both sidewalks and the cars on the road."""
    objs: list[tuple[float, str, int]] = []
    for side in (-1, 1):
        for d in np.sort(rng.uniform(0.05, 1.0, rng.integers(0, 4))):
            objs.append((float(d), "tree", side))
        for d in rng.uniform(0.08, 1.0, rng.integers(1, 4)):
            objs.append((float(d), "pole", side))
        for d in rng.uniform(0.1, 1.0, rng.integers(0, 4)):
            objs.append((float(d), "person", side))
    for d in rng.uniform(0.08, 0.9, rng.integers(1, 5)):
        objs.append((float(d), "car", int(rng.choice([-1, 1]))))
    return objs


def _buildings(cv: _Canvas, rng: np.random.Generator, st: _Street) -> None:
    """Buildings stand behind the sidewalk: drawn first, far to near on both sides."""
    for side in (-1, 1):
        d_far = rng.uniform(0.0, 0.06)
        while d_far < 1.6:
            d_near = d_far + rng.uniform(0.1, 0.5)
            gap = rng.random() < 0.2  # a gap between buildings shows the sky / grass behind
            if not gap:
                _building(cv, rng, side, d_far, d_near, st.hor, st.vx, st.road_hw + st.side_w + rng.uniform(0.0, 0.05))
            d_far = d_near + (rng.uniform(0.02, 0.1) if gap else 0.0)


# where each kind stands across the street: (fraction of the sidewalk or road, low, high); cars on the road
_PLACEMENT = {"tree": (0.7, 1.2), "pole": (0.1, 0.3), "person": (0.2, 0.9)}


def _draw_objects(cv: _Canvas, rng: np.random.Generator, st: _Street, objs: list[tuple[float, str, int]]) -> None:
    """Far to near, so nearer objects cover farther ones."""
    draw = {"tree": _tree, "pole": _pole, "person": _person}
    for d, kind, side in sorted(objs, key=lambda o: o[0]):
        yb = st.y_at(d)
        if kind == "car":
            _car(cv, rng, float(st.edge(side * st.road_hw * rng.uniform(0.15, 0.7), d)), yb, d)
        else:
            lo, hi = _PLACEMENT[kind]
            draw[kind](cv, rng, float(st.edge(side * (st.road_hw + st.side_w * rng.uniform(lo, hi)), d)), yb, d)


def _lighting(cv: _Canvas, rng: np.random.Generator) -> np.ndarray:
    """Gain, colour cast, a soft shadow from one side and sensor noise -> [H, W, 3] in [0, 1]."""
    x = cv.x
    gain = rng.uniform(0.7, 1.2)
    cast = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    shade = 1.0 - rng.uniform(0.0, 0.35) * np.clip((x if rng.random() < 0.5 else 1 - x) * 1.5 - 0.5, 0, 1)
    img = np.clip(cv.rgb * gain * cast * shade[..., None], 0, 1)
    img = img + rng.normal(0, 0.015, img.shape).astype(np.float32)
    return np.clip(img, 0, 1)


def _downsample(img: np.ndarray, lab: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    blocks = img.reshape(h, SUPER, w, SUPER, 3).mean(axis=(1, 3))
    sub = lab.reshape(h, SUPER, w, SUPER).transpose(0, 2, 1, 3).reshape(h, w, SUPER * SUPER)
    counts = np.stack([(sub == c).sum(-1) for c in range(len(CLASSES))], -1)
    major = counts.argmax(-1)
    pure = counts.max(-1) >= PURITY * SUPER * SUPER
    label = np.where(pure, major, IGNORE).astype(np.uint8)
    image = np.round(blocks.transpose(2, 0, 1) * 255).astype(np.uint8)
    return image, label


def _building(cv: _Canvas, rng: np.random.Generator, side: int, d0: float, d1: float, hor: float, vx: float,
              offset: float) -> None:
    """A facade between depth scales d0 (far) and d1 (near) on one side, standing behind the sidewalk."""
    yb0, yb1 = hor + d0 * (1 - hor), hor + min(d1, 3.0) * (1 - hor)
    xf, xn = vx + side * offset * d0, vx + side * offset * min(d1, 3.0)
    height = rng.uniform(0.5, 1.6)  # facade height per unit of scale (image heights)
    yt0, yt1 = yb0 - height * d0 * 0.6 - 0.02, yb1 - height * min(d1, 3.0) * 0.6
    x_lo, x_hi = min(xf, xn), max(xf, xn)
    rs, cs = cv.rows(min(yt0, yt1), max(yb0, yb1)), cv.cols(x_lo, x_hi)
    if rs.start >= rs.stop or cs.start >= cs.stop:
        return
    yy, xx = cv.y[rs], cv.x[:, cs]
    t = np.clip((xx - xf) / (xn - xf + 1e-6), 0, 1)  # 0 at the far edge, 1 at the near edge
    top, bot = yt0 + t * (yt1 - yt0), yb0 + t * (yb1 - yb0)
    inside = (xx >= x_lo) & (xx <= x_hi) & (yy >= top) & (yy <= bot)
    base = np.array(rng.uniform([0.35, 0.3, 0.25], [0.85, 0.75, 0.7]), np.float32)
    col = _texture(rng, inside.shape, base, 0.1, 0.04)
    v = (yy - top) / np.maximum(bot - top, 1e-6)
    # windows: a grid in facade coordinates, foreshortened with depth
    nx, ny = rng.integers(3, 9), rng.integers(3, 8)
    u = 1.0 / (1e-3 + (1 - t) / max(d0, 0.02) + t / max(d1, 0.02))  # perspective-correct-ish along the facade
    wu = np.sin(u * nx * 25.0) > 0.2
    wv = np.sin(v * ny * np.pi * 2) > 0.1
    win = (wu & wv & (v < 0.92))[..., None]
    glass = np.array(rng.uniform([0.1, 0.15, 0.2], [0.35, 0.4, 0.55]), np.float32)
    col = np.where(win, glass, col)
    cv.paint(rs, cs, inside, col, BUILDING)


def _tree(cv: _Canvas, rng: np.random.Generator, xc: float, yb: float, d: float) -> None:
    r = 0.11 * d * rng.uniform(0.7, 1.3)
    trunk_h = 0.25 * d * rng.uniform(0.8, 1.3)
    cy = yb - trunk_h - r * 0.7
    rs, cs = cv.rows(cy - r * 1.3, yb), cv.cols(xc - r * 1.6, xc + r * 1.6)
    if rs.start >= rs.stop or cs.start >= cs.stop:
        return
    yy, xx = cv.y[rs], cv.x[:, cs]
    wobble = 1.0 + 0.2 * _lowfreq(rng, yy.shape[0], xx.shape[1], 3)
    crown = ((xx - xc) / (r * 1.3)) ** 2 + ((yy - cy) / r) ** 2 < wobble
    trunk = (np.abs(xx - xc) < 0.012 * d + 0.002) & (yy > cy) & (yy < yb)
    leaf = _texture(rng, crown.shape, np.array(rng.uniform([0.1, 0.3, 0.05], [0.25, 0.5, 0.15]), np.float32),
                    0.3, 0.2, cells=3)
    cv.paint(rs, cs, trunk, np.array([0.3, 0.2, 0.12], np.float32), VEGETATION)
    cv.paint(rs, cs, crown, leaf, VEGETATION)


def _pole(cv: _Canvas, rng: np.random.Generator, xc: float, yb: float, d: float) -> None:
    half = max(0.01 * d, 1.2 / cv.w)  # thin, but never below ~1 output pixel wide
    top = yb - 0.8 * d * rng.uniform(0.8, 1.2)
    rs, cs = cv.rows(top - 0.02, yb), cv.cols(xc - half - 0.05 * d, xc + half + 0.05 * d)
    if rs.start >= rs.stop or cs.start >= cs.stop:
        return
    yy, xx = cv.y[rs], cv.x[:, cs]
    shaft = (np.abs(xx - xc) < half) & (yy > top) & (yy < yb)
    arm = (yy > top) & (yy < top + 2 * half) & (xx > xc - 0.04 * d) & (xx < xc + half) if rng.random() < 0.5 else \
        np.zeros_like(shaft)
    grey = np.float32(rng.uniform(0.2, 0.5))
    cv.paint(rs, cs, shaft | arm, np.array([grey, grey, grey * 1.05], np.float32), POLE)


def _person(cv: _Canvas, rng: np.random.Generator, xc: float, yb: float, d: float) -> None:
    h = 0.35 * d * rng.uniform(0.85, 1.15)
    w = 0.045 * d * rng.uniform(0.8, 1.2)
    rs, cs = cv.rows(yb - h, yb), cv.cols(xc - w * 1.2, xc + w * 1.2)
    if rs.start >= rs.stop or cs.start >= cs.stop:
        return
    yy, xx = cv.y[rs], cv.x[:, cs]
    head_r = h * 0.11
    head = ((xx - xc) / (head_r * 0.9)) ** 2 + ((yy - (yb - h + head_r)) / head_r) ** 2 < 1
    body = (np.abs(xx - xc) < w * (1 - 0.3 * ((yy - (yb - h)) / h))) & (yy > yb - h + 2 * head_r) & (yy < yb - 0.45 * h)
    legs = (np.abs(np.abs(xx - xc) - w * 0.35) < w * 0.28) & (yy >= yb - 0.45 * h) & (yy < yb)
    shirt = np.array(rng.uniform(0.05, 0.95, 3), np.float32)
    pants = np.array(rng.uniform(0.05, 0.5, 3), np.float32)
    cv.paint(rs, cs, legs, pants, PERSON)
    cv.paint(rs, cs, body, shirt, PERSON)
    cv.paint(rs, cs, head, np.array(rng.uniform([0.5, 0.35, 0.25], [0.9, 0.7, 0.55]), np.float32), PERSON)


def _car(cv: _Canvas, rng: np.random.Generator, xc: float, yb: float, d: float) -> None:
    w = 0.16 * d * rng.uniform(0.85, 1.2)
    h = 0.2 * d * rng.uniform(0.8, 1.1)
    rs, cs = cv.rows(yb - h, yb + 0.01), cv.cols(xc - w, xc + w)
    if rs.start >= rs.stop or cs.start >= cs.stop:
        return
    yy, xx = cv.y[rs], cv.x[:, cs]
    v = (yb - yy) / h  # 0 at the wheels' bottom, 1 at the roof
    body = (np.abs(xx - xc) < w) & (v > 0.1) & (v < 0.6)
    cabin = (np.abs(xx - xc) < w * (0.8 - 0.25 * (v - 0.6) / 0.4)) & (v >= 0.6) & (v < 1.0)
    wheels = (np.abs(np.abs(xx - xc) - w * 0.65) < w * 0.18) & (v >= 0.0) & (v <= 0.15)
    paint = np.array(rng.uniform(0.05, 0.95, 3), np.float32)
    col = np.broadcast_to(paint, (*body.shape, 3)).copy()
    shade = np.clip(1.1 - 0.5 * v, 0.5, 1.1)[..., None]
    col = (col * shade).astype(np.float32)
    glass = (cabin & (np.abs(xx - xc) < w * 0.65) & (v > 0.65) & (v < 0.92))
    col[glass] = np.array([0.15, 0.2, 0.28], np.float32)
    lights = body & (np.abs(np.abs(xx - xc) - w * 0.8) < w * 0.12) & (v > 0.35) & (v < 0.48)
    col[lights] = np.array([0.95, 0.3, 0.2], np.float32)
    cv.paint(rs, cs, wheels, np.array([0.06, 0.06, 0.06], np.float32), CAR)
    cv.paint(rs, cs, body | cabin, col, CAR)


def generate(height: int, width: int, n: int, seed: int, stream: int, start: int = 0) -> SegArrays:
    """``n`` scenes with indices start..start+n-1 of a (seed, stream)."""
    images = np.empty((n, 3, height, width), np.uint8)
    labels = np.empty((n, height, width), np.uint8)
    for i in range(n):
        images[i], labels[i] = render(height, width, seed, stream, start + i)
    return SegArrays(images, labels)


# ---------------------------------------------------------------------------- shifted domains
def apply_shift(images: np.ndarray, kind: str, seed: int, severity: float = 1.0) -> np.ndarray:
    """A shifted copy of uint8 images [N, 3, H, W]; labels are unchanged by every shift.

    - ``fog``: Koschmieder's model I' = I t + A (1 - t), t = exp(-beta z) with a per-row depth
      proxy z (far near the top), airlight A ~ 0.75-0.85, plus a slight blur;
    - ``night``: I' = 0.35 I^1.6 with a blue cast, a few warm street-light glows and sensor noise;
    - ``rain``: slanted bright streaks, lowered contrast and a blur.
    """
    from edgekd.errors import UnknownNameError

    if kind not in SHIFT_STREAM:
        raise UnknownNameError("segmentation shift", kind, list(SHIFT_STREAM),
                               hint="set task.shifts to a subset of fog, night, rain")
    rng = np.random.default_rng([seed, SHIFT_STREAM[kind]])
    x: np.ndarray = images.astype(np.float32) / 255.0
    n, _, h, w = x.shape
    rows = (np.arange(h, dtype=np.float32) / max(h - 1, 1))[None, None, :, None]
    if kind == "fog":
        beta = 1.4 * severity * rng.uniform(0.8, 1.2, (n, 1, 1, 1)).astype(np.float32)
        z = 1.6 - 1.2 * rows  # 1.6 at the top row (far), 0.4 at the bottom (near)
        t = np.exp(-beta * z)
        a = rng.uniform(0.75, 0.85, (n, 1, 1, 1)).astype(np.float32)
        x = _blur(x * t + a * (1 - t))
    elif kind == "night":
        x = 0.35 * np.power(x, 1.0 + 0.6 * severity) * np.array([0.8, 0.9, 1.25], np.float32)[None, :, None, None]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        for i in range(n):
            for _ in range(int(rng.integers(1, 4))):
                cy, cx, r = rng.uniform(0, h * 0.6), rng.uniform(0, w), rng.uniform(0.05, 0.12) * w
                glow = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)) * 0.5
                x[i] += glow[None] * np.array([1.0, 0.8, 0.5], np.float32)[:, None, None]
        x = x + rng.normal(0, 0.03 * severity, x.shape).astype(np.float32)
    else:  # rain
        layer = np.zeros((n, h, w), np.float32)
        count = int(0.02 * h * w * severity)
        length = max(3, h // 10)
        for i in range(n):
            y0 = rng.integers(-length, h, count)
            x0 = rng.integers(0, w, count)
            for k in range(length):
                yk, xk = y0 + k, x0 + k // 3
                ok = (yk >= 0) & (yk < h) & (xk < w)
                layer[i, yk[ok], xk[ok]] = 0.35
        x = 0.8 * x + 0.1 + layer[:, None]
        x = _blur(x)
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def _blur(x: np.ndarray) -> np.ndarray:
    """3x3 binomial blur over the last two axes (edge-replicated)."""
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = x.shape[2], x.shape[3]
    rows = (p[:, :, 0:h] + 2 * p[:, :, 1:h + 1] + p[:, :, 2:h + 2]) / 4.0
    return np.asarray((rows[..., 0:w] + 2 * rows[..., 1:w + 1] + rows[..., 2:w + 2]) / 4.0, np.float32)
