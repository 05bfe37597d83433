"""The gate's error rates measured on this machine with real profiling runs.

Small ONNX CNNs (edgekd.gate.synthetic.tiny_cnn, ~0.7 ms at 1 thread here) are profiled with the
profiler's interleaved protocol (edgekd.profile.protocol.InterleavedRun: A B, B A, ... sessions) and
judged by the sequential rule (edgekd.gate.regression.sequential_gate), exactly as ``edgekd gate
NEW.onnx --baseline OLD.onnx`` does:

* A/A: the same model file on both sides, ``--aa`` evaluations: the FAIL count is the false alarms;
* slowdowns: the same model with chains of extra elementwise ops; the cost of each chain length is
  calibrated first (one long interleaved run), then the (baseline, candidate) pair of chain lengths
  nearest a ~10% and a ~5% slowdown is gated; the share of FAIL is the detection rate.

Run: python benchmarks/gate_real.py [--aa 50] [--slow 30] [--iterations 30]   (~3-4 min on 2 shared cores)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from edgekd.gate.regression import RegressionConfig, sequential_gate
from edgekd.gate.synthetic import tiny_cnn
from edgekd.profile.protocol import InterleavedRun, MeasureConfig, ProfileTarget
from edgekd.runtime.base import SessionOptions


class OrtSession:
    """The Session protocol over onnxruntime at 1 thread (the ORT backend module may not be in the tree)."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        from edgekd.iospec import TensorSpec

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self._s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        i = self._s.get_inputs()[0]
        self.inputs = [TensorSpec(i.name, tuple(i.shape))]
        self.outputs = [TensorSpec(o.name, tuple(o.shape)) for o in self._s.get_outputs()]

    def run(self, feeds: dict) -> list:
        return self._s.run(None, dict(feeds))

    def settings(self) -> dict:
        import onnxruntime as ort

        return {"name": "onnxruntime", "version": ort.__version__, "threads": 1}


FEEDS = {"x": np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)}


def target(path: Path, label: str) -> ProfileTarget:
    return ProfileTarget(path, "onnxruntime", SessionOptions(threads=1), FEEDS, label=label,
                         session_factory=lambda: OrtSession(path))


def one_gate(cand: Path, base: Path, cfg: RegressionConfig, iterations: int) -> tuple[str, float, int, bool]:
    mcfg = MeasureConfig(warmup_s=0.1, warmup_iters=10, sessions=cfg.sessions_max, iterations=iterations,
                         min_duration_s=0.0, sensor_interval_s=0.5)
    with InterleavedRun([target(cand, "candidate"), target(base, "baseline")], mcfg, progress=False) as run:
        def measure(n: int) -> tuple[list[float], list[float]]:
            k = len(run.states[0].sessions)
            run.run_rounds(n)
            return ([float(np.median(s)) for s in run.states[0].sessions[k:]],
                    [float(np.median(s)) for s in run.states[1].sessions[k:]])

        res = sequential_gate(measure, cfg)
        reps = run.reports()
    valid = all(r.valid for r in reps)
    return res.verdict, res.ratio, res.n_candidate, valid


def calibrate(base: Path, folder: Path, max_ops: int) -> dict[int, float]:
    """Ratio of p50 (extra ops k vs none) from one interleaved run of 12 sessions x 150 iterations."""
    paths = {k: tiny_cnn(folder / f"extra{k}.onnx", extra_ops=k) for k in range(1, max_ops + 1)}
    mcfg = MeasureConfig(warmup_s=0.2, sessions=12, iterations=150, min_duration_s=0.0)
    targets = [target(base, "base")] + [target(p, f"extra{k}") for k, p in paths.items()]
    with InterleavedRun(targets, mcfg, progress=False) as run:
        run.run_rounds(12)
        med = [np.array([np.median(s) for s in st.sessions]) for st in run.states]
    return {k: float(np.exp(np.mean(np.log(med[k])) - np.mean(np.log(med[0])))) for k in paths}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--aa", type=int, default=50)
    ap.add_argument("--slow", type=int, default=30)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--sessions-min", type=int, default=6)
    ap.add_argument("--sessions-max", type=int, default=10)
    a = ap.parse_args()
    cfg = RegressionConfig(alpha=0.01, threshold=0.03, sessions_min=a.sessions_min, sessions_max=a.sessions_max,
                           sessions_step=2)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        base = tiny_cnn(d / "base.onnx")
        cal = calibrate(base, d, 6)
        print("calibration (ratio of geometric-mean session medians vs the base model): "
              + ", ".join(f"{k} ops {r:.3f}" for k, r in cal.items()), flush=True)
        # a (baseline, candidate) pair of extra-op counts whose calibrated ratio is nearest each target:
        # pairs give a finer grid than the base model alone (e.g. 6 vs 3 ops for ~5%)
        cal[0] = 1.0
        pairs = {(b, c): cal[c] / cal[b] for b in cal for c in cal if c > b}
        pick = {want: min(pairs, key=lambda bc: abs(pairs[bc] - want)) for want in (1.10, 1.05)}
        path = {k: (base if k == 0 else d / f"extra{k}.onnx") for k in cal}
        scenarios = [("A/A (same file)", base, base, a.aa)] + [
            (f"~{round(100 * (w - 1))}% slower ({pick[w][1]} vs {pick[w][0]} extra ops, cal. {pairs[pick[w]]:.3f})",
             path[pick[w][1]], path[pick[w][0]], a.slow) for w in (1.10, 1.05)]
        print(f"rule: alpha {cfg.alpha}, threshold {cfg.threshold:.0%}, sessions {cfg.sessions_min}..{cfg.sessions_max}"
              f" step 2, {a.iterations} iterations/session, ORT 1 thread", flush=True)
        print(f"{'scenario':48} {'n':>4} {'FAIL':>5} {'PASS':>5} {'INCONC':>6} {'invalid':>7} {'mean ratio':>10} "
              f"{'sessions':>8} {'s/eval':>6}")
        for name, cand, bse, n in scenarios:
            cnt: Counter[str] = Counter()
            ratios, sess, inval = [], [], 0
            ts = time.perf_counter()
            for _ in range(n):
                v, r, ns, ok = one_gate(cand, bse, cfg, a.iterations)
                cnt[v] += 1
                ratios.append(r)
                sess.append(ns)
                inval += not ok
            print(f"{name:48} {n:4d} {cnt['FAIL']:5d} {cnt['PASS']:5d} {cnt['INCONCLUSIVE']:6d} {inval:7d} "
                  f"{np.exp(np.mean(np.log(ratios))):10.3f} {np.mean(sess):8.1f} {(time.perf_counter() - ts) / n:6.2f}",
                  flush=True)
    print(f"({time.perf_counter() - t0:.0f} s; 'invalid' = evaluations whose profile reports were flagged invalid "
          "by the profiler's sensors; their verdict is counted as the rule gave it)", file=sys.stderr)


if __name__ == "__main__":
    main()
