"""``task.source`` / ``task.root`` for the gaze recipe: which loader reads a real dataset, what its folder
must look like (checked when the recipe is loaded), and how its labelled samples become the task's
wearer-disjoint train / val / test splits.

Splits: the labelled samples are loaded once (ETH-XGaze and OpenEDS2020: their ``train`` folder, whose
labels are public); their wearers (participants, subjects, sequences or recordings, as each loader
defines ``wearer``) are shuffled with the recipe's seed and dealt out: 20% of them to test, 10% to val
(at least one each), the rest to train, so no wearer is in two splits, as in the synthetic protocol.
``train_size`` / ``val_size`` / ``test_size`` cap each split (a seeded subset). Images are resized to
``height`` x ``width``. The synthetic-only fields (wearer counts, gaze ranges, kappa, noise,
``balance_clusters``) do not apply, and ``task.mae`` pre-training still draws synthetic eyes.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError
from edgekd.tasks.gaze.synth import GazeArrays

SOURCES = ("mpiigaze", "ethxgaze", "openeds2020", "aria")
NAMES = {"mpiigaze": "MPIIGaze", "ethxgaze": "ETH-XGaze", "openeds2020": "OpenEDS2020", "aria": "Aria (AEA)"}
LAYOUTS = {
    "mpiigaze": "<root>/Data/Normalized/pNN/dayMM.mat (or <root>/pNN/dayMM.mat)",
    "ethxgaze": "<root>/train/subjectNNNN.h5 (the pre-normalized xgaze_224 release)",
    "openeds2020": "<root>/train/sequences/<id>/<frame>.png and <root>/train/labels/<id>.txt",
    "aria": "<root>/<recording>/eye_gaze/general_eye_gaze.csv and <root>/<recording>/eye_frames/<timestamp_us>.png",
}
TEST_SHARE, VAL_SHARE = 0.2, 0.1

_LOADED: dict[tuple[str, str, int, int], GazeArrays] = {}
_LOCK = threading.Lock()


def _missing(source: str, root: Path) -> str | None:
    """What of the expected layout is absent under ``root`` (None: it looks right)."""
    if source == "mpiigaze":
        base = root / "Data" / "Normalized" if (root / "Data" / "Normalized").is_dir() else root
        people = [p for p in base.iterdir() if p.is_dir() and re.fullmatch(r"p\d+", p.name)]
        if not people:
            return f"no pNN participant folder in {base}"
        if not any(any(p.glob("day*.mat")) for p in people):
            return f"no dayMM.mat file in the participant folders of {base}"
    elif source == "ethxgaze":
        if not any((root / "train").glob("subject*.h5")):
            return f"no subject*.h5 file in {root / 'train'}"
    elif source == "openeds2020":
        for sub in ("sequences", "labels"):
            if not (root / "train" / sub).is_dir():
                return f"no folder {root / 'train' / sub}"
    elif source == "aria":
        recs = [p for p in root.iterdir() if p.is_dir() and any((p / "eye_gaze").glob("*_eye_gaze.csv"))]
        if not recs:
            return f"no <recording>/eye_gaze/*_eye_gaze.csv under {root}"
    return None


def layout_problem(source: str, root: Path | None) -> str | None:
    """A one-line problem with ``task.root`` for ``task.source``, naming the path and the expected layout."""
    if source not in SOURCES:
        return None
    layout = f"a {NAMES[source]} folder is laid out as {LAYOUTS[source]}"
    if root is None:
        return f"task.source={source!r} needs task.root, the dataset folder ({layout}); or use source: synth"
    root = Path(root).expanduser()
    if not root.is_dir():
        return f"task.root={str(root)!r}: no such folder ({layout})"
    missing = _missing(source, root)
    return None if missing is None else f"task.root={str(root)!r} is not a {NAMES[source]} folder: {missing}; {layout}"


def load_all(source: str, root: Path, height: int, width: int, total: int) -> GazeArrays:
    """Every labelled sample of the dataset at ``root`` (memoised per process)."""
    key = (source, str(Path(root).resolve()), height, width)
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
    from edgekd.tasks.gaze import loaders

    size = (height, width)
    if source == "mpiigaze":
        arrays = loaders.load_mpiigaze(root, size=size)
    elif source == "ethxgaze":
        # a subject holds thousands of 224x224 patches: read only what the splits can use
        n_subjects = max(1, len(list((Path(root) / "train").glob("subject*.h5"))))
        arrays = loaders.load_ethxgaze(root, "train", size=size, max_per_subject=2 * (total // n_subjects + 1))
    elif source == "openeds2020":
        arrays = loaders.load_openeds2020(root, "train", size=size)
    elif source == "aria":
        arrays = loaders.load_aea(root, size=size)
    else:
        raise ConfigError(f"task.source={source!r}: allowed are synth, {', '.join(SOURCES)}")
    with _LOCK:
        _LOADED[key] = arrays
    return arrays


def wearer_splits(wearers: np.ndarray, seed: int, where: str) -> dict[str, np.ndarray]:
    """Unique wearer ids dealt to test / val / train by a seeded shuffle."""
    ids = np.unique(wearers)
    if len(ids) < 3:
        raise ConfigError(f"{where}: {len(ids)} wearer(s) in the labelled data; the wearer-disjoint "
                          "train/val/test split needs at least 3",
                          hint="add participants/recordings, or use source: synth")
    ids = ids[np.random.default_rng([seed, 31_337]).permutation(len(ids))]
    n_test = max(1, round(TEST_SHARE * len(ids)))
    n_val = max(1, round(VAL_SHARE * len(ids)))
    return {"test": ids[:n_test], "val": ids[n_test:n_test + n_val], "train": ids[n_test + n_val:]}


def real_split(cfg: Any, split: str, seed: int) -> GazeArrays:
    """The ``split`` (train, val or test) of ``cfg.source`` at ``cfg.root``."""
    if cfg.root is None:  # the config validator refuses this; kept for direct construction
        raise ConfigError(f"task.source={cfg.source!r} needs task.root", hint=LAYOUTS[cfg.source])
    total = cfg.train_size + cfg.val_size + cfg.test_size
    arrays = load_all(cfg.source, cfg.root, cfg.height, cfg.width, total)
    ids = wearer_splits(arrays.wearer, seed, f"task.root={cfg.root}")[split]
    index = np.flatnonzero(np.isin(arrays.wearer, ids))
    cap = {"train": cfg.train_size, "val": cfg.val_size, "test": cfg.test_size}[split]
    if len(index) > cap:
        index = np.sort(np.random.default_rng([seed, 2_713, ("train", "val", "test").index(split)]).choice(index, cap, replace=False))
    return GazeArrays(arrays.images[index], arrays.gaze[index], arrays.optical[index], arrays.wearer[index])
