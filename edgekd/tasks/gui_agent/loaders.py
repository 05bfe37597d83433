"""Real GUI-grounding sets read from their on-disk layout into :class:`GuiArrays`.

- **ScreenSpot** (Cheng et al., SeeClick, arXiv:2401.10935): ``screenspot_{mobile,web,desktop}.json``
  (lists of ``{"img_filename", "bbox": [x, y, w, h], "instruction", "data_type": "text"|"icon", ...}``)
  next to an image folder ``screenspot_imgs/`` (or ``images/``).
- **ScreenSpot-Pro** (Li et al., arXiv:2504.07981): ``annotations/*.json`` (lists of
  ``{"img_filename", "bbox": [x1, y1, x2, y2], "instruction", "ui_type": "text"|"icon", ...}``)
  with images under ``images/`` (``img_filename`` relative to it).

Screens are letterboxed to a square (padding right/bottom, so boxes keep their coordinates
up to the scale) and resized to ``image_size``; every target is a CLICK. Instruction words
outside the closed vocabulary become UNK: these splits measure transfer, not in-domain skill.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError
from edgekd.tasks.gui_agent import tokens as T
from edgekd.tasks.gui_agent.data import GuiArrays
from edgekd.tasks.gui_agent.render import ICON, TEXT


def _square(img: Any, size: int) -> tuple[np.ndarray, float]:
    """Letterbox to a square (top-left aligned) and resize; returns (uint8 [3,S,S], scale)."""
    from PIL import Image

    im = img.convert("RGB")
    side = max(im.size)
    canvas = Image.new("RGB", (side, side), (0, 0, 0))
    canvas.paste(im, (0, 0))
    out = canvas.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.uint8).transpose(2, 0, 1).copy(), size / side


def _read_json(path: Path, what: str) -> list[dict[str, Any]]:
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{what} annotation file {str(path)!r} cannot be read: {exc}",
                          hint="point the split's folder at an unmodified copy of the dataset") from exc
    if not isinstance(items, list):
        raise ConfigError(f"{what} annotation file {str(path)!r} holds a {type(items).__name__}, expected a list "
                          "of samples", hint="use the dataset's original json files")
    return items


def _build(records: list[tuple[Path, list[float], str, str]], *, image_size: int, n_bins: int, max_tokens: int,
           xyxy: bool, what: str) -> GuiArrays:
    from PIL import Image

    n = len(records)
    if n == 0:
        raise ConfigError(f"{what}: no samples found", hint="check the folder layout (see edgekd.tasks.gui_agent."
                          "loaders)")
    images = np.empty((n, 3, image_size, image_size), dtype=np.uint8)
    toks = np.empty((n, max_tokens), dtype=np.int64)
    truth = np.empty((n, 3), dtype=np.int64)
    boxes = np.empty((n, 4), dtype=np.float32)
    ttype = np.empty(n, dtype=np.int64)
    texts = []
    for i, (img_path, bbox, instruction, dtype) in enumerate(records):
        if not img_path.is_file():
            raise ConfigError(f"{what}: image {str(img_path)!r} (sample {i}) does not exist",
                              hint="keep the images next to the annotations as the dataset ships them")
        if len(bbox) != 4:
            raise ConfigError(f"{what}: sample {i} has bbox={bbox!r}; expected 4 numbers")
        with Image.open(img_path) as im:
            images[i], scale = _square(im, image_size)
        x0, y0, a, b = (float(v) for v in bbox)
        x1, y1 = (a, b) if xyxy else (x0 + a, y0 + b)
        if x1 < x0 or y1 < y0:
            raise ConfigError(f"{what}: sample {i} bbox={bbox!r} has negative size "
                              f"({'x1,y1 must be >= x0,y0' if xyxy else 'w,h must be >= 0'})")
        boxes[i] = np.array([x0, y0, x1, y1], dtype=np.float32) * scale
        toks[i] = T.tokenize(instruction, max_tokens)
        truth[i] = T.encode_target(T.CLICK, ((boxes[i, 0] + boxes[i, 2]) / 2, (boxes[i, 1] + boxes[i, 3]) / 2),
                                   image_size, n_bins)
        if dtype not in ("text", "icon"):
            raise ConfigError(f"{what}: sample {i} has type {dtype!r}; allowed are 'text' and 'icon'")
        ttype[i] = TEXT if dtype == "text" else ICON
        texts.append(instruction)
    return GuiArrays(images, toks, truth, boxes, ttype, np.ones(n, dtype=bool), texts)


def load_screenspot(root: Path, *, image_size: int, n_bins: int, max_tokens: int,
                    limit: int | None = None) -> GuiArrays:
    """ScreenSpot from ``root`` (module docstring)."""
    root = Path(root)
    files = sorted(root.glob("screenspot_*.json"))
    if not files:
        raise ConfigError(f"task.screenspot_dir={str(root)!r} holds no screenspot_*.json",
                          hint="point it at the folder with screenspot_mobile.json / _web / _desktop and the images")
    img_dir = next((d for d in (root / "screenspot_imgs", root / "images") if d.is_dir()), root)
    records = []
    for f in files:
        for s in _read_json(f, "ScreenSpot"):
            try:
                records.append((img_dir / s["img_filename"], list(s["bbox"]), str(s["instruction"]),
                                str(s.get("data_type", "text"))))
            except KeyError as exc:
                raise ConfigError(f"ScreenSpot file {f.name}: a sample lacks key {exc}",
                                  hint="each sample needs img_filename, bbox [x,y,w,h], instruction") from None
    return _build(records[:limit], image_size=image_size, n_bins=n_bins, max_tokens=max_tokens, xyxy=False,
                  what="ScreenSpot")


def load_screenspot_pro(root: Path, *, image_size: int, n_bins: int, max_tokens: int,
                        limit: int | None = None) -> GuiArrays:
    """ScreenSpot-Pro from ``root`` (module docstring)."""
    root = Path(root)
    files = sorted((root / "annotations").glob("*.json"))
    if not files:
        raise ConfigError(f"task.screenspot_pro_dir={str(root)!r} has no annotations/*.json",
                          hint="point it at the ScreenSpot-Pro folder holding annotations/ and images/")
    records = []
    for f in files:
        for s in _read_json(f, "ScreenSpot-Pro"):
            try:
                records.append((root / "images" / s["img_filename"], list(s["bbox"]), str(s["instruction"]),
                                str(s.get("ui_type", "text"))))
            except KeyError as exc:
                raise ConfigError(f"ScreenSpot-Pro file {f.name}: a sample lacks key {exc}",
                                  hint="each sample needs img_filename, bbox [x1,y1,x2,y2], instruction") from None
    return _build(records[:limit], image_size=image_size, n_bins=n_bins, max_tokens=max_tokens, xyxy=True,
                  what="ScreenSpot-Pro")
