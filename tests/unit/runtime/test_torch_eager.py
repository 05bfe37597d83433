"""PyTorch eager backend: the shared conformance tests over an in-memory module and a run folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import runtime_conformance as C

import edgekd.tasks.run_student  # noqa: F401  (installs the run-folder loader, as the CLI does)
from edgekd.errors import EdgekdError
from edgekd.runtime import SessionOptions, get_runtime
from edgekd.runtime.torch_eager import from_module


class TestTorchEager(C.RuntimeConformance):
    runtime = "torch"
    atol = 1e-6  # the same module: only run-to-run differences

    def make_artifact(self, folder: Path, model):  # type: ignore[no-untyped-def]
        return model  # no file: the session wraps the module itself

    def open_session(self, artifact):  # type: ignore[no-untyped-def]
        return from_module(C.make_model(), C.SPEC, self.options)

    def missing_artifact(self, folder: Path) -> Path:
        return folder / "no_run_here"


def test_a_file_that_is_not_a_checkpoint_is_rejected(tmp_path: Path) -> None:
    f = tmp_path / "model.onnx"
    f.write_bytes(b"x")
    with pytest.raises(EdgekdError, match="not an edgekd checkpoint"):
        get_runtime("torch").load(f, SessionOptions())


def test_folder_without_manifest_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(EdgekdError, match="manifest.json"):
        get_runtime("torch").load(tmp_path, SessionOptions())
