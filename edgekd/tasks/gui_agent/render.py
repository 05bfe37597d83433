"""Offline app-like screens drawn with Pillow, with every element's box, type and label, and
instructions from templates.

A screen has a top bar (back arrow, title, one or two icon buttons), optionally a tab row,
then content rows (text buttons, list rows, icon buttons, text fields, toggle rows) and
optionally a bottom navigation bar of icons. Icons are procedural (gear, trash, magnifier,
house, heart, star, plus, cross, bell, menu). Text uses Pillow's bundled default font, so no
system font is needed. ``cluttered=True`` packs more elements side by side, adds distractor
shapes and a textured background (the held-out clutter split).

Each screen gets one instruction: CLICK a text element or an icon, TYPE a value into a field,
TOGGLE a switch, or BACK. ``paraphrase=True`` words it with the held-out synonyms and templates.
Boxes are (x0, y0, x1, y1) in render pixels; the dataset scales them to the model's image size.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgekd.tasks.gui_agent import tokens as T

TEXT, ICON, NONE = 0, 1, 2  # target type: text element, icon, no target (BACK)


@dataclass(frozen=True)
class Element:
    kind: str  # "button", "row", "tab", "field", "toggle", "icon"
    box: tuple[int, int, int, int]  # the clickable target (the switch of a toggle row)
    label: str  # canonical word (text) or icon kind

    @property
    def target_type(self) -> int:
        return ICON if self.kind == "icon" else TEXT


@dataclass(frozen=True)
class Sample:
    image: Any  # PIL.Image (RGB, render size)
    elements: tuple[Element, ...]
    instruction: str
    action: int
    target: Element | None  # None for BACK


@functools.lru_cache(maxsize=4)
def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _rgb(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, size=3))  # type: ignore[return-value]


# ---------------------------------------------------------------------------- icons
def draw_icon(draw: Any, kind: str, box: tuple[int, int, int, int], color: tuple[int, int, int]) -> None:
    """Draw a procedural icon filling ``box`` (square)."""
    x0, y0, x1, y1 = box
    s = x1 - x0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w = max(1, round(s / 10))
    if kind == "gear":
        r = s * 0.28
        for k in range(8):
            a = k * math.pi / 4
            tx, ty = cx + math.cos(a) * s * 0.38, cy + math.sin(a) * s * 0.38
            draw.ellipse((tx - s * 0.09, ty - s * 0.09, tx + s * 0.09, ty + s * 0.09), fill=color)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)
        draw.ellipse((cx - r * 0.45, cy - r * 0.45, cx + r * 0.45, cy + r * 0.45), fill=(255, 255, 255))
    elif kind == "trash":
        draw.rectangle((x0 + s * 0.25, y0 + s * 0.3, x1 - s * 0.25, y1 - s * 0.1), outline=color, width=w)
        draw.line((x0 + s * 0.15, y0 + s * 0.25, x1 - s * 0.15, y0 + s * 0.25), fill=color, width=w)
        draw.rectangle((cx - s * 0.1, y0 + s * 0.12, cx + s * 0.1, y0 + s * 0.25), outline=color, width=w)
        for fx in (0.4, 0.6):
            draw.line((x0 + s * fx, y0 + s * 0.4, x0 + s * fx, y1 - s * 0.2), fill=color, width=w)
    elif kind == "magnifier":
        r = s * 0.25
        draw.ellipse((x0 + s * 0.15, y0 + s * 0.15, x0 + s * 0.15 + 2 * r, y0 + s * 0.15 + 2 * r),
                     outline=color, width=w + 1)
        draw.line((x0 + s * 0.55, y0 + s * 0.55, x1 - s * 0.12, y1 - s * 0.12), fill=color, width=w + 2)
    elif kind == "house":
        draw.polygon([(cx, y0 + s * 0.12), (x0 + s * 0.1, cy), (x1 - s * 0.1, cy)], fill=color)
        draw.rectangle((x0 + s * 0.25, cy, x1 - s * 0.25, y1 - s * 0.12), fill=color)
        draw.rectangle((cx - s * 0.07, cy + s * 0.12, cx + s * 0.07, y1 - s * 0.12), fill=(255, 255, 255))
    elif kind == "heart":
        r = s * 0.2
        draw.ellipse((cx - 2 * r, y0 + s * 0.2, cx, y0 + s * 0.2 + 2 * r), fill=color)
        draw.ellipse((cx, y0 + s * 0.2, cx + 2 * r, y0 + s * 0.2 + 2 * r), fill=color)
        draw.polygon([(cx - 2 * r + 1, y0 + s * 0.2 + r * 1.2), (cx + 2 * r - 1, y0 + s * 0.2 + r * 1.2),
                      (cx, y1 - s * 0.12)], fill=color)
    elif kind == "star":
        pts = []
        for k in range(10):
            a = -math.pi / 2 + k * math.pi / 5
            rr = s * (0.45 if k % 2 == 0 else 0.19)
            pts.append((cx + math.cos(a) * rr, cy + math.sin(a) * rr))
        draw.polygon(pts, fill=color)
    elif kind == "plus":
        draw.rectangle((cx - s * 0.08, y0 + s * 0.15, cx + s * 0.08, y1 - s * 0.15), fill=color)
        draw.rectangle((x0 + s * 0.15, cy - s * 0.08, x1 - s * 0.15, cy + s * 0.08), fill=color)
    elif kind == "cross":
        draw.line((x0 + s * 0.2, y0 + s * 0.2, x1 - s * 0.2, y1 - s * 0.2), fill=color, width=w + 2)
        draw.line((x0 + s * 0.2, y1 - s * 0.2, x1 - s * 0.2, y0 + s * 0.2), fill=color, width=w + 2)
    elif kind == "bell":
        draw.chord((x0 + s * 0.2, y0 + s * 0.15, x1 - s * 0.2, y1 - s * 0.05), 180, 360, fill=color)
        draw.rectangle((x0 + s * 0.2, cy - s * 0.05, x1 - s * 0.2, y1 - s * 0.28), fill=color)
        draw.rectangle((x0 + s * 0.12, y1 - s * 0.3, x1 - s * 0.12, y1 - s * 0.22), fill=color)
        draw.ellipse((cx - s * 0.08, y1 - s * 0.22, cx + s * 0.08, y1 - s * 0.08), fill=color)
    elif kind == "menu":
        for fy in (0.25, 0.47, 0.69):
            draw.rectangle((x0 + s * 0.15, y0 + s * fy, x1 - s * 0.15, y0 + s * fy + s * 0.09), fill=color)
    else:
        raise ValueError(f"unknown icon kind {kind!r}; known: {', '.join(T.ICONS)}")


def _back_arrow(draw: Any, box: tuple[int, int, int, int], color: tuple[int, int, int]) -> None:
    x0, y0, x1, y1 = box
    cy = (y0 + y1) / 2
    draw.line((x0 + 4, cy, x1 - 4, cy), fill=color, width=2)
    draw.line((x0 + 4, cy, x0 + 10, cy - 6), fill=color, width=2)
    draw.line((x0 + 4, cy, x0 + 10, cy + 6), fill=color, width=2)


# ---------------------------------------------------------------------------- screens
class _Picker:
    """Draws labels without repetition on one screen (so every instruction is unambiguous)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.pools = {"text": list(T.TEXT_LABELS), "field": list(T.FIELD_LABELS), "toggle": list(T.TOGGLE_LABELS),
                      "icon": list(T.ICONS)}
        for p in self.pools.values():
            rng.shuffle(p)

    def take(self, pool: str) -> str | None:
        p = self.pools[pool]
        return p.pop() if p else None


