"""The layer contract (.importlinter): lower layers never import higher ones, not even lazily."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_layers_point_down() -> None:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    res = subprocess.run([exe, "--config", str(ROOT / ".importlinter"), "--no-cache"], cwd=ROOT,
                         capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                              "HOME": str(Path.home())}, timeout=120)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "1 kept, 0 broken" in res.stdout


def test_contract_names_every_subpackage() -> None:
    """A new subpackage must be placed in a layer, or the contract would not see it."""
    text = (ROOT / ".importlinter").read_text()
    pkgs = sorted(p.name for p in (ROOT / "edgekd").iterdir() if (p / "__init__.py").is_file())
    missing = [p for p in pkgs if f"edgekd.{p}" not in text]
    assert not missing, f"subpackages not placed in a layer of .importlinter: {missing}"
