"""Report-vs-report regression under between-run drift: table-driven, the exact thresholds included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgekd.gate.drift import compare_across_runs, drift_bound, same_interleaved_run, within_spread
from edgekd.gate.regression import RegressionConfig, evaluate

CFG = RegressionConfig(drift_calibrated=True)  # alpha 0.01, threshold 3%, drift allowance 5% (as --drift 0.05)
FLAT = [1.0] * 8  # no session noise: the Welch bounds collapse onto the ratio, so the drift rule is exact
FAIL_AT = 1.03 * 1.05  # ratio above which a flat pair FAILs: (1 + threshold)(1 + drift)
PASS_BELOW = 1.03 / 1.05  # ratio below which a flat pair PASSes


@pytest.mark.parametrize(("ratio", "verdict"), [
    (FAIL_AT * (1 + 1e-6), "FAIL"),
    (FAIL_AT * (1 - 1e-6), "INCONCLUSIVE"),   # 8.1% slower: cannot be told from 5% drift + 3% threshold
    (1.049, "INCONCLUSIVE"),                  # the +4.9% A/A shift of issue 21: no longer a FAIL
    (1.0, "INCONCLUSIVE"),                    # same speed: cannot PASS a 3% threshold under a 5% drift bound
    (PASS_BELOW * (1 + 1e-6), "INCONCLUSIVE"),
    (PASS_BELOW * (1 - 1e-6), "PASS"),
    (1.30, "FAIL"),
])
def test_flat_sessions_table(ratio: float, verdict: str) -> None:
    res = compare_across_runs([ratio] * 8, FLAT, CFG, 0.05)
    assert res.verdict == verdict, res.reason
    assert res.ratio == pytest.approx(ratio)


@pytest.mark.parametrize(("allowance", "ratio", "verdict"), [
    (0.0, 1.0301, "FAIL"), (0.0, 1.0299, "PASS"),  # no drift, no noise: the bounds meet at the threshold
    (0.10, 1.03 * 1.10 * 1.0001, "FAIL"), (0.10, 1.03 * 1.10 * 0.9999, "INCONCLUSIVE"),
])
def test_allowance_moves_the_thresholds(allowance: float, ratio: float, verdict: str) -> None:
    assert compare_across_runs([ratio] * 8, FLAT, CFG, allowance).verdict == verdict


def test_within_report_spread_widens_the_bound() -> None:
    base = [1.0, 1.02, 1.0, 1.02, 1.0, 1.02, 1.0, 1.02]  # this report wanders by 2% between sessions
    assert within_spread(base) == pytest.approx(math.log(1.02))
    assert drift_bound([1.0] * 8, base, 0.05) == pytest.approx(math.log(1.05) + math.log(1.02))
    # 9% slower would FAIL a flat pair, but not against a baseline that itself wanders by 2%
    assert compare_across_runs([1.09 * 1.01] * 8, base, CFG, 0.05).verdict == "INCONCLUSIVE"
    assert compare_across_runs([1.25] * 8, base, CFG, 0.05).verdict == "FAIL"


@pytest.mark.parametrize(("c", "b", "same"), [
    ({"settings": {"interleaved": True}, "created": "t"}, {"settings": {"interleaved": True}, "created": "t"}, True),
    ({"settings": {"interleaved": True}, "created": "t"}, {"settings": {"interleaved": True}, "created": "u"}, False),
    ({"settings": {"interleaved": False}, "created": "t"}, {"settings": {"interleaved": False}, "created": "t"}, False),
    ({"settings": {}, "created": None}, {"settings": {}, "created": None}, False),
])
def test_same_interleaved_run(c: dict, b: dict, same: bool) -> None:  # type: ignore[type-arg]
    assert same_interleaved_run(c, b) is same


def test_aa_false_alarms_within_alpha_under_bounded_drift() -> None:
    """Simulated A/A pairs: each report shifted by a run-level drift (up to +-2.4%, so the pair differs by
    up to 4.9% as in issue 21) plus 1% session noise. The plain rule FAILs often; the drift rule at most 1%."""
    rng = np.random.default_rng(21)
    plain = drift_fail = 0
    pairs = 1000
    for _ in range(pairs):
        c = np.exp(rng.uniform(-0.024, 0.024) + rng.normal(0, 0.01, 8))
        b = np.exp(rng.uniform(-0.024, 0.024) + rng.normal(0, 0.01, 8))
        plain += evaluate(list(c), list(b), CFG).verdict == "FAIL"
        drift_fail += compare_across_runs(list(c), list(b), CFG, 0.05).verdict == "FAIL"
    assert plain > 0.05 * pairs  # the problem: the plain rule cries wolf under drift
    assert drift_fail <= 0.01 * pairs


def test_a_real_regression_is_still_caught() -> None:
    rng = np.random.default_rng(5)
    c = list(1.25 * np.exp(rng.normal(0, 0.01, 8)))
    b = list(np.exp(rng.normal(0, 0.01, 8)))
    res = compare_across_runs(c, b, CFG, 0.05)
    assert res.verdict == "FAIL" and res.ci_low > 1.03


def test_without_a_measured_drift_reports_taken_apart_cannot_fail() -> None:
    """The default (no --drift): a pair that FAILs under a measured 5% allowance is INCONCLUSIVE, with the
    slowdown and the two fixes; PASS is unchanged."""
    base = [1.0, 1.01, 0.99, 1.0, 1.005, 0.995, 1.0, 1.0]
    default = RegressionConfig()
    res = compare_across_runs([1.3 * x for x in base], base, default, 0.05)
    assert res.verdict == "INCONCLUSIVE"
    assert "+30.0% slower" in res.reason and "--drift" in res.reason and "--baseline BASELINE_MODEL" in res.reason
    assert compare_across_runs([1.3 * x for x in base], base, CFG, 0.05).verdict == "FAIL"
    fast = RegressionConfig(threshold=0.2)
    assert compare_across_runs(base, base, fast, 0.05).verdict == "PASS"
