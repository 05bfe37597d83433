"""Profiler tests use edgekd's ONNX Runtime backend when it exists, else a private adapter."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def ort_backend(monkeypatch: pytest.MonkeyPatch) -> str:
    """The module path serving runtime 'onnxruntime' in this test."""
    import edgekd.runtime as rt

    if importlib.util.find_spec("edgekd.runtime.onnxruntime") is None:
        monkeypatch.setitem(rt._BACKENDS, "onnxruntime", "_profile_helpers")
        return "_profile_helpers"
    return "edgekd.runtime.onnxruntime"