@dataclass
class _Screen:
    """One screen being drawn: the canvas, its palette and scale, and the targetable elements so far."""

    d: Any  # PIL ImageDraw
    rng: np.random.Generator
    pick: _Picker
    font: Any
    ink: tuple[int, int, int]
    accent: tuple[int, int, int]
    size: int
    sc: float  # layout constants are for 256 px
    els: list[Element] = field(default_factory=list)

    def px(self, v: float) -> int:
        return round(v * self.sc)


def render_screen(rng: np.random.Generator, size: int = 256, *, cluttered: bool = False,
                  n_elements: tuple[int, int] = (6, 11)) -> tuple[Any, list[Element]]:
    """Draw one screen; returns (PIL image, targetable elements).

    The random draws happen in a fixed order (palette, labels, clutter, top bar, tabs, content rows,
    bottom bar): changing it changes every generated dataset and with it every published figure."""
    from PIL import Image, ImageDraw

    sc = size / 256.0
    bg = _rgb(rng, 225, 256) if not cluttered else _rgb(rng, 200, 245)
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    font = _font(max(8, round(13 * sc)))
    ink = _rgb(rng, 0, 70)
    accent = _rgb(rng, 40, 200)
    scr = _Screen(d, rng, _Picker(rng), font, ink, accent, size, sc)
    if cluttered:
        _clutter(scr)
    y = _top_bar(scr)
    if rng.random() < 0.5:
        y = _tab_row(scr, y)
    bottom = size - (scr.px(32) if rng.random() < 0.6 else 0)
    _content_rows(scr, y, bottom, int(rng.integers(n_elements[0], n_elements[1] + 1)), cluttered)
    if bottom < size:
        _bottom_bar(scr, bottom)
    return img, scr.els


