"""Gate test fixtures: tiny ONNX models and one real profile report of one of them; ``_gate_reports``
(on the path) builds honest synthetic reports on that report's fingerprint and runtime settings."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from edgekd.gate.synthetic import tiny_cnn

    d = tmp_path_factory.mktemp("models")
    return {"a": tiny_cnn(d / "a.onnx", channels=8, size=32), "b": tiny_cnn(d / "b.onnx", channels=8, size=32),
            "slow": tiny_cnn(d / "slow.onnx", channels=8, size=32, extra_ops=40)}


@pytest.fixture(scope="session")
def report(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ``edgekd.profile/1`` report of model ``a``, measured by the profiler with its ORT backend,
    as `edgekd profile` writes it (one artifact in this process: RSS scope "process")."""
    from edgekd.profile.protocol import MeasureConfig, ProfileTarget, profile_artifacts
    from edgekd.runtime.base import SessionOptions

    feeds = {"x": np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)}
    target = ProfileTarget(models["a"], "onnxruntime", SessionOptions(threads=1), feeds)
    [rep] = profile_artifacts([target], MeasureConfig(warmup_s=0.05, sessions=8, iterations=20,
                                                      min_duration_s=0.0), progress=False)
    return rep.save(tmp_path_factory.mktemp("rep") / "a.profile.json")
