"""Monte-Carlo check of the gate's decision rule (edgekd.gate.regression) with session drift,
per-iteration noise and outliers.

Model of one gate evaluation (all on the log scale, latencies in ms around 1 ms):
* rounds k = 1..n; in each round the baseline and the candidate each run one session (interleaved);
* a machine state e_k shared by both sessions of round k follows an AR(1) process
  e_k = phi e_{k-1} + u_k with stationary sd ``drift`` (thermal/frequency/neighbour drift);
* each session adds its own offset s ~ N(0, session_noise) (allocator/cache layout of that process);
* each iteration adds N(0, iter_noise) and, with probability ``p_outlier``, a x(2..5) outlier (preemption);
* the session median of ``iters`` iterations is the unit the rule sees.

Also shown, for contrast, the iteration-level one-sided Mann-Whitney test (all iterations pooled, alpha
0.01), the textbook mistake, under the same A/A data but with sessions *not* interleaved (the baseline
measured in one process/job and the candidate in another: no shared state, 2% drift per session).

Run: python benchmarks/gate_montecarlo.py [--trials 2000] [--seed 0]   (~40 s on 2 cores)
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from edgekd.gate.regression import RegressionConfig, evaluate


def simulate(rng: np.random.Generator, n: int, effect: float, *, drift: float, phi: float, session_noise: float,
             iter_noise: float, p_outlier: float, iters: int, shared: bool = True) -> tuple[np.ndarray, ...]:
    """Returns (candidate medians, baseline medians, candidate iterations, baseline iterations)."""
    innov = drift * math.sqrt(1 - phi**2)

    def ar1() -> np.ndarray:
        e = np.empty(n)
        e[0] = rng.normal(0, drift)
        for k in range(1, n):
            e[k] = phi * e[k - 1] + rng.normal(0, innov)
        return e

    e_c = ar1()
    e_b = e_c if shared else ar1()

    def side(e: np.ndarray, eff: float) -> np.ndarray:
        log_t = (eff + e[:, None] + rng.normal(0, session_noise, (n, 1)) + rng.normal(0, iter_noise, (n, iters)))
        t = np.exp(log_t)
        out = rng.random((n, iters)) < p_outlier
        t[out] *= rng.uniform(2, 5, out.sum())
        return t

    tc, tb = side(e_c, math.log1p(effect)), side(e_b, 0.0)
    return np.median(tc, axis=1), np.median(tb, axis=1), tc, tb


def rate(trials: int, seed: int, effect: float, cfg: RegressionConfig, **kw: float) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    counts = {"FAIL": 0, "PASS": 0, "INCONCLUSIVE": 0}
    sessions = 0
    for _ in range(trials):
        mc, mb, _, _ = simulate(rng, cfg.sessions_max, effect, **kw)  # type: ignore[arg-type]
        r = evaluate(mc, mb, cfg)
        counts[r.verdict] += 1
        sessions += r.n_candidate
    return {k: v / trials for k, v in counts.items()} | {"mean_sessions": sessions / trials}


def mann_whitney_rate(trials: int, seed: int, n: int, alpha: float, **kw: float) -> float:
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(seed)
    c_all, b_all = [], []
    for _ in range(trials):
        _, _, tc, tb = simulate(rng, n, 0.0, shared=False, **kw)  # type: ignore[arg-type]
        c_all.append(tc.ravel())
        b_all.append(tb.ravel())
    p = mannwhitneyu(np.array(c_all), np.array(b_all), alternative="greater", axis=1).pvalue
    return float(np.mean(p < alpha))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t0 = time.perf_counter()
    seq = RegressionConfig(alpha=0.01, threshold=0.03, sessions_min=6, sessions_max=10, sessions_step=2)
    fixed10 = RegressionConfig(alpha=0.01, threshold=0.03, sessions_min=10, sessions_max=10)
    base = dict(phi=0.7, iter_noise=0.03, p_outlier=0.01, iters=30)
    scenarios = [  # (label, AR(1) drift sd, iid session sd, drift shared by the interleaved pair)
        ("2% iid session noise", 0.0, 0.02, True),
        ("2% total: 1.4% drift + 1.4% iid", 0.02 / math.sqrt(2), 0.02 / math.sqrt(2), True),
        ("2% drift + 2% iid (2.8%)", 0.02, 0.02, True),
        ("2% drift + 2% iid, not interl.", 0.02, 0.02, False),
    ]
    rows = []
    for name, cfg in (("seq 6..10 (3 looks)", seq), ("fixed 10", fixed10)):
        for label, drift, sn, shared in scenarios:
            for eff in (0.0, 0.05, 0.10):
                r = rate(a.trials, a.seed, eff, cfg, drift=drift, session_noise=sn, shared=shared, **base)
                rows.append((name, label, eff, r))
    print(f"Monte-Carlo of the gate rule: {a.trials} trials per row, alpha=0.01, threshold=3%, "
          f"AR(1) phi=0.7 drift, 30 iterations/session, 3% iteration noise, 1% outliers x2-5")
    print(f"{'rule':20} {'session noise model':32} {'slowdown':>8} {'FAIL':>7} {'PASS':>7} {'INCONC':>7} "
          f"{'sessions':>8}")
    for name, label, eff, r in rows:
        print(f"{name:20} {label:32} {eff:8.0%} {r['FAIL']:7.2%} {r['PASS']:7.2%} "
              f"{r['INCONCLUSIVE']:7.2%} {r['mean_sessions']:8.1f}")
    mw = mann_whitney_rate(min(a.trials, 2000), a.seed + 1, 10, 0.01, drift=0.02, phi=0.0, session_noise=0.0,
                           iter_noise=0.03, p_outlier=0.01, iters=30)
    mw0 = mann_whitney_rate(min(a.trials, 2000), a.seed + 2, 10, 0.01, drift=0.0, phi=0.0, session_noise=0.0,
                            iter_noise=0.03, p_outlier=0.01, iters=30)
    print(f"\niteration-level Mann-Whitney (one-sided, alpha 0.01, 10x30 iterations per side), A/A false-alarm rate:"
          f"\n  2% session drift (not interleaved): {mw:.1%}\n  no drift:                           {mw0:.1%}")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
