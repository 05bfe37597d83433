"""OpenEDS2020, gaze prediction track (Palmero et al., "OpenEDS2020: Open Eyes Dataset", arXiv:2005.03876).

On-disk layout: ``<root>/<split>/sequences/<sequence id>/<frame>.png`` (near-eye IR images, 640x400
grayscale, one folder per sequence, frames numbered from 0) and ``<root>/<split>/labels/<sequence id>.txt``
with one row per labelled frame: ``frame, x, y, z`` (a unit gaze vector; comma or whitespace separated;
rows of only ``x, y, z`` are taken as frames 0, 1, 2...). Frames without a label row (the hidden
future frames of the test split) are skipped.

Convention: the vectors point forward out of the face (z > 0 looking ahead). The files do not say
which way x and y point; the defaults (``x_axis='right'``, ``y_axis='down'``, i.e. an OpenCV-like
frame with z forward) are an ASSUMPTION to verify on the data (e.g. mean vertical gaze of a
look-up task); both are parameters. Conversion: :func:`convention.from_head_vector`. OpenEDS2020's
gaze set does not identify participants: ``wearer`` is the sequence's index (per-wearer numbers are
then per sequence).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np

from edgekd.errors import ConfigError
from edgekd.tasks.gaze.loaders._common import pack, read_image, require_dir, resize
from edgekd.tasks.gaze.loaders.convention import from_head_vector
from edgekd.tasks.gaze.synth import GazeArrays


def read_label_file(path: Path) -> dict[int, np.ndarray]:
    """``frame -> [3] vector`` from one OpenEDS2020 label file."""
    out: dict[int, np.ndarray] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        fields = [f for f in re.split(r"[,\s]+", line.strip()) if f]
        if not fields:
            continue
        try:
            vals = [float(f) for f in fields]
        except ValueError:
            if i == 0:
                continue  # a header row
            raise ConfigError(f"{path}, line {i + 1}: {line!r} is not numeric",
                              hint="rows are 'frame, x, y, z' (or 'x, y, z')") from None
        if len(vals) == 4:
            out[int(vals[0])] = np.asarray(vals[1:])
        elif len(vals) == 3:
            out[len(out)] = np.asarray(vals)
        else:
            raise ConfigError(f"{path}, line {i + 1}: {len(vals)} values; expected 'frame, x, y, z' or 'x, y, z'")
    return out


def load_openeds2020(root: str | Path, split: str = "train", *, max_sequences: int | None = None,
                     size: tuple[int, int] | None = (64, 96), x_axis: Literal["left", "right"] = "right",
                     y_axis: Literal["up", "down"] = "down") -> GazeArrays:
    base = require_dir(Path(root) / split, f"OpenEDS2020 split folder (split={split!r})",
                       "give the openEDS2020-GazePrediction folder holding train/, validation/, test/")
    seq_dir = require_dir(base / "sequences", "OpenEDS2020 sequences folder", "expected <split>/sequences/<id>/")
    lab_dir = require_dir(base / "labels", "OpenEDS2020 labels folder", "expected <split>/labels/<id>.txt")
    seqs = sorted(p for p in seq_dir.iterdir() if p.is_dir())[:max_sequences]
    images, vecs, wearer = [], [], []
    for k, seq in enumerate(seqs):
        lf = lab_dir / f"{seq.name}.txt"
        if not lf.is_file():
            raise ConfigError(f"sequence {seq.name}: no label file {lf}", hint="every sequence needs labels/<id>.txt")
        labels = read_label_file(lf)
        for png in sorted(seq.glob("*.png")):
            if not png.stem.isdigit() or int(png.stem) not in labels:
                continue
            images.append(resize(read_image(png), size))
            vecs.append(labels[int(png.stem)])
            wearer.append(k)
    gaze = from_head_vector(np.asarray(vecs).reshape(-1, 3), x_axis=x_axis, y_axis=y_axis) if vecs \
        else np.zeros((0, 2))
    return pack(images, gaze, wearer, f"OpenEDS2020 {base}")