def _clutter(scr: _Screen) -> None:
    """Textured background and distractor shapes: nothing in them is a target."""
    rng, d = scr.rng, scr.d
    for _ in range(int(rng.integers(25, 45))):
        x, y = rng.integers(0, scr.size, 2)
        r = int(rng.integers(2, max(3, scr.px(10))))
        c = _rgb(rng, 140, 230)
        if rng.random() < 0.5:
            d.ellipse((x - r, y - r, x + r, y + r), outline=c)
        else:
            d.line((x, y, x + rng.integers(-20, 20), y + rng.integers(-20, 20)), fill=c)


def _top_bar(scr: _Screen) -> int:
    """Back arrow, title and icon buttons at the right; returns the first free row below it."""
    d, white = scr.d, (255, 255, 255)
    bar_h = scr.px(30)
    d.rectangle((0, 0, scr.size, bar_h), fill=scr.accent)
    _back_arrow(d, (0, 0, scr.px(26), bar_h), white)
    title = scr.pick.take("text")
    if title is not None:  # a title is text but not a target (it is not clickable)
        d.text((scr.px(32), scr.px(7)), title, fill=white, font=scr.font)
    x_right = scr.size - scr.px(4)
    for _ in range(int(scr.rng.integers(1, 3))):
        kind = scr.pick.take("icon")
        if kind is None:
            break
        s = scr.px(24)
        box = (x_right - s, scr.px(3), x_right, scr.px(3) + s)
        draw_icon(d, kind, box, white)
        scr.els.append(Element("icon", box, kind))
        x_right -= s + scr.px(6)
    return bar_h + scr.px(4)


def _tab_row(scr: _Screen, y: int) -> int:
    """A row of 2-3 text tabs under the top bar; returns the first free row below it."""
    d = scr.d
    n_tabs = int(scr.rng.integers(2, 4))
    tab_w = scr.size // n_tabs
    for k in range(n_tabs):
        lab = scr.pick.take("text")
        if lab is None:
            break
        tw = d.textlength(lab, font=scr.font)
        tx = k * tab_w + (tab_w - tw) / 2
        d.text((tx, y + scr.px(3)), lab, fill=scr.ink, font=scr.font)
        scr.els.append(Element("tab", (int(tx) - 2, y, int(tx + tw) + 2, y + scr.px(20)), lab))
    d.line((0, y + scr.px(22), scr.size, y + scr.px(22)), fill=_rgb(scr.rng, 150, 200))
    return y + scr.px(26)


def _content_rows(scr: _Screen, y: int, bottom: int, want: int, cluttered: bool) -> None:
    """Rows of 1-3 content elements (buttons, fields, toggles, ...) until ``want`` targets or no room."""
    rng, size = scr.rng, scr.size
    row_h = scr.px(24 if cluttered else 30)
    while len(scr.els) < want and y + row_h <= bottom:
        per_row = int(rng.integers(1, 4 if cluttered else 3))
        cell_w = size // per_row
        placed = False
        for k in range(per_row):
            cell = (k * cell_w + scr.px(4), y, (k + 1) * cell_w - scr.px(4), y + row_h - scr.px(4))
            el = _content_element(scr.d, rng, scr.pick, scr.font, scr.ink, scr.accent, cell, scr.sc,
                                  full_row=per_row == 1)
            if el is not None:
                scr.els.append(el)
                placed = True
        if not placed:
            break
        y += row_h


def _bottom_bar(scr: _Screen, bottom: int) -> None:
    """Bottom navigation bar of 3-5 icons."""
    d, rng, size = scr.d, scr.rng, scr.size
    d.rectangle((0, bottom, size, size), fill=_rgb(rng, 235, 256))
    d.line((0, bottom, size, bottom), fill=_rgb(rng, 150, 200))
    n = int(rng.integers(3, 6))
    slot = size // n
    s = scr.px(24)
    for k in range(n):
        kind = scr.pick.take("icon")
        if kind is None:
            break
        bx = k * slot + (slot - s) // 2
        by = bottom + (size - bottom - s) // 2
        box = (bx, by, bx + s, by + s)
        draw_icon(d, kind, box, scr.ink)
        scr.els.append(Element("icon", box, kind))


