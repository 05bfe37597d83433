"""ETH-XGaze (Zhang et al., "ETH-XGaze: A Large Scale Dataset for Gaze Estimation under Extreme Head
Pose and Gaze Variation", ECCV 2020).

On-disk layout (the pre-normalized release): ``xgaze_224/{train,test}/subjectNNNN.h5``, one HDF5 file
per subject with ``face_patch`` [N, 224, 224, 3] uint8 in BGR order (OpenCV), ``face_gaze`` [N, 2]
(pitch, yaw) in radians (absent in the test split), ``face_head_pose`` [N, 2], ``frame_index`` and
``cam_index``. Needs ``h5py`` (the ``datasets`` extra), imported lazily.

Convention: (pitch, yaw) radians of the same vector formula as edgekd -> reorder and convert to
degrees (:func:`convention.from_pitchyaw_rad`). Images become grayscale (BT.601 on BGR) and are
resized to ``size`` when given (face patches, not near-eye crops: fine for pre-training or for
checking a pipeline, not a substitute for near-eye data).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgekd.errors import ConfigError, DependencyMissingError
from edgekd.tasks.gaze.loaders._common import pack, require_dir, resize, to_gray
from edgekd.tasks.gaze.loaders.convention import from_pitchyaw_rad
from edgekd.tasks.gaze.synth import GazeArrays


def _h5py():  # type: ignore[no-untyped-def]
    try:
        import h5py
    except ImportError:
        raise DependencyMissingError("h5py", "datasets", "reading ETH-XGaze HDF5 files") from None
    return h5py


def load_ethxgaze(root: str | Path, split: str = "train", *, subjects: list[int] | None = None,
                  max_per_subject: int | None = None, size: tuple[int, int] | None = (64, 96)) -> GazeArrays:
    """Load ``root/<split>/subject*.h5`` into GazeArrays; wearer = subject number."""
    h5py = _h5py()
    base = require_dir(Path(root) / split, f"ETH-XGaze split folder (split={split!r})",
                       "give the xgaze_224 folder holding train/ and test/ with subjectNNNN.h5 files")
    files = sorted(p for p in base.glob("subject*.h5") if re.fullmatch(r"subject\d+\.h5", p.name))
    if subjects is not None:
        files = [f for f in files if int(f.stem[len("subject"):]) in subjects]
    images, gaze, wearer = [], [], []
    for f in files:
        sid = int(f.stem[len("subject"):])
        try:
            with h5py.File(f, "r") as h:
                if "face_gaze" not in h:
                    raise ConfigError(f"{f}: no 'face_gaze' dataset (the ETH-XGaze test split has no labels)",
                                      hint="load split='train' (its subjects can be split for validation)")
                if "face_patch" not in h:
                    raise ConfigError(f"{f}: no 'face_patch' dataset; not an ETH-XGaze subject file")
                n = len(h["face_gaze"]) if max_per_subject is None else min(max_per_subject, len(h["face_gaze"]))
                patches = np.asarray(h["face_patch"][:n])
                py = np.asarray(h["face_gaze"][:n], dtype=np.float64)
        except OSError as exc:
            raise ConfigError(f"{f}: not a readable HDF5 file ({exc})") from None
        for i in range(n):
            images.append(resize(to_gray(patches[i], bgr=True), size))
        gaze.append(from_pitchyaw_rad(py))
        wearer.extend([sid] * n)
    return pack(images, np.concatenate(gaze) if gaze else np.zeros((0, 2)), wearer, f"ETH-XGaze {base}")
