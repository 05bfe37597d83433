from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from edgekd.profile.stats import nearest_rank, order_statistic_ucb_rank, quantile_ucb, session_cv, summarize


def test_nearest_rank_is_an_observed_value() -> None:
    x = np.arange(1, 101, dtype=float)
    assert nearest_rank(x, 50) == 50
    assert nearest_rank(x, 90) == 90
    assert nearest_rank(x, 99) == 99
    assert nearest_rank(np.array([3.0]), 90) == 3.0


@pytest.mark.parametrize("n", [44, 100, 500, 1000, 5000])
def test_ucb_rank_is_the_smallest_binomial_order_statistic(n: int) -> None:
    k = order_statistic_ucb_rank(n)
    assert k is not None
    assert binom.cdf(k - 1, n, 0.9) >= 0.99
    assert binom.cdf(k - 2, n, 0.9) < 0.99  # one rank lower is not enough
    assert k > 0.9 * n


def test_ucb_needs_44_samples() -> None:
    assert order_statistic_ucb_rank(43) is None
    assert order_statistic_ucb_rank(44) == 44
    assert quantile_ucb(np.ones(10)) is None


def test_ucb_covers_the_true_p90_99_percent_of_the_time() -> None:
    # Monte Carlo over exponential latencies: coverage must be >= 99% (minus MC slack).
    rng = np.random.default_rng(0)
    true_q90 = -np.log(0.1)
    hits = sum(quantile_ucb(rng.exponential(size=200)) >= true_q90 for _ in range(2000))
    assert hits / 2000 >= 0.985


def test_summarize_fields_and_noisy_flag() -> None:
    quiet = np.array([[1.0, 1.1, 0.9] * 20, [1.0, 1.05, 0.95] * 20])
    s = summarize(quiet)
    assert s.n == 120 and s.min == 0.9 and s.max == 1.1
    assert s.session_medians_ms == [1.0, 1.0]
    assert s.session_cv == 0.0 and not s.noisy
    assert s.p90_ucb99 is not None and s.p90_ucb99 >= s.p90
    assert s.throughput_per_s == pytest.approx(1000 / s.mean)
    noisy = np.array([[1.0] * 50, [1.2] * 50, [0.9] * 50])
    s2 = summarize(noisy, noisy_cv=0.05)
    assert s2.session_cv == pytest.approx(np.std([1.0, 1.2, 0.9], ddof=1) / np.mean([1.0, 1.2, 0.9]))
    assert s2.noisy


def test_session_cv_needs_two_sessions() -> None:
    assert session_cv([1.0]) is None


def test_summary_mismatch_agrees_with_summarize_and_names_fields() -> None:
    from edgekd.profile.stats import summary_mismatch

    x = np.random.default_rng(5).gamma(9, 0.1, size=(5, 20))
    s = summarize(x)
    lat = s.latency_dict()
    assert summary_mismatch(lat, s.session_medians_ms, x, s.n) is None
    assert "results.latency_ms.p90_ucb99 is 0.5" in str(summary_mismatch({**lat, "p90_ucb99": 0.5},
                                                                          s.session_medians_ms, x))
    assert "session_medians_ms[3]" in str(summary_mismatch(lat, [*s.session_medians_ms[:3], 9.0,
                                                                 s.session_medians_ms[4]], x))
    assert "n_samples is 99" in str(summary_mismatch(lat, s.session_medians_ms, x, 99))
    assert "raw samples hold negative" in str(summary_mismatch(lat, s.session_medians_ms, -x))
    assert "expected float" in str(summary_mismatch(lat, s.session_medians_ms, x.astype(np.int64)))
    # a relative change of 1e-12 is float noise, 1e-6 is an edit
    assert summary_mismatch({**lat, "mean": lat["mean"] * (1 + 1e-12)}, s.session_medians_ms, x) is None
    assert summary_mismatch({**lat, "mean": lat["mean"] * (1 + 1e-6)}, s.session_medians_ms, x) is not None
