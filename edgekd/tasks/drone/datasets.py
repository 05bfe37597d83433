"""Loader for real-flight logs: camera frames plus the command labels recorded with them.

Assumed layout (NSER-IBVS releases its flights as per-flight folders of frames next to a table of
commands; the exact column names vary between releases, so they are parameters here)::

    ROOT/
      <flight>/                 one folder per flight, any name (sorted by name)
        frames/                 the camera images, PNG or JPEG, any resolution, RGB or grey
          000000.png
          000001.png
          ...
        commands.csv            one row per labelled frame, with a header line:
                                frame,vx,vy,wz[,...]   (extra columns, e.g. timestamp, are ignored)

- ``frame``: the frame's file name with or without extension (``000001`` or ``000001.png``), or
  its integer index in the sorted frames folder.
- ``vx, vy, wz``: the commanded body velocities (forward, left, yaw rate counter-clockwise) as
  the controller sent them; ``scale`` divides them into the task's normalised [-1, 1] range
  (pass the flight's v_max, v_max, w_max), and values are clipped to [-1, 1] after scaling.

Frames are resized to ``image_size`` x ``image_size`` (bilinear) and returned as items of the
drone task: ``image`` [3, S, S] float32 in [0, 1], ``command`` [3], ``labelled`` = 1.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from edgekd.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class FlightSample:
    flight: str
    frame: Path
    command: tuple[float, float, float]


def _flight_samples(folder: Path, columns: Sequence[str], frame_column: str,
                    scale: Sequence[float]) -> list[FlightSample]:
    frames_dir = folder / "frames"
    table = folder / "commands.csv"
    if not frames_dir.is_dir() or not table.is_file():
        raise ConfigError(f"flight folder {folder}: expected frames/ and commands.csv inside",
                          hint="see edgekd.tasks.drone.datasets for the layout the loader reads")
    files = sorted(p for p in frames_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    by_name = {p.name: p for p in files} | {p.stem: p for p in files}
    out = []
    with open(table, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in (frame_column, *columns) if c not in header]
        if missing:
            raise ConfigError(f"{table}: columns {missing} are missing (header: {header})",
                              hint="pass columns=... and frame_column=... naming this file's columns")
        for row_no, row in enumerate(reader, start=2):
            key = row[frame_column].strip()
            path = by_name.get(key)
            if path is None and key.isdigit() and int(key) < len(files):
                path = files[int(key)]
            if path is None:
                raise ConfigError(f"{table} line {row_no}: frame {key!r} is not in {frames_dir}",
                                  hint="name frames by file name (with or without extension) or sorted index")
            try:
                vals = [float(row[c]) / s for c, s in zip(columns, scale, strict=True)]
            except ValueError:
                raise ConfigError(f"{table} line {row_no}: a command value is not a number: "
                                  f"{[row[c] for c in columns]}") from None
            out.append(FlightSample(folder.name, path, tuple(float(np.clip(v, -1, 1)) for v in vals)))  # type: ignore[arg-type]
    return out


class FlightLogs(Dataset):  # type: ignore[type-arg]
    """Every labelled frame of every flight under ``root`` (frames are read lazily)."""

    def __init__(self, root: str | Path, image_size: int = 96, *, columns: Sequence[str] = ("vx", "vy", "wz"),
                 frame_column: str = "frame", scale: Sequence[float] = (1.0, 1.0, 1.0),
                 flights: Sequence[str] | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ConfigError(f"flight logs root {self.root}: no such folder",
                              hint="point it at the folder holding one sub-folder per flight")
        if len(columns) != 3 or len(scale) != 3 or any(s == 0 for s in scale):
            raise ConfigError(f"columns={list(columns)}, scale={list(scale)}: need 3 columns (v_x, v_y, w_z) "
                              "and 3 non-zero scales")
        folders = sorted(p for p in self.root.iterdir() if p.is_dir())
        if flights is not None:
            unknown = sorted(set(flights) - {p.name for p in folders})
            if unknown:
                raise ConfigError(f"flights {unknown} are not folders of {self.root}",
                                  hint=f"known flights: {[p.name for p in folders]}")
            folders = [p for p in folders if p.name in set(flights)]
        self.samples = [s for f in folders for s in _flight_samples(f, columns, frame_column, scale)]
        if not self.samples:
            raise ConfigError(f"flight logs root {self.root}: no labelled frames found",
                              hint="each flight needs frames/ and a commands.csv with at least one row")
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.samples)

    def flights(self) -> list[str]:
        return sorted({s.flight for s in self.samples})

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        from PIL import Image

        s = self.samples[i]
        with Image.open(s.frame) as im:
            rgb = im.convert("RGB").resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
            arr = np.asarray(rgb, dtype=np.float32) / 255.0
        return {"image": torch.from_numpy(arr.transpose(2, 0, 1).copy()),
                "command": torch.tensor(s.command, dtype=torch.float32),
                "labelled": torch.tensor(1.0)}


LAYOUT = "<root>/<flight>/frames/*.png|jpg and <root>/<flight>/commands.csv (header: frame,vx,vy,wz)"


def _is_flight(folder: Path) -> bool:
    return (folder / "frames").is_dir() and (folder / "commands.csv").is_file()


def layout_problem(root: Path | None, holdout: int) -> str | None:
    """A one-line problem with ``task.root`` for ``task.source: flight_logs`` (None: the layout looks right):
    each sub-folder is a flight holding frames/ and commands.csv, and there are more flights than held out."""
    if root is None:
        return f"task.source='flight_logs' needs task.root, the folder of flights ({LAYOUT}); or use source: sim"
    root = Path(root).expanduser()
    if not root.is_dir():
        return f"task.root={str(root)!r}: no such folder (flight logs are laid out as {LAYOUT})"
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    bad = [p.name for p in folders if not _is_flight(p)]
    if not folders or bad:
        what = f"sub-folders {bad} lack frames/ or commands.csv" if bad else "it has no flight sub-folder"
        return f"task.root={str(root)!r} is not a folder of flight logs: {what}; expected {LAYOUT}"
    if len(folders) <= holdout:
        return (f"task.root={str(root)!r} has {len(folders)} flight(s); task.logs.holdout_flights={holdout} are "
                "held out for val/test, so at least one more is needed for training")
    return None


def flight_split(cfg: Any, split: str) -> Dataset:  # type: ignore[type-arg]
    """``train``: every flight but the last ``holdout_flights`` (by name), augmented per access when
    ``task.augment``; ``val`` and ``test``: the held-out flights (for calibration and parity feeds: the
    task's metric flies the simulator in closed loop, which recorded flights cannot replay)."""
    logs = cfg.logs
    names = sorted(p.name for p in Path(cfg.root).iterdir() if p.is_dir())
    chosen = names[:-logs.holdout_flights] if split == "train" else names[-logs.holdout_flights:]
    ds = FlightLogs(cfg.root, cfg.image_size, columns=logs.columns, frame_column=logs.frame_column,
                    scale=logs.scale, flights=chosen)
    return _Augmented(ds, cfg.salt_pepper) if split == "train" and cfg.augment else ds


class _Augmented(Dataset):  # type: ignore[type-arg]
    """Photometric augmentation drawn per access (as the simulated train split has)."""

    def __init__(self, base: FlightLogs, salt_pepper: float) -> None:
        self.base, self.salt_pepper = base, salt_pepper

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        from edgekd.tasks.drone.augment import augment

        item = self.base[i]
        return {**item, "image": augment(item["image"], self.salt_pepper)}
