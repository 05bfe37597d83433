"""benchmarks/ov_dynamic_vs_benchmark_app.py: benchmark_app's output is read right, the verdict uses 5%."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
OUTPUT = """[ INFO ]   INFERENCE_PRECISION_HINT: <Type: 'float32'>
[ INFO ] First inference took 3.72 ms
[ INFO ] Latency:
[ INFO ]    Median:        1.65 ms
[ INFO ]    Average:       2.78 ms
[ INFO ]    Min:           0.68 ms
"""


@pytest.fixture(scope="module")
def bench():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "benchmarks"))  # the script imports _common as its neighbour
    try:
        spec = importlib.util.spec_from_file_location("edgekd_bench_ovba", ROOT / "benchmarks" /
                                                      "ov_dynamic_vs_benchmark_app.py")
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_parses_median_average_and_precision(bench) -> None:  # type: ignore[no-untyped-def]
    assert bench.parse_benchmark_app(OUTPUT) == {"median": 1.65, "mean": 2.78, "precision": "float32"}
    assert bench.parse_benchmark_app("[ ERROR ] something failed") is None


def test_table_ratio_and_the_5_percent_verdict(bench, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    models = {"det": (Path("det.onnx"), (1, 3, 640, 640)), "rec": (Path("rec.onnx"), (1, 3, 48, 320))}

    def run(a: float, b: float, bp: str = "float32") -> dict[str, list[dict[str, object]]]:
        return {"edgekd": [{"median": a, "mean": a, "precision": "f32", "contended": False}],
                "benchmark_app": [{"median": b, "mean": b, "precision": bp}]}

    rows = bench.table(models, {"det": run(10.5, 10.0), "rec": run(10.51, 10.0, "bf16")})
    assert rows[0]["ratio"] == pytest.approx(1.05) and rows[0]["within_5pct"] and rows[0]["same_precision"]
    assert not rows[1]["within_5pct"] and not rows[1]["same_precision"]
    assert "MISMATCH" in capsys.readouterr().out
