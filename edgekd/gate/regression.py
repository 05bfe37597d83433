"""Relative latency regression: candidate vs baseline, decided on session medians.

Why session medians. Iterations inside one profiling session share the session's state (clock
frequency, cache and allocator layout, neighbours on the machine), so they are not independent:
a 2% shift between sessions makes an iteration-level test (Mann-Whitney on thousands of samples)
"significant" almost every time although nothing changed. The session median is the unit that is
(close to) independent, so the test runs on one number per session.

The rule, at each look ``k`` (of at most ``K``):

* ``x_i = log(candidate session median)``, ``y_j = log(baseline session median)``;
  ``d = mean(x) - mean(y)`` (so ``ratio = exp(d)`` is the ratio of geometric means),
  ``se = sqrt(s_x^2/n_x + s_y^2/n_y)`` and Welch-Satterthwaite degrees of freedom
  ``nu = se^4 / ((s_x^2/n_x)^2/(n_x-1) + (s_y^2/n_y)^2/(n_y-1))`` (Welch 1947).
* one-sided p-value of H0 "not slower" (``d <= 0``): ``p = 1 - T_nu(d / se)``.
* **FAIL** when ``p < alpha_k`` **and** ``ratio > 1 + threshold`` (significant *and* large enough to
  matter: a 0.5% slowdown measured on 40 sessions is real but is not a regression worth a red CI).
* **PASS** (equivalence, one-sided TOST, Schuirmann 1987) when the upper bound of the one-sided
  ``1 - alpha_k`` confidence interval of the ratio, ``exp(d + t_{1-alpha_k,nu} * se)``, is below
  ``1 + threshold``: we are confident the slowdown, if any, is smaller than the threshold.
* otherwise **INCONCLUSIVE**: add a round of sessions and look again, until the cap.

Alpha spending. Looking ``K`` times at accumulating data and stopping at the first FAIL inflates the
false-alarm rate (Armitage, McPherson & Rowe 1969). We split ``alpha`` equally over the planned
looks, ``alpha_k = alpha / K`` (Bonferroni). By the union bound the probability of any false FAIL
over all looks is at most ``sum alpha_k = alpha``, whatever the correlation between looks; Pocock's
(1977) constant boundary is the same shape (equal nominal level at every look) with a slightly larger
level computed for the exact correlation of the looks, which needs normal increments we do not
have with a handful of sessions and Welch's df. Bonferroni is conservative by a little (the looks are
strongly correlated), which costs a bit of power at the first look, and the Monte-Carlo in
``benchmarks/gate_montecarlo.py`` shows the power left is what the gate needs. The same ``alpha_k``
is used for the equivalence bound, so a PASS also holds at overall level ``alpha``.

Minimum detectable effect (MDE) at the current n: the true slowdown the test would flag with 80%
power, ``exp((t_{1-alpha_k,nu} + t_{0.8,nu}) * se) - 1``, floored at the threshold (smaller
slowdowns are never flagged by construction). INCONCLUSIVE results report it so the user knows what
the measurement could have seen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from edgekd.errors import EdgekdError

RegressionVerdict = Literal["PASS", "FAIL", "INCONCLUSIVE"]

#: power used for the minimum detectable effect
MDE_POWER = 0.8


@dataclass(frozen=True)
class RegressionConfig:
    """Settings of the rule. Defaults: alpha 0.01 (a red CI must be rare when nothing changed),
    threshold 3% (below the session-to-session noise of most edge boards it is not actionable),
    6 to 12 sessions per side in rounds of 2 (a 1 ms model needs ~1 s per round on a CPU)."""

    alpha: float = 0.01
    threshold: float = 0.03
    sessions_min: int = 6
    sessions_max: int = 12
    sessions_step: int = 2
    #: bound on the between-run shift of two reports taken at different times (edgekd.gate.drift)
    drift_allowance: float = 0.05
    #: the allowance was measured on this machine (``--drift`` given): only then may two reports taken at
    #: different times FAIL on their own; otherwise a would-be FAIL is INCONCLUSIVE (edgekd.gate.drift)
    drift_calibrated: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.alpha < 0.5:
            problems.append(f"--alpha {self.alpha}: allowed 0 < alpha < 0.5 (e.g. 0.01)")
        if not 0 <= self.threshold < 1:
            problems.append(f"--threshold {self.threshold}: allowed 0 <= threshold < 1 (a fraction: 0.03 = 3%)")
        if self.sessions_min < 3:
            problems.append(f"--sessions-min {self.sessions_min}: at least 3 sessions per side are needed "
                            "for a variance estimate")
        if self.sessions_max < self.sessions_min:
            problems.append(f"--sessions-max {self.sessions_max} is below --sessions-min {self.sessions_min}")
        if not 0 <= self.drift_allowance < 1:
            problems.append(f"--drift {self.drift_allowance}: allowed 0 <= drift < 1 (a fraction: 0.05 = 5%)")
        if self.sessions_step < 1:
            problems.append(f"sessions_step {self.sessions_step}: must be >= 1")
        if problems:
            raise EdgekdError("invalid gate settings: " + "; ".join(problems),
                              hint="fix the flags named above")

    @property
    def n_looks(self) -> int:
        """Planned looks: at sessions_min, then every sessions_step up to sessions_max (inclusive)."""
        return 1 + math.ceil((self.sessions_max - self.sessions_min) / self.sessions_step)

    @property
    def alpha_per_look(self) -> float:
        return self.alpha / self.n_looks


@dataclass(frozen=True)
class RegressionResult:
    verdict: RegressionVerdict
    ratio: float            # geometric-mean ratio candidate / baseline (1.05 = 5% slower)
    ci_low: float           # two-sided (1 - 2 alpha_k) interval of the ratio: each side at level alpha_k
    ci_high: float
    p_value: float          # one-sided, H0: candidate not slower
    mde: float              # minimum detectable slowdown (fraction) at 80% power and this n
    n_candidate: int
    n_baseline: int
    alpha_look: float
    threshold: float
    looks: int = 1
    reason: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _clean(x: Sequence[float], side: str) -> np.ndarray:
    a = np.asarray(list(x), dtype=np.float64)
    if a.ndim != 1 or a.size < 2:
        raise EdgekdError(f"{side} session medians: got {a.size} values; at least 2 sessions are needed",
                          hint="profile with more sessions (--sessions-min)")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise EdgekdError(f"{side} session medians must be finite and > 0 ms; got {a.tolist()[:5]}...",
                          hint="the profile report is corrupt: re-run `edgekd profile`")
    return np.log(a)


def compare(candidate: Sequence[float], baseline: Sequence[float], *, alpha_look: float,
            threshold: float) -> RegressionResult:
    """One look of the rule on session medians (ms). See the module docstring."""
    from scipy import stats

    x, y = _clean(candidate, "candidate"), _clean(baseline, "baseline")
    nx, ny = x.size, y.size
    d = float(x.mean() - y.mean())
    vx, vy = float(x.var(ddof=1)) / nx, float(y.var(ddof=1)) / ny
    se = math.sqrt(vx + vy)
    bound = math.log1p(threshold)
    if se <= 1e-12:
        # identical medians on both sides (a synthetic or quantized clock): no noise, decide on d alone
        df = float(nx + ny - 2)
        p = 0.0 if d > 0 else (0.5 if d == 0 else 1.0)
        lo = hi = d
        mde_log = 0.0
    else:
        df = (vx + vy) ** 2 / (vx**2 / (nx - 1) + vy**2 / (ny - 1)) if (vx > 0 or vy > 0) else float(nx + ny - 2)
        t = d / se
        p = float(stats.t.sf(t, df))
        tc = float(stats.t.ppf(1 - alpha_look, df))
        lo, hi = d - tc * se, d + tc * se
        mde_log = (tc + float(stats.t.ppf(MDE_POWER, df))) * se
    ratio = math.exp(d)
    if p < alpha_look and d > bound:
        verdict: RegressionVerdict = "FAIL"
        reason = (f"candidate {100 * (ratio - 1):+.1f}% slower (p={p:.2g} < {alpha_look:.3g}) and above the "
                  f"{100 * threshold:.1f}% threshold")
    elif hi < bound:
        verdict = "PASS"
        reason = (f"slowdown upper bound {100 * (math.exp(hi) - 1):+.1f}% is below the "
                  f"{100 * threshold:.1f}% threshold")
    else:
        verdict = "INCONCLUSIVE"
        reason = (f"ratio {ratio:.3f}, upper bound {100 * (math.exp(hi) - 1):+.1f}% reaches the "
                  f"{100 * threshold:.1f}% threshold but the slowdown is not established "
                  f"(p={p:.2g}, needs < {alpha_look:.3g} and > {100 * threshold:.1f}%)")
    return RegressionResult(verdict=verdict, ratio=ratio, ci_low=math.exp(lo), ci_high=math.exp(hi), p_value=p,
                            mde=max(threshold, math.expm1(mde_log)), n_candidate=nx, n_baseline=ny,
                            alpha_look=alpha_look, threshold=threshold, reason=reason)


def sequential_gate(measure: Callable[[int], tuple[Sequence[float], Sequence[float]]],
                    cfg: RegressionConfig | None = None) -> RegressionResult:
    """Run the sequential rule. ``measure(n_new)`` measures ``n_new`` more sessions per side and returns
    the *new* (candidate medians, baseline medians); it is called with ``sessions_min`` first, then
    ``sessions_step`` (the last round trimmed to the cap) while the answer is INCONCLUSIVE."""
    cfg = cfg or RegressionConfig()
    cand: list[float] = []
    base: list[float] = []
    history: list[dict[str, Any]] = []
    n_new = cfg.sessions_min
    look = 0
    while True:
        c, b = measure(n_new)
        if look and not len(c):  # the source ran out of sessions (a stored report): keep the last look
            break
        cand.extend(float(v) for v in c)
        base.extend(float(v) for v in b)
        look += 1
        res = compare(cand, base, alpha_look=cfg.alpha_per_look, threshold=cfg.threshold)
        history.append({"look": look, "n": len(cand), "verdict": res.verdict, "ratio": res.ratio,
                        "p_value": res.p_value, "ci_high": res.ci_high})
        if res.verdict != "INCONCLUSIVE" or len(cand) >= cfg.sessions_max or look >= cfg.n_looks:
            break
        n_new = min(cfg.sessions_step, cfg.sessions_max - len(cand))
    reason = res.reason
    if res.verdict == "INCONCLUSIVE":
        reason += f"; stopped at the cap of {len(cand)} sessions (minimum detectable slowdown {100 * res.mde:.1f}%)"
    return RegressionResult(**{**res.to_json(), "looks": look, "reason": reason, "history": history})


def evaluate(candidate: Sequence[float], baseline: Sequence[float],
             cfg: RegressionConfig | None = None) -> RegressionResult:
    """Replay the sequential rule on already measured session medians (stored reports): looks at
    ``sessions_min``, ``+step``... of the sessions available (in their measured order), so the same
    alpha spending applies as for a live run. Extra sessions beyond ``sessions_max`` are ignored."""
    cfg = cfg or RegressionConfig()
    c, b = list(candidate), list(baseline)
    n_avail = min(len(c), len(b))
    if n_avail < 2:
        raise EdgekdError(f"session medians: candidate has {len(c)}, baseline {len(b)}; at least 2 each are needed",
                          hint="profile with more sessions")
    pos = 0

    def measure(n_new: int) -> tuple[list[float], list[float]]:
        nonlocal pos
        take = n_new if pos + n_new <= n_avail else n_avail - pos
        lo = pos
        pos += take
        return c[lo:pos], b[lo:pos]

    if n_avail < cfg.sessions_min:
        # fewer sessions than planned: one look at what is there, at the full-plan alpha split (conservative)
        return compare(c[:n_avail], b[:n_avail], alpha_look=cfg.alpha_per_look, threshold=cfg.threshold)
    return sequential_gate(measure, cfg)