def _content_element(d: Any, rng: np.random.Generator, pick: _Picker, font: Any, ink: tuple[int, int, int],
                     accent: tuple[int, int, int], cell: tuple[int, int, int, int], sc: float,
                     full_row: bool) -> Element | None:
    x0, y0, x1, y1 = cell
    h = y1 - y0
    r = float(rng.random())
    if r < 0.2 and (lab := pick.take("icon")) is not None:
        s = min(h, round(24 * sc))
        box = (x0, y0 + (h - s) // 2, x0 + s, y0 + (h - s) // 2 + s)
        if rng.random() < 0.5:
            d.rounded_rectangle(box, radius=3, outline=_rgb(rng, 120, 200))
        draw_icon(d, lab, box, accent if rng.random() < 0.5 else ink)
        return Element("icon", box, lab)
    if r < 0.38 and (lab := pick.take("field")) is not None:
        box = (x0, y0, x1, y1)
        d.rectangle(box, outline=_rgb(rng, 90, 160), fill=(255, 255, 255))
        d.text((x0 + round(5 * sc), y0 + (h - round(13 * sc)) // 2), lab, fill=_rgb(rng, 120, 170), font=font)
        return Element("field", box, lab)
    if r < 0.55 and (lab := pick.take("toggle")) is not None:
        d.text((x0 + round(2 * sc), y0 + (h - round(13 * sc)) // 2), lab, fill=ink, font=font)
        sw, sh = round(26 * sc), round(14 * sc)
        sx, sy = x1 - sw, y0 + (h - sh) // 2
        on = rng.random() < 0.5
        d.rounded_rectangle((sx, sy, sx + sw, sy + sh), radius=sh // 2, fill=accent if on else (170, 170, 170))
        kx = sx + sw - sh if on else sx
        d.ellipse((kx + 1, sy + 1, kx + sh - 1, sy + sh - 1), fill=(255, 255, 255))
        return Element("toggle", (sx - 2, sy - 2, sx + sw + 2, sy + sh + 2), lab)
    lab = pick.take("text")
    if lab is None:
        return None
    tw = d.textlength(lab, font=font)
    if full_row and rng.random() < 0.5:  # a list row: the whole row is clickable
        d.line((x0, y1, x1, y1), fill=_rgb(rng, 180, 220))
        d.text((x0 + round(4 * sc), y0 + (h - round(13 * sc)) // 2), lab, fill=ink, font=font)
        return Element("row", (x0, y0, x1, y1), lab)
    bw = int(tw) + round(14 * sc)
    box = (x0, y0, min(x1, x0 + bw), y1)
    filled = rng.random() < 0.5
    d.rounded_rectangle(box, radius=round(5 * sc), fill=accent if filled else None, outline=accent)
    d.text((x0 + round(7 * sc), y0 + (h - round(13 * sc)) // 2), lab,
           fill=(255, 255, 255) if filled else ink, font=font)
    return Element("button", box, lab)


# ---------------------------------------------------------------------------- instructions
def make_instruction(rng: np.random.Generator, elements: list[Element], *, paraphrase: bool,
                     back_fraction: float) -> tuple[str, int, Element | None]:
    """(instruction text, action id, target element or None for BACK)."""
    variant = 1 if paraphrase else 0
    if not elements or rng.random() < back_fraction:
        tpl = rng.choice(T.TEMPLATES["back"][variant])
        return str(tpl), T.BACK, None
    el = elements[int(rng.integers(len(elements)))]
    if el.kind == "icon":
        name = T.ICONS[el.label] if paraphrase else el.label
        return str(rng.choice(T.TEMPLATES["click_icon"][variant])).format(l=name), T.CLICK, el
    if el.kind == "field":
        name = T.FIELD_LABELS[el.label] if paraphrase else el.label
        value = str(rng.choice(T.VALUES))
        return str(rng.choice(T.TEMPLATES["type"][variant])).format(l=name, v=value), T.TYPE, el
    if el.kind == "toggle":
        name = T.TOGGLE_LABELS[el.label] if paraphrase else el.label
        return str(rng.choice(T.TEMPLATES["toggle"][variant])).format(l=name), T.TOGGLE, el
    name = T.TEXT_LABELS[el.label] if paraphrase else el.label
    return str(rng.choice(T.TEMPLATES["click_text"][variant])).format(l=name), T.CLICK, el


def make_sample(rng: np.random.Generator, size: int = 256, *, cluttered: bool = False, paraphrase: bool = False,
                n_elements: tuple[int, int] = (6, 11), back_fraction: float = 0.08) -> Sample:
    img, els = render_screen(rng, size, cluttered=cluttered, n_elements=n_elements)
    text, action, target = make_instruction(rng, els, paraphrase=paraphrase, back_fraction=back_fraction)
    return Sample(img, tuple(els), text, action, target)
