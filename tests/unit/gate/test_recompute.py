"""The gate judges statistics recomputed from a report's raw samples, never the stored summary.

Each tampering case starts from an honest report whose verdict is known (checked first, so that the
INVALID that follows comes from the edit and nothing else) and must give exit 4 with a first line
naming the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _gate_reports import edit, honest, session_samples

from edgekd.cli import main
from edgekd.profile.report import ProfileReport

BUDGET = ["--device", "host-cpu", "--recipe", "gaze"]  # host-cpu gaze: p90 <= 20 ms, RSS <= 1500 MB, 5 MB


def _lat(key: str, value: Any) -> Callable[[dict], None]:
    return lambda d: d["results"]["latency_ms"].__setitem__(key, value)


def _res(key: str, value: Any) -> Callable[[dict], None]:
    return lambda d: d["results"].__setitem__(key, value)


def _median(i: int, value: Any) -> Callable[[dict], None]:
    return lambda d: d["results"]["session_medians_ms"].__setitem__(i, value)


# (case, edit of the JSON, text the first line of the error must contain)
TAMPER = [
    ("ucb_lowered", _lat("p90_ucb99", 0.001), "results.latency_ms.p90_ucb99 is 0.001 but the raw samples give"),
    ("ucb_raised", _lat("p90_ucb99", 99.0), "results.latency_ms.p90_ucb99 is 99.0"),
    ("p50_edited", _lat("p50", 0.5), "results.latency_ms.p50"),
    ("p90_edited", _lat("p90", 1.0), "results.latency_ms.p90"),
    ("p99_edited", _lat("p99", 3.0), "results.latency_ms.p99"),
    ("mean_edited", _lat("mean", 10.0), "results.latency_ms.mean"),
    ("max_edited", _lat("max", 1e6), "results.latency_ms.max"),
    ("ucb_removed_to_null", _lat("p90_ucb99", None), "results.latency_ms.p90_ucb99 is None"),
    ("median_edited", _median(0, 0.1), "results.session_medians_ms[0]"),
    ("median_dropped", lambda d: d["results"]["session_medians_ms"].pop(), "results.session_medians_ms has 7"),
    ("n_samples_edited", _res("n_samples", 10_000), "results.n_samples"),
    ("negative_p50", _lat("p50", -1.0), "results.latency_ms.p50 is -1.0"),
    ("negative_ucb", _lat("p90_ucb99", -0.5), "results.latency_ms.p90_ucb99 is -0.5"),
    ("negative_median", _median(2, -3.0), "results.session_medians_ms[2] is -3.0"),
    ("nan_ucb", _lat("p90_ucb99", float("nan")), "results.latency_ms.p90_ucb99 is nan"),
    ("inf_ucb", _lat("p90_ucb99", float("inf")), "results.latency_ms.p90_ucb99 is inf"),
    ("neg_inf_p50", _lat("p50", float("-inf")), "results.latency_ms.p50 is -inf"),
    ("nan_median", _median(1, float("nan")), "results.session_medians_ms[1] is nan"),
    ("true_ucb", _lat("p90_ucb99", True), "results.latency_ms.p90_ucb99 is True (bool)"),
    ("false_p50", _lat("p50", False), "results.latency_ms.p50 is False (bool)"),
    ("true_median", _median(0, True), "results.session_medians_ms[0] is True (bool)"),
    ("string_ucb", _lat("p90_ucb99", "0.001"), "results.latency_ms.p90_ucb99 is '0.001' (str)"),
    ("string_median", _median(0, "1.0"), "results.session_medians_ms[0] is '1.0' (str)"),
    ("list_p90", _lat("p90", [1.0]), "results.latency_ms.p90 is [1.0] (list)"),
    ("true_rss", _res("peak_rss_mb", True), "results.peak_rss_mb is True (bool)"),
    ("nan_rss", _res("peak_rss_mb", float("nan")), "results.peak_rss_mb is nan"),
    ("negative_rss", _res("peak_rss_mb", -5.0), "results.peak_rss_mb is -5.0"),
    ("nan_size", lambda d: d["artifact"].__setitem__("size_mb", float("nan")), "artifact.size_mb is nan"),
    ("valid_string", lambda d: d.__setitem__("valid", "true"), "'valid' is 'true'"),
    ("no_raw_samples", lambda d: d.pop("raw_samples"), "no raw samples"),
    ("samples_sha_edited", lambda d: d["raw_samples"].__setitem__("sha256", "0" * 64), "does not match"),
    ("samples_shape_edited", lambda d: d["raw_samples"].__setitem__("shape", [4, 40]), "raw_samples.shape"),
    ("samples_path_escapes", lambda d: d["raw_samples"].__setitem__("path", "../x.samples.npy"),
     "raw_samples.path"),
]


@pytest.fixture(scope="module")
def slow_template(report: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An honest report around 25 ms: FAILs host-cpu's 20 ms gaze budget (exit 1)."""
    return honest(report, tmp_path_factory.mktemp("slow") / "slow.json", session_samples(ms=25.0, seed=3))


def _copy(src: Path, dest: Path) -> Path:
    from shutil import copyfile

    raw = json.loads(src.read_text())["raw_samples"]["path"]
    copyfile(src.parent / raw, dest.parent / raw)
    copyfile(src, dest)
    return dest


def _first_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines, "no error message"
    return lines[0]


def test_honest_slow_report_fails_budget(slow_template: Path, capsys: pytest.CaptureFixture) -> None:
    # the control for every tampering case below: untouched, it is a FAIL (exit 1), judged on 25 ms
    assert main(["gate", str(slow_template), *BUDGET]) == 1
    assert "p90 latency (99% upper bound) 25" in capsys.readouterr().out


