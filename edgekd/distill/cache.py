"""Offline teacher cache: teacher outputs and tapped teacher features computed once over
the training set, stored as memory-mapped ``.npy`` files, reused across epochs and runs.

Layout: ``<root>/<teacher key[:16]>-<data key[:16]>/`` holding ``out_<k>.npy``,
``feat_<k>.npy`` and ``manifest.json``. The teacher key is sha256 of the teacher's weights
(or an analytic callable's qualified name) plus the cache configuration (input names,
tapped paths); the data key is sha256 of the dataset fingerprint. The manifest repeats
both full keys and the array shapes, and is written last: a folder without a matching,
complete manifest (and arrays of the recorded shape and size) is rebuilt, so a change of
teacher or data, a killed build or a truncated array never serves stale numbers or blocks a run. (The arrays are written in place through memory maps rather than
through edgekd.fileio: the atomically written manifest is what makes a build count.)

**Dataset contract.** Row ``i`` of the cache is the teacher's output on ``dataset[i]``
(unshuffled, un-augmented), and each training batch must say which rows it holds: items
carry an integer ``index`` key. :class:`IndexedDataset` adds it to any map-style dataset.
The dataset must return the same tensors for the same index every time (do random
augmentation in the loss, not in the dataset), else the cached teacher saw other inputs.
A dataset may define ``fingerprint() -> str`` to avoid hashing its contents.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from edgekd.distill import ddp
from edgekd.distill.teachers import Teacher
from edgekd.errors import ConfigError, TrainingError
from edgekd.fileio import write_json

CACHE_FORMAT = "edgekd.teacher_cache/1"


class IndexedDataset(Dataset):  # type: ignore[type-arg]
    """Adds ``index`` (int64 scalar) to each item of a map-style dataset."""

    def __init__(self, base: Dataset) -> None:  # type: ignore[type-arg]
        self.base = base

    @classmethod
    def wrap(cls, dataset: Dataset) -> Dataset:  # type: ignore[type-arg]
        item = dataset[0]
        if not isinstance(item, Mapping):
            raise ConfigError(f"dataset items are {type(item).__name__}, expected a dict of tensors",
                              hint="return {'x': tensor, ..., 'y': tensor} from __getitem__")
        return dataset if "index" in item else cls(dataset)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {**self.base[i], "index": torch.tensor(i, dtype=torch.int64)}

    def fingerprint(self) -> str:
        return dataset_fingerprint(self.base)


def check_deterministic(dataset: Dataset, input_names: Sequence[str], reads: int = 8) -> None:  # type: ignore[type-arg]
    """Read item 0 ``reads`` times; raise ConfigError if a model input changes between reads.

    Why: the cache stores the teacher's outputs for each index once. If the dataset draws its
    augmentation afresh on every access (a random flip, crop or noise), the student then trains
    against targets computed for a different input: no error, just a worse student (measured on
    the segmentation recipe with random flips: 33.1 instead of 52.1 mIoU). With a 50% flip, 8
    reads all alike happen by chance 1 time in 128.
    """
    first = dataset[0]
    for _ in range(reads - 1):
        again = dataset[0]
        for name in input_names:
            a, b = first.get(name), again.get(name)
            if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and not torch.equal(a, b):
                raise ConfigError(
                    f"distill.teacher_cache is on, but input {name!r} of dataset item 0 changed between two reads "
                    "(random augmentation drawn at every access?): cached teacher outputs would not match the "
                    "student's input",
                    hint="set distill.teacher_cache: false (the teacher then runs online on each augmented "
                         "batch), or make the augmentation a function of the index")


def dataset_fingerprint(dataset: Dataset, batch_size: int = 256) -> str:  # type: ignore[type-arg]
    """sha256 of every item's tensors (names, dtypes, shapes, bytes), or the dataset's own fingerprint()."""
    own = getattr(dataset, "fingerprint", None)
    if callable(own):
        return hashlib.sha256(f"own:{own()}".encode()).hexdigest()
    h = hashlib.sha256(f"n={len(dataset)}".encode())  # type: ignore[arg-type]
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        for k in sorted(batch):
            v = batch[k]
            if k == "index":
                continue
            t = v.detach().cpu().contiguous() if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))
            h.update(f"{k}|{t.dtype}|{tuple(t.shape)}".encode())
            h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _safe(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", path)


class TeacherCache:
    """Read access to a built cache: ``lookup(index_tensor, device) -> (outputs, features)``."""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest = manifest
        self.outputs = [np.load(folder / f["file"], mmap_mode="r") for f in manifest["outputs"]]
        self.features = {f["path"]: np.load(folder / f["file"], mmap_mode="r") for f in manifest["features"]}

    @staticmethod
    def keys(teacher: Teacher, dataset: Dataset, input_names: Sequence[str]) -> tuple[str, str]:  # type: ignore[type-arg]
        tconf = json.dumps({"teacher": teacher.fingerprint(), "inputs": list(input_names),
                            "taps": list(teacher.taps)}, sort_keys=True)
        return hashlib.sha256(tconf.encode()).hexdigest(), dataset_fingerprint(dataset)

    @classmethod
    def open_or_build(cls, root: Path, teacher: Teacher, dataset: Dataset, input_names: Sequence[str], *,  # type: ignore[type-arg]
                      batch_size: int = 256, info: ddp.DistInfo | None = None, progress: bool = False) -> TeacherCache:
        """Open the matching cache under ``root`` or build it (rank 0 builds; other ranks wait, then read)."""
        info = info or ddp.DistInfo()
        tkey, dkey = cls.keys(teacher, dataset, input_names)
        folder = root / f"{tkey[:16]}-{dkey[:16]}"
        if info.is_main and cls._valid(folder, tkey, dkey, len(dataset)) is None:  # type: ignore[arg-type]
            cls.build(folder, teacher, dataset, input_names, tkey, dkey, batch_size)
        ddp.barrier(info)
        manifest = cls._valid(folder, tkey, dkey, len(dataset))  # type: ignore[arg-type]
        if manifest is None:
            raise TrainingError(f"teacher cache {folder} is missing or incomplete after building",
                                hint="check that all ranks see the same filesystem, or delete the folder")
        return cls(folder, manifest)

    @staticmethod
    def _valid(folder: Path, tkey: str, dkey: str, n: int) -> dict[str, Any] | None:
        mf = folder / "manifest.json"
        if not mf.is_file():
            return None
        try:
            m = json.loads(mf.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # torn, binary or unreadable: rebuild
            return None
        ok = (isinstance(m, dict) and m.get("format") == CACHE_FORMAT and m.get("teacher_key") == tkey
              and m.get("data_key") == dkey and m.get("rows") == n
              and isinstance(m.get("outputs"), list) and isinstance(m.get("features"), list)
              and all(isinstance(f, dict) and _array_ok(folder, f) for f in m["outputs"] + m["features"]))
        return m if ok else None

    @staticmethod
    @torch.no_grad()
    def build(folder: Path, teacher: Teacher, dataset: Dataset, input_names: Sequence[str], tkey: str,  # type: ignore[type-arg]
              dkey: str, batch_size: int = 256) -> dict[str, Any]:
        """Run the teacher once over the dataset in index order and write the arrays and the manifest."""
        if folder.exists():
            shutil.rmtree(folder)  # stale or half-built: never mix rows of two builds
        folder.mkdir(parents=True)
        n = len(dataset)  # type: ignore[arg-type]
        outs: list[np.memmap] = []
        feats: dict[str, np.memmap] = {}
        row = 0
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            inputs = [batch[k].to(getattr(teacher, "device", "cpu")) for k in input_names]
            o, f = teacher(inputs)
            if not outs:
                outs = [_open(folder / f"out_{k}.npy", (n, *t.shape[1:]), t) for k, t in enumerate(o)]
                feats = {p: _open(folder / f"feat_{_safe(p)}.npy", (n, *t.shape[1:]), t) for p, t in f.items()}
            b = o[0].shape[0]
            for arr, t in zip(outs, o, strict=True):
                arr[row:row + b] = t.detach().float().cpu().numpy() if t.is_floating_point() else t.cpu().numpy()
            for p, t in f.items():
                feats[p][row:row + b] = t.detach().float().cpu().numpy()
            row += b
        for arr in [*outs, *feats.values()]:
            arr.flush()
        manifest = {
            "format": CACHE_FORMAT, "teacher_key": tkey, "data_key": dkey, "rows": n,
            "input_names": list(input_names),
            "outputs": [{"file": f"out_{k}.npy", "shape": list(a.shape), "dtype": str(a.dtype)}
                        for k, a in enumerate(outs)],
            "features": [{"path": p, "file": f"feat_{_safe(p)}.npy", "shape": list(a.shape), "dtype": str(a.dtype)}
                         for p, a in feats.items()],
        }
        write_json(folder / "manifest.json", manifest)  # last: its presence marks a complete build
        return manifest

    def lookup(self, index: torch.Tensor, device: torch.device | str) -> tuple[tuple[torch.Tensor, ...],
                                                                              dict[str, torch.Tensor]]:
        idx = index.detach().cpu().numpy().astype(np.int64).reshape(-1)
        # Fancy indexing copies just these rows out of the memory map.
        outs = tuple(torch.from_numpy(np.ascontiguousarray(a[idx])).to(device) for a in self.outputs)
        feats = {p: torch.from_numpy(np.ascontiguousarray(a[idx])).to(device) for p, a in self.features.items()}
        return outs, feats


def _array_ok(folder: Path, entry: dict[str, Any]) -> bool:
    """The array file exists, parses, and holds the shape and dtype the manifest records. A truncated file
    (disk full, a partial copy) fails here and the cache is rebuilt, instead of every run failing to map it."""
    try:
        arr = np.load(folder / entry["file"], mmap_mode="r")
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return list(arr.shape) == list(entry.get("shape", [])) and str(arr.dtype) == entry.get("dtype")


def _open(path: Path, shape: tuple[int, ...], like: torch.Tensor) -> np.memmap:
    dtype = np.float32 if like.is_floating_point() else like.cpu().numpy().dtype
    return np.lib.format.open_memmap(str(path), mode="w+", dtype=dtype, shape=shape)


__all__ = ["IndexedDataset", "TeacherCache", "dataset_fingerprint"]
