"""benchmarks/runtimes.py counts conv/gemm MACs from the ONNX graph: checked against a hand count."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "runtimes.py"


def _bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("edgekd_bench_runtimes", BENCH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("batch", [1, 3])
def test_conv_gemm_macs_hand_count(tiny_onnx: Path, batch: int) -> None:
    # conv 3->8 3x3 @16x16, conv 8->16 3x3 s2 @8x8, conv 16->16 3x3 @8x8, 1x1 16->1 @8x8, fc 16->4
    per_image = 16 * 16 * 8 * 3 * 9 + 8 * 8 * 16 * 8 * 9 + 8 * 8 * 16 * 16 * 9 + 8 * 8 * 16 + 16 * 4
    assert _bench().conv_gemm_macs(tiny_onnx, {"x": (batch, 3, 16, 16)}) == batch * per_image
