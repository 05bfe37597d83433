"""Training checkpoints: one safetensors file, written atomically, no pickle anywhere.

``last.safetensors`` holds every tensor needed to continue a run (student weights under
``student.``, loss-term weights such as projectors under ``term.<i>.``, optimizer state
under ``optim.``, RNG states under ``rng.``) and, in the safetensors header metadata
(key ``edgekd``), a JSON document with everything else: epoch/step, the resolved train
config, scheduler and optimizer hyper-parameters, the Python/numpy RNG positions, the
history and the best metric. Because it is one file renamed into place, a crash leaves
the previous checkpoint or the new one, never a mix. ``last.json`` beside it is a
human-readable copy of that metadata (never read back).

The metadata also carries ``sha256``: a digest of every tensor (name, dtype, shape, bytes) and
of the rest of the metadata, checked on every load, so a bit flip, a partial copy or an edit
is refused (naming the file and how to recover) instead of training on from damaged state.
Files written before this check existed have no digest and load unchecked.

``best.safetensors`` holds only the student and term weights of the best validation epoch.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekd.errors import TrainingError
from edgekd.fileio import atomic_path, write_json

FORMAT = "edgekd.checkpoint/1"
META_KEY = "edgekd"


def _cpu(t: torch.Tensor) -> torch.Tensor:
    # clone: safetensors refuses tensors that share storage (tied weights, views).
    return t.detach().to("cpu").contiguous().clone()


def module_tensors(student: nn.Module, terms: Sequence[nn.Module]) -> dict[str, torch.Tensor]:
    out = {f"student.{k}": _cpu(v) for k, v in student.state_dict().items()}
    for i, term in enumerate(terms):
        out.update({f"term.{i}.{k}": _cpu(v) for k, v in term.state_dict().items()})
    return out


def load_module_tensors(tensors: Mapping[str, torch.Tensor], student: nn.Module, terms: Sequence[nn.Module],
                        path: Path | str) -> None:
    def sub(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    try:
        student.load_state_dict(sub("student."), strict=True)
        for i, term in enumerate(terms):
            term.load_state_dict(sub(f"term.{i}."), strict=True)
    except RuntimeError as exc:
        raise TrainingError(
            f"checkpoint {path} does not fit this student/loss terms: {str(exc).splitlines()[0]}",
            hint="resume with the same student architecture and losses, or start a fresh out_dir",
        ) from None


# ---------------------------------------------------------------- optimizer state
def optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for name, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{name}"] = _cpu(value)
            elif value is not None:
                scalars.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer_state(opt: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, sc in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(sc)
    groups = [dict(g) for g in meta["param_groups"]]
    for g in groups:
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})


# ---------------------------------------------------------------- RNG state
def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state().clone()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s.clone()
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    py_version, py_state, py_gauss = random.getstate()
    meta = {"numpy": [kind, int(pos), int(has_gauss), float(gauss)],
            "python": [py_version, list(py_state), py_gauss]}
    return tensors, meta


def set_rng_state(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    kind, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    py_version, py_state, py_gauss = meta["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))


# ---------------------------------------------------------------- files
def save(path: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    """Write tensors + JSON metadata as one safetensors file, atomically; then the readable side copy."""
    from safetensors.torch import save_file

    doc = {"format": FORMAT, **meta}
    doc["sha256"] = content_sha256(tensors, doc)
    with atomic_path(path) as tmp:
        save_file(dict(tensors), str(tmp), metadata={META_KEY: json.dumps(doc)})
    write_json(path.with_suffix(".json"), doc)


def content_sha256(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> str:
    """sha256 over the tensors (sorted by name: name, dtype, shape, raw bytes) and the metadata without its
    own ``sha256`` key (canonical JSON). Independent of the file layout, so it can live inside the file."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    # through JSON first: the digest must read the same before saving (tuples, int keys) and after loading
    rest = json.loads(json.dumps({k: v for k, v in meta.items() if k != "sha256"}))
    h.update(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


def remove_stale_temps(out_dir: Path) -> list[Path]:
    """Delete temporary files a killed writer left in ``out_dir`` (``.NAME.<random>.tmp<suffix>``
    from edgekd.fileio.atomic_path): a SIGKILL during a save skips atomic_path's own clean-up."""
    removed = []
    if out_dir.is_dir():
        for name in ("last.safetensors", "last.json", "best.safetensors", "best.json"):
            stem, suffix = name.rsplit(".", 1)
            for p in out_dir.glob(f".{name}.*.tmp.{suffix}"):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def load(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    if not path.is_file():
        raise TrainingError(f"no checkpoint at {path}", hint="run without --resume to start a new run")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
        tensors = load_file(str(path))
        meta = json.loads(header.get(META_KEY, "{}"))
    except Exception as exc:  # a foreign or damaged file
        raise TrainingError(f"cannot read checkpoint {path}: {exc}",
                            hint=f"delete {path} and run again without --resume, or point --out elsewhere") from None
    if meta.get("format") != FORMAT:
        raise TrainingError(f"{path} is not an edgekd training checkpoint (format {meta.get('format')!r}, "
                            f"expected {FORMAT!r})", hint="start a fresh run in another out_dir")
    if "sha256" in meta and content_sha256(tensors, meta) != meta["sha256"]:
        raise TrainingError(
            f"checkpoint {path} is damaged: its contents no longer match the sha256 recorded when it was "
            "written (a flipped bit, a partial copy or an edit)",
            hint=f"delete {path} and run again without --resume (training restarts from the beginning)")
    return tensors, meta


def save_weights(path: Path, student: nn.Module, terms: Sequence[nn.Module], meta: Mapping[str, Any]) -> None:
    save(path, module_tensors(student, terms), {"kind": "weights", **meta})


def load_weights(path: Path, student: nn.Module, terms: Sequence[nn.Module] = ()) -> dict[str, Any]:
    """Load the student (and term) weights from a checkpoint or best-weights file; return its metadata."""
    tensors, meta = load(path)
    if terms:
        load_module_tensors(tensors, student, terms, path)
    else:
        sub = {k[len("student."):]: v for k, v in tensors.items() if k.startswith("student.")}
        try:
            student.load_state_dict(sub, strict=True)
        except RuntimeError as exc:
            raise TrainingError(f"checkpoint {path} does not fit this student: {str(exc).splitlines()[0]}",
                                hint="build the same student architecture the checkpoint was trained with") \
                from None
    return meta


def config_diff(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON documents differ, with both values."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for k in sorted(set(saved) | set(current)):
            key = f"{prefix}.{k}" if prefix else str(k)
            if k not in saved or k not in current:
                out.append(f"{key}: checkpoint has {saved.get(k, '(absent)')!r}, this run has "
                           f"{current.get(k, '(absent)')!r}")
            else:
                out.extend(config_diff(saved[k], current[k], key))
        return out
    if isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current):
        return [d for i, (a, b) in enumerate(zip(saved, current, strict=True))
                for d in config_diff(a, b, f"{prefix}.{i}")]
    return [] if saved == current else [f"{prefix}: checkpoint has {saved!r}, this run has {current!r}"]