@pytest.mark.parametrize("case,change,field", TAMPER, ids=[c[0] for c in TAMPER])
def test_tampered_report_is_invalid_as_candidate(case: str, change: Callable[[dict], None], field: str,
                                                slow_template: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    rep = edit(_copy(slow_template, tmp_path / "slow.json"), change)
    assert main(["gate", str(rep), *BUDGET]) == 4
    captured = capsys.readouterr()
    line = _first_line(captured.err)
    assert field in line, line
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("case,change,field", TAMPER[::3], ids=[c[0] for c in TAMPER[::3]])
def test_tampered_report_is_invalid_as_baseline(case: str, change: Callable[[dict], None], field: str,
                                               report: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cand = honest(report, tmp_path / "cand.json", session_samples(seed=1))
    base = honest(report, tmp_path / "base.json", session_samples(seed=2))
    # the control: A/A passes (--drift 0: synthetic reports with no between-run drift, edgekd.gate.drift)
    assert main(["gate", str(cand), "--baseline", str(base), "--drift", "0"]) == 0
    edit(base, change)
    assert main(["gate", str(cand), "--baseline", str(base), "--allow-invalid"]) == 4  # not allowable
    assert field in _first_line(capsys.readouterr().err)


def test_session_medians_edited_to_hide_a_regression(report: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    """The regression rule runs on medians recomputed from the samples: a 20% slower candidate whose
    stored medians were copied from the baseline is INVALID, not PASS."""
    base = honest(report, tmp_path / "base.json", session_samples(seed=1))
    cand = honest(report, tmp_path / "cand.json", session_samples(factor=1.2, seed=2))
    assert main(["gate", str(cand), "--baseline", str(base), "--drift", "0.05"]) == 1  # honest: FAIL
    medians = json.loads(base.read_text())["results"]["session_medians_ms"]
    edit(cand, lambda d: d["results"].__setitem__("session_medians_ms", medians))
    capsys.readouterr()
    assert main(["gate", str(cand), "--baseline", str(base)]) == 4
    assert "results.session_medians_ms[0]" in _first_line(capsys.readouterr().err)


def test_valid_with_too_few_samples_is_invalid(report: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # 2 x 10 samples: no 99% bound on p90 exists; the profiler marks such a run invalid, so 'valid: true'
    # with a consistent (None) bound is an edit
    few = honest(report, tmp_path / "few.json", session_samples(sessions=2, iterations=10), valid=True,
                 invalid_reasons=[])
    assert main(["gate", str(few), *BUDGET]) == 4
    assert "too few for a 99% upper bound" in _first_line(capsys.readouterr().err)
    honest(report, few, session_samples(sessions=2, iterations=10), valid=False,
           invalid_reasons=["too few samples (20) for a 99% upper bound on p90: at least 44 are needed"])
    assert main(["gate", str(few), *BUDGET]) == 4  # honest and invalid: the budget check is INVALID
    assert "latency_p90_ucb99" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # summarize() of a NaN sample, while building the case
@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf")])
def test_bad_raw_samples_are_invalid(bad: float, report: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # one raw latency no clock gives; the stored figures it spoils are then made plausible by hand, so
    # that the samples check (not the summary's own value check) is what refuses the report
    samples = session_samples(seed=4)
    samples[0, 0] = bad
    rep = honest(report, tmp_path / "bad.json", samples)

    def plausible(d: dict) -> None:
        lat = d["results"]["latency_ms"]
        for k, v in lat.items():
            if v is not None and not (np.isfinite(v) and v >= 0):
                lat[k] = 1.0
        meds = d["results"]["session_medians_ms"]
        d["results"]["session_medians_ms"] = [m if np.isfinite(m) and m >= 0 else 1.0 for m in meds]

    edit(rep, plausible)
    assert main(["gate", str(rep), *BUDGET]) == 4
    assert "raw samples hold negative or non-finite" in _first_line(capsys.readouterr().err)


@pytest.mark.parametrize("factor,noise,drift,expected", [
    (1.0, 0.002, "0", 0), (1.0, 0.002, "0.05", 3),  # same speed: PASS only without a between-run drift bound
    (1.2, 0.002, "0.05", 1), (1.0, 0.2, "0", 3)])
def test_honest_reports_keep_their_verdict(report: Path, tmp_path: Path, factor: float, noise: float,
                                          drift: str, expected: int) -> None:
    base = honest(report, tmp_path / "base.json", session_samples(noise=noise, seed=1))
    cand = honest(report, tmp_path / "cand.json", session_samples(factor=factor, noise=noise, seed=2))
    assert main(["gate", str(cand), "--baseline", str(base), "--drift", drift]) == expected


def test_judged_values_are_the_recomputed_ones(slow_template: Path) -> None:
    from edgekd.gate.judge import load_verified
    from edgekd.profile.stats import summarize

    rep = load_verified(slow_template, "CANDIDATE")
    s = summarize(ProfileReport.load(slow_template).samples)
    assert rep.data["results"]["latency_ms"]["p90_ucb99"] == pytest.approx(s.p90_ucb99, rel=1e-12)
    assert rep.session_medians_ms == pytest.approx(s.session_medians_ms, rel=1e-12)
    assert 24.0 < s.p90_ucb99 < 26.0


def test_float_noise_within_tolerance_is_accepted(slow_template: Path, tmp_path: Path) -> None:
    """A summary written by another float path (1 ulp off) is not an edit: the tolerance is tight, not 0."""
    rep = _copy(slow_template, tmp_path / "slow.json")
    edit(rep, lambda d: d["results"]["latency_ms"].__setitem__(
        "mean", float(np.nextafter(d["results"]["latency_ms"]["mean"], np.inf))))
    assert main(["gate", str(rep), *BUDGET]) == 1
