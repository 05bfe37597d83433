"""Provenance: every output folder gets a manifest saying what made it (recipe hash,
resolved config, versions, steps applied) and the SHA-256 of each artifact."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edgekd.fileio import sha256_file, write_json

MANIFEST_SCHEMA = "edgekd.manifest/1"


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("edgekd", "torch", "numpy", "onnx", "onnxruntime", "onnxslim", "openvino", "nncf", "tensorrt"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=cwd or Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def artifact_entry(path: Path, out_dir: Path, **info: Any) -> dict[str, Any]:
    return {"path": str(path.relative_to(out_dir)) if path.is_relative_to(out_dir) else str(path),
            "sha256": sha256_file(path), "bytes": path.stat().st_size, **info}


def write_manifest(out_dir: Path, *, recipe_name: str, recipe_hash: str, recipe_config: dict[str, Any],
                   device: str, steps: list[dict[str, Any]], artifacts: list[dict[str, Any]]) -> Path:
    from edgekd.pipeline.models import Manifest

    path = out_dir / "manifest.json"
    doc = {
        "schema": MANIFEST_SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "recipe": recipe_name,
        "recipe_hash": recipe_hash,
        "recipe_config": recipe_config,
        "device": device,
        "command": " ".join(sys.argv),
        "git_commit": git_commit(),
        "versions": versions(),
        "host": {"machine": platform.machine(), "system": platform.system(), "node": platform.node()},
        "steps": steps,
        "artifacts": artifacts,
    }
    write_json(path, Manifest.model_validate(doc).model_dump(mode="json", by_alias=True, exclude_unset=True))
    return path
