"""Aria Everyday Activities (AEA)-style eye-gaze CSV exports (Project Aria, Machine Perception Services).

On-disk layout: ``<root>/<recording>/eye_gaze/general_eye_gaze.csv`` (or ``personalized_eye_gaze.csv``),
as MPS writes it: ``tracking_timestamp_us`` and the gaze in the Central Pupil Frame, ``yaw_rads_cpf``
and ``pitch_rads_cpf`` in radians (older exports: ``left_yaw_rads_cpf``/``right_yaw_rads_cpf`` and
``pitch_rads_cpf``; their mean yaw is used). The eye-tracking frames are not in the CSV (they live
in the VRS recording); edgekd reads them exported as ``<root>/<recording>/eye_frames/<timestamp_us>.png``
(an edgekd layout, one PNG per tracked frame; rows without a frame are skipped).

Convention: Aria's direction is ``(tan yaw, tan pitch, 1)`` in CPF (x to the wearer's left, y up, z
forward); :func:`convention.from_aria_cpf` converts. ``wearer`` is the recording's index.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from edgekd.errors import ConfigError
from edgekd.tasks.gaze.loaders._common import pack, read_image, require_dir, resize
from edgekd.tasks.gaze.loaders.convention import from_aria_cpf
from edgekd.tasks.gaze.synth import GazeArrays

CSV_NAMES = ("general_eye_gaze.csv", "personalized_eye_gaze.csv")


def read_gaze_csv(path: Path) -> dict[int, np.ndarray]:
    """``timestamp_us -> edgekd (yaw, pitch) degrees`` from one MPS eye-gaze CSV."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or ())
        if "tracking_timestamp_us" not in cols or "pitch_rads_cpf" not in cols or not (
                "yaw_rads_cpf" in cols or {"left_yaw_rads_cpf", "right_yaw_rads_cpf"} <= cols):
            raise ConfigError(f"{path}: columns {sorted(cols)} are not an Aria eye-gaze CSV",
                              hint="expected tracking_timestamp_us, yaw_rads_cpf (or left_/right_yaw_rads_cpf), "
                              "pitch_rads_cpf")
        ts, yaw, pitch = [], [], []
        for i, row in enumerate(reader, start=2):
            try:
                y = float(row["yaw_rads_cpf"]) if row.get("yaw_rads_cpf") not in (None, "") else \
                    0.5 * (float(row["left_yaw_rads_cpf"]) + float(row["right_yaw_rads_cpf"]))
                ts.append(int(float(row["tracking_timestamp_us"])))
                yaw.append(y)
                pitch.append(float(row["pitch_rads_cpf"]))
            except (TypeError, ValueError):
                raise ConfigError(f"{path}, line {i}: non-numeric timestamp/yaw/pitch {row}") from None
    ang = from_aria_cpf(np.asarray(yaw), np.asarray(pitch)) if ts else np.zeros((0, 2))
    return {t: a for t, a in zip(ts, ang, strict=True)}


def load_aea(root: str | Path, *, recordings: list[str] | None = None, size: tuple[int, int] | None = (64, 96),
             personalized: bool = False) -> GazeArrays:
    base = require_dir(Path(root), "AEA root", "give the folder holding <recording>/eye_gaze/*.csv and "
                       "<recording>/eye_frames/<timestamp_us>.png")
    recs = sorted(p for p in base.iterdir() if p.is_dir() and (p / "eye_gaze").is_dir())
    if recordings is not None:
        recs = [r for r in recs if r.name in recordings]
    name = CSV_NAMES[1] if personalized else CSV_NAMES[0]
    images, gaze, wearer = [], [], []
    for k, rec in enumerate(recs):
        f = rec / "eye_gaze" / name
        if not f.is_file():
            raise ConfigError(f"recording {rec.name}: no {f}", hint=f"MPS writes eye_gaze/{name}")
        labels = read_gaze_csv(f)
        frames = rec / "eye_frames"
        for png in sorted(frames.glob("*.png")) if frames.is_dir() else []:
            if png.stem.isdigit() and int(png.stem) in labels:
                images.append(resize(read_image(png), size))
                gaze.append(labels[int(png.stem)])
                wearer.append(k)
    return pack(images, np.asarray(gaze).reshape(-1, 2), wearer, f"AEA {base}")
