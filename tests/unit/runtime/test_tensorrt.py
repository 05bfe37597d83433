"""TensorRT backend. The conformance tests need tensorrt and an NVIDIA GPU (marked gpu, skipped with the reason
elsewhere); the refusals (no tensorrt, no GPU, an ONNX instead of an engine) run everywhere."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from support import runtime_conformance as C

from edgekd.errors import BackendUnavailableError, DependencyMissingError, EdgekdError, ProfileError
from edgekd.runtime import SessionOptions, get_runtime

HAS_TRT = importlib.util.find_spec("tensorrt") is not None


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


NO_GPU_REASON = ("needs the tensorrt Python package and an NVIDIA GPU (pip install 'edgekd[tensorrt]' on the "
                 "Jetson/GPU host); this machine has " + ("tensorrt" if HAS_TRT else "no tensorrt") + " and "
                 + ("a CUDA GPU" if _has_cuda() else "no CUDA GPU"))


@pytest.mark.gpu
@pytest.mark.skipif(not (HAS_TRT and _has_cuda()), reason=NO_GPU_REASON)
class TestTensorRt(C.RuntimeConformance):
    runtime = "tensorrt"
    atol = 1e-3  # TF32/kernel choice on the GPU: FP32 engines differ from CPU torch at ~1e-4
    rtol = 1e-2
    options = SessionOptions(threads=1, device="cuda")
    settings_keys = ("name", "version", "device", "precision", "transfers")

    def make_artifact(self, folder: Path, model):  # type: ignore[no-untyped-def]
        from edgekd.export.tensorrt import build_engine, write_build_plan

        onnx_path = C.export_fixture_onnx(folder / "fixture.onnx", model)
        plan = write_build_plan(onnx_path, folder, precision="fp32", max_batch=8)
        return build_engine(plan, check=True).engine

    def missing_artifact(self, folder: Path) -> Path:
        return folder / "nothing.engine"

    def test_settings_report_what_is_used(self, session) -> None:  # type: ignore[no-untyped-def]
        s = session.settings()
        assert s["name"] == "tensorrt" and "cuda" in s["device"]

    def test_timed_run_gives_device_milliseconds(self, session, feeds) -> None:  # type: ignore[no-untyped-def]
        ms = [session.timed_run(feeds) for _ in range(5)]
        assert all(0.0 < m < 1000.0 for m in ms)
        assert session.context is not None  # the profiler's per-layer breakdown attaches an IProfiler here


def test_available_says_why_not() -> None:
    ok, why = get_runtime("tensorrt").available()
    if HAS_TRT and _has_cuda():
        assert ok and why
    else:
        assert not ok
        assert ("tensorrt" in why and "not installed" in why) or "no CUDA GPU" in why


def test_missing_engine_is_profile_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="nothing.engine"):
        get_runtime("tensorrt").load(tmp_path / "nothing.engine", SessionOptions(device="cuda"))


def test_onnx_is_refused_with_the_build_hint(tmp_path: Path) -> None:
    path = C.export_fixture_onnx(tmp_path / "m.onnx")
    with pytest.raises(ProfileError) as ei:
        get_runtime("tensorrt").load(path, SessionOptions(device="cuda"))
    assert "build-engine" in str(ei.value)


@pytest.mark.skipif(HAS_TRT and _has_cuda(), reason="tensorrt and a GPU are present: nothing to refuse")
def test_without_tensorrt_or_gpu_an_engine_is_refused_clearly(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\x00" * 64)
    with pytest.raises(EdgekdError) as ei:
        get_runtime("tensorrt").load(engine, SessionOptions(device="cuda"))
    expected = BackendUnavailableError if HAS_TRT else DependencyMissingError
    assert isinstance(ei.value, expected)
    assert ("edgekd[tensorrt]" in str(ei.value)) if not HAS_TRT else ("GPU" in str(ei.value))
