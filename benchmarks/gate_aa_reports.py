"""A/A false-alarm rate of report-vs-report gating on this machine (issue 21).

One model is profiled ``--pairs + 1`` times by the real CLI (``edgekd profile``, a fresh process each
time, as CI would), ``--gap-s`` seconds apart; each report is gated against the one before it
(``edgekd gate REPORT --baseline PREVIOUS``: reports taken at different times, so the between-run drift
rule of ``edgekd.gate.drift`` applies). Nothing changed between the reports, so every FAIL is a false
alarm: the issue asks for at most 1 FAIL in 50 pairs. For comparison the plain rule (session medians
only, no drift bound: what the gate did before) is replayed on the same pairs.

Run on a quiet machine: python benchmarks/gate_aa_reports.py --pairs 50 --gap-s 60   (~1 h)
Smoke:                    python benchmarks/gate_aa_reports.py --pairs 3 --gap-s 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from edgekd.gate.judge import compare_reports, load_verified
from edgekd.gate.regression import RegressionConfig, evaluate
from edgekd.gate.synthetic import tiny_cnn


def _profile(model: Path, out: Path, args: argparse.Namespace) -> None:
    cmd = [sys.executable, "-m", "edgekd", "profile", str(model), "--threads", "1", "--sessions",
           str(args.sessions), "--iterations", str(args.iterations), "--out", str(out), "--no-markdown",
           "--no-progress", *sum((["--input", i] for i in args.input), [])]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if r.returncode != 0:
        raise SystemExit(f"edgekd profile failed ({r.returncode}): {r.stderr.strip()[-800:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="an .onnx model [default: a tiny CNN, ~1 ms]")
    ap.add_argument("--input", action="append", default=[], help="NAME=1x3xHxW for dynamic dims")
    ap.add_argument("--pairs", type=int, default=50)
    ap.add_argument("--gap-s", type=float, default=60.0, help="seconds between the end of one report and the next")
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--drift", type=float, default=0.05, help="drift allowance of the gate (fraction)")
    ap.add_argument("--out", type=Path, help="folder for the reports and results.json [default: a temp dir]")
    args = ap.parse_args()
    folder = args.out or Path(tempfile.mkdtemp(prefix="edgekd-aa-"))
    folder.mkdir(parents=True, exist_ok=True)
    model = args.model or tiny_cnn(folder / "tiny_cnn.onnx")
    cfg = RegressionConfig(drift_allowance=args.drift, sessions_min=min(6, args.sessions),
                           sessions_max=max(12, args.sessions))
    reports: list[Path] = []
    rows = []
    for i in range(args.pairs + 1):
        if i:
            time.sleep(args.gap_s)
        rep = folder / f"r{i:03d}.profile.json"
        _profile(model, rep, args)
        reports.append(rep)
        if i == 0:
            continue
        cand, base = load_verified(rep, "CANDIDATE"), load_verified(reports[-2], "--baseline")
        checks = compare_reports(cand, base, cfg)
        reg = next(c for c in checks if c.name == "regression")
        plain = evaluate(cand.session_medians_ms, base.session_medians_ms, cfg)
        rows.append({"pair": i, "drift_rule": reg.verdict, "plain_rule": plain.verdict, "ratio": plain.ratio,
                     "p_plain": plain.p_value, "valid": all(c.verdict != "INVALID" for c in checks)})
        print(f"pair {i:3d}: ratio {plain.ratio:.4f}  drift rule {reg.verdict:12s} plain rule {plain.verdict:12s}"
              f"{'' if rows[-1]['valid'] else '  (a report is INVALID)'}", flush=True)
    drift_counts, plain_counts = Counter(r["drift_rule"] for r in rows), Counter(r["plain_rule"] for r in rows)
    summary = {"pairs": len(rows), "gap_s": args.gap_s, "drift_allowance": args.drift, "model": str(model),
               "drift_rule": dict(drift_counts), "plain_rule": dict(plain_counts),
               "false_alarms_drift_rule": drift_counts.get("FAIL", 0),
               "false_alarms_plain_rule": plain_counts.get("FAIL", 0), "rows": rows}
    (folder / "results.json").write_text(json.dumps(summary, indent=1))
    print(f"\n{len(rows)} A/A pairs, {args.gap_s:g} s apart: drift rule {dict(drift_counts)}; "
          f"plain rule {dict(plain_counts)}")
    print(f"false alarms: drift rule {summary['false_alarms_drift_rule']}/{len(rows)} (target <= 1 in 50); "
          f"plain rule {summary['false_alarms_plain_rule']}/{len(rows)}")
    print(f"reports and results.json in {folder}")


if __name__ == "__main__":
    main()
