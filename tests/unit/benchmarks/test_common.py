"""benchmarks/_common.py: seeds as a list, the sample standard deviation, one table printer."""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def common():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("edgekd_bench_common", ROOT / "benchmarks" / "_common.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_seeds_are_a_list(common) -> None:  # type: ignore[no-untyped-def]
    ap = argparse.ArgumentParser()
    common.add_seeds(ap)
    assert ap.parse_args([]).seeds == [0, 1, 2]
    assert ap.parse_args(["--seeds", "4", "7"]).seeds == [4, 7]


def test_mean_std_is_the_sample_std(common) -> None:  # type: ignore[no-untyped-def]
    m, s = common.mean_std([1.0, 2.0, 3.0, 4.0])
    assert m == pytest.approx(2.5)
    assert s == pytest.approx(math.sqrt(5 / 3))  # n - 1 = 3; the population std would be sqrt(5/4)
    assert common.mean_std([2.0]) == (2.0, 0.0)
    assert common.fmt_mean_std([0.5, None, 0.7], scale=100, digits=1) == "60.0 +- 14.1"
    assert common.fmt_mean_std([None]) == "-"


def test_table_is_markdown(common, capsys) -> None:  # type: ignore[no-untyped-def]
    text = common.print_table(["arm", "test"], [["alone", "1.0"], ["kd", "12.25"]])
    lines = text.splitlines()
    assert lines[0] == "| arm   | test  |" and lines[1] == "|-------|-------|" and lines[3] == "| kd    | 12.25 |"
    assert capsys.readouterr().out.strip() == text


def test_every_benchmark_has_a_main_guard_and_no_import_time_work() -> None:
    for f in sorted((ROOT / "benchmarks").glob("[a-z]*.py")):
        assert 'if __name__ == "__main__":' in f.read_text(), f"{f.name} runs at import time"
