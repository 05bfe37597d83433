"""Table-driven tests of the regression rule, the verdict combination and the budgets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgekd.config.device import Budget
from edgekd.errors import EdgekdError
from edgekd.gate.budget_checks import check_budgets
from edgekd.gate.regression import RegressionConfig, compare, evaluate, sequential_gate
from edgekd.gate.verdict import Check, combine_verdicts, outcome, validity_check


def _sessions(rng: np.random.Generator, n: int, effect: float, noise: float, base_ms: float = 1.0) -> list[float]:
    return list(base_ms * math.exp(effect) * np.exp(rng.normal(0, noise, n)))


# (effect on the ratio, session noise, n per side, expected verdict)
CASES = [
    (0.00, 0.005, 10, "PASS"),          # nothing changed, quiet machine: confident no regression
    (0.20, 0.02, 10, "FAIL"),           # big slowdown
    (0.05, 0.01, 10, "FAIL"),           # 5% slowdown at 1% noise
    (-0.10, 0.02, 10, "PASS"),          # faster candidate
    (0.01, 0.002, 12, "PASS"),          # real but below the threshold and tightly measured: PASS
    (0.00, 0.10, 6, "INCONCLUSIVE"),    # too noisy to tell at 6 sessions
    (0.05, 0.10, 6, "INCONCLUSIVE"),    # a slowdown drowned in noise is not a FAIL
]


@pytest.mark.parametrize("effect,noise,n,expected", CASES)
def test_compare_table(effect: float, noise: float, n: int, expected: str) -> None:
    rng = np.random.default_rng(1234)
    base = _sessions(rng, n, 0.0, noise)
    cand = _sessions(rng, n, math.log1p(effect), noise)
    res = compare(cand, base, alpha_look=0.01 / 3, threshold=0.03)
    assert res.verdict == expected, res.reason
    assert res.ci_low <= res.ratio <= res.ci_high
    assert res.mde >= 0.03


def test_exact_boundary_of_threshold() -> None:
    # deterministic sessions with a tiny spread: the ratio sits exactly at the threshold
    base = [1.0, 1.001, 0.999, 1.0005, 0.9995, 1.0]
    at = [v * 1.0299 for v in base]  # just under: the CI straddles the threshold
    above = [v * 1.035 for v in base]
    below = [v * 1.025 for v in base]
    assert compare(at, base, alpha_look=0.01, threshold=0.03).verdict == "INCONCLUSIVE"  # not > threshold
    assert compare(above, base, alpha_look=0.01, threshold=0.03).verdict == "FAIL"
    assert compare(below, base, alpha_look=0.01, threshold=0.03).verdict == "PASS"


def test_significant_but_small_is_not_fail() -> None:
    base = [1.0, 1.001, 0.999, 1.0005, 0.9995, 1.0] * 3
    cand = [v * 1.02 for v in base]
    res = compare(cand, base, alpha_look=0.001, threshold=0.03)
    assert res.p_value < 1e-6
    assert res.verdict == "PASS"


def test_identical_constant_sessions() -> None:
    res = compare([2.0] * 6, [2.0] * 6, alpha_look=0.01, threshold=0.03)
    assert res.verdict == "PASS" and res.ratio == pytest.approx(1.0)


def test_one_outlier_session_does_not_fail_aa() -> None:
    base = [1.0, 1.01, 0.99, 1.0, 1.005, 0.995, 1.0, 1.002]
    cand = [1.0, 1.01, 0.99, 1.0, 1.005, 0.995, 1.0, 1.25]  # one session 25% off (a background job)
    assert compare(cand, base, alpha_look=0.01 / 3, threshold=0.03).verdict != "FAIL"


def test_sequential_adds_rounds_until_cap() -> None:
    rng = np.random.default_rng(7)
    calls: list[int] = []

    def measure(n: int) -> tuple[list[float], list[float]]:
        calls.append(n)
        return _sessions(rng, n, 0.03, 0.05), _sessions(rng, n, 0.0, 0.05)

    res = sequential_gate(measure, RegressionConfig(sessions_min=6, sessions_max=11, sessions_step=2))
    assert calls == [6, 2, 2, 1]
    assert res.verdict == "INCONCLUSIVE" and res.looks == 4 and res.n_candidate == 11
    assert "cap" in res.reason and len(res.history) == 4


def test_sequential_stops_early_on_clear_answer() -> None:
    rng = np.random.default_rng(3)
    calls: list[int] = []

    def measure(n: int) -> tuple[list[float], list[float]]:
        calls.append(n)
        return _sessions(rng, n, math.log(1.3), 0.01), _sessions(rng, n, 0.0, 0.01)

    res = sequential_gate(measure, RegressionConfig())
    assert calls == [6] and res.verdict == "FAIL" and res.looks == 1


def test_alpha_spending() -> None:
    cfg = RegressionConfig(alpha=0.01, sessions_min=6, sessions_max=12, sessions_step=2)
    assert cfg.n_looks == 4 and cfg.alpha_per_look == pytest.approx(0.0025)
    assert RegressionConfig(sessions_min=10, sessions_max=10).n_looks == 1


def test_evaluate_stored_with_fewer_sessions_than_cap() -> None:
    rng = np.random.default_rng(5)
    res = evaluate(_sessions(rng, 8, 0.0, 0.05), _sessions(rng, 8, 0.0, 0.05))
    assert res.n_candidate == 8 and res.looks == 2


@pytest.mark.parametrize("kwargs", [dict(alpha=0.0), dict(alpha=0.7), dict(threshold=-0.1), dict(sessions_min=2),
                                    dict(sessions_min=8, sessions_max=6)])
def test_bad_config(kwargs: dict) -> None:
    with pytest.raises(EdgekdError):
        RegressionConfig(**kwargs)


@pytest.mark.parametrize("bad", [[1.0], [1.0, float("nan")], [1.0, -2.0], [1.0, 0.0]])
def test_bad_medians(bad: list[float]) -> None:
    with pytest.raises(EdgekdError):
        compare(bad, [1.0, 1.0, 1.0], alpha_look=0.01, threshold=0.03)


# ---- verdict combination -------------------------------------------------------------------
COMBINE = [
    ([], "INVALID"),
    (["PASS"], "PASS"),
    (["PASS", "INCONCLUSIVE"], "INCONCLUSIVE"),
    (["INCONCLUSIVE", "INVALID"], "INVALID"),
    (["INVALID", "FAIL", "PASS"], "FAIL"),
]


@pytest.mark.parametrize("vs,expected", COMBINE)
def test_combine(vs: list, expected: str) -> None:
    assert combine_verdicts(vs) == expected


# (verdicts, allow_inconclusive, allow_invalid, exit code)
EXITS = [
    (["PASS", "PASS"], False, False, 0),
    (["PASS", "FAIL"], True, True, 1),
    (["PASS", "INCONCLUSIVE"], False, False, 3),
    (["PASS", "INCONCLUSIVE"], True, False, 0),
    (["PASS", "INVALID"], False, False, 4),
    (["PASS", "INVALID"], False, True, 0),
    (["INVALID", "INCONCLUSIVE"], False, True, 3),
    (["INVALID", "INCONCLUSIVE"], True, False, 4),
    (["INVALID", "INCONCLUSIVE"], True, True, 0),
    ([], True, True, 4),
]


@pytest.mark.parametrize("vs,ai,av,code", EXITS)
def test_outcome_exit_codes(vs: list, ai: bool, av: bool, code: int) -> None:
    checks = [Check(f"c{i}", v, "m") for i, v in enumerate(vs)]
    out = outcome(checks, allow_inconclusive=ai, allow_invalid=av)
    assert out.exit_code == code
    assert out.to_json()["checks"][0]["name"] == "c0" if vs else True


def test_validity_check() -> None:
    assert validity_check({"valid": True, "invalid_reasons": []}).verdict == "PASS"
    c = validity_check({"valid": False, "invalid_reasons": ["throttled"]}, role="baseline")
    assert c.verdict == "INVALID" and "throttled" in c.message and c.name == "validity_baseline"


# ---- budgets -------------------------------------------------------------------------------
def _profile(ucb: object, rss: object = 100.0, valid: bool = True, scope: str | None = "process",
             size: object = 1.0) -> dict:
    return {"valid": valid, "invalid_reasons": [] if valid else ["cpu throttled"],
            "results": {"latency_ms": {"p90_ucb99": ucb}, "peak_rss_mb": rss, "peak_rss_scope": scope},
            "artifact": {"size_mb": size}}


BUDGETS = [
    # (profile, budget, expected by check name, number of "not judged" notes)
    (_profile(9.9), Budget(latency_p90_ms=10), {"latency_p90_ucb99": "PASS"}, 0),
    (_profile(10.0), Budget(latency_p90_ms=10), {"latency_p90_ucb99": "PASS"}, 0),  # equal is within
    (_profile(10.01), Budget(latency_p90_ms=10), {"latency_p90_ucb99": "FAIL"}, 0),
    (_profile(10.01, valid=False), Budget(latency_p90_ms=10), {"latency_p90_ucb99": "INVALID"}, 0),
    (_profile(1.0, 600), Budget(peak_rss_mb=500, artifact_mb=2), {"peak_rss_mb": "FAIL", "artifact_mb": "PASS"}, 0),
    (_profile(1.0, 400), Budget(peak_rss_mb=500), {"peak_rss_mb": "PASS"}, 0),
    (_profile(1.0), Budget(artifact_mb=0.5), {"artifact_mb": "FAIL"}, 0),
    # a peak taken with other models (or training data) in the process is not the artifact's: not judged
    (_profile(1.0, 600, scope="process, 4 targets loaded together"), Budget(peak_rss_mb=500), {}, 1),
    (_profile(1.0, 600, scope=None), Budget(peak_rss_mb=500, latency_p90_ms=10),
     {"latency_p90_ucb99": "PASS"}, 1),
    # figures that are not finite numbers >= 0 are never coerced: INVALID, not FAIL or PASS
    (_profile(True), Budget(latency_p90_ms=10), {"latency_p90_ucb99": "INVALID"}, 0),
    (_profile(float("nan")), Budget(latency_p90_ms=10), {"latency_p90_ucb99": "INVALID"}, 0),
    (_profile(float("inf")), Budget(latency_p90_ms=10), {"latency_p90_ucb99": "INVALID"}, 0),
    (_profile(-1.0), Budget(latency_p90_ms=10), {"latency_p90_ucb99": "INVALID"}, 0),
    (_profile("1.0"), Budget(latency_p90_ms=10), {"latency_p90_ucb99": "INVALID"}, 0),
    (_profile(1.0, rss=True), Budget(peak_rss_mb=500), {"peak_rss_mb": "INVALID"}, 0),
    (_profile(1.0, size=float("nan")), Budget(artifact_mb=5), {"artifact_mb": "INVALID"}, 0),
    (_profile(1.0, size=-2.0), Budget(artifact_mb=5), {"artifact_mb": "INVALID"}, 0),
]


@pytest.mark.parametrize("profile,budget,expected,n_notes", BUDGETS)
def test_budgets(profile: dict, budget: Budget, expected: dict, n_notes: int) -> None:
    notes: list[str] = []
    got = {c.name: c.verdict for c in check_budgets(budget, profile=profile, notes=notes)}
    assert got == expected
    assert len(notes) == n_notes
    assert all("peak RSS not judged" in n for n in notes)


@pytest.mark.parametrize("metric,budget,expected", [
    (10.0, Budget(metric_max=12.0), "PASS"), (12.5, Budget(metric_max=12.0), "FAIL"),
    (0.30, Budget(metric_min=0.25), "PASS"), (0.20, Budget(metric_min=0.25), "FAIL"),
])
def test_metric_budget(metric: float, budget: Budget, expected: str) -> None:
    rep = {"metric": {"name": "angle_deg", "lower_is_better": True},
           "variants": {"onnx_int8": {"metric": metric}, "onnx_fp32": {"metric": 0.0}}}
    (c,) = check_budgets(budget, pipeline_report=rep)
    assert c.verdict == expected and c.name == "metric_angle_deg"


@pytest.mark.parametrize("metric", [True, float("nan"), float("inf"), "5.0", None])
def test_metric_budget_not_a_number_is_invalid(metric: object) -> None:
    # as the pipeline calls it: a NaN metric (a diverged run) is INVALID, never "within budget"
    rep = {"metric": {"name": "angle_deg"}, "variants": {"onnx_int8": {"metric": metric}}}
    (c,) = check_budgets(Budget(metric_max=12.0), pipeline_report=rep)
    assert c.verdict == "INVALID" and "variants.onnx_int8.metric" in c.message


def test_metric_budget_missing_variant() -> None:
    with pytest.raises(EdgekdError, match="variants.onnx_int8"):
        check_budgets(Budget(metric_min=0.2), pipeline_report={"variants": {"onnx_fp32": {"metric": 1.0}}})


def test_latency_budget_needs_profile() -> None:
    with pytest.raises(EdgekdError, match="latency_p90_ms"):
        check_budgets(Budget(latency_p90_ms=1.0))
