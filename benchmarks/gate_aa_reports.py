"""A/A false-alarm rate of report-vs-report gating on this machine (issue 21).

Each model is profiled again and again by the real CLI (``edgekd profile``, a fresh process each time, as
CI would); the models take turns, so two reports of the same model are at least ``--gap-s`` seconds apart
(the script sleeps when a turn comes round sooner). Each report is gated against the previous report of
the same model (``edgekd gate REPORT --baseline PREVIOUS``: reports taken at different times, so the
between-run drift rule of ``edgekd.gate.drift`` applies), until ``--pairs`` pairs are judged. Several
models make the run shorter (no idle gaps) and cover sizes from ~0.1 ms to ~10 ms. Nothing changed between the reports, so every FAIL is a false
alarm: the issue asks for at most 1 FAIL in 50 pairs. For comparison the plain rule (session medians
only, no drift bound: what the gate did before) is replayed on the same pairs.

Run on a quiet machine: python benchmarks/gate_aa_reports.py --pairs 50 --gap-s 60   (~15 min with 5 models)
Smoke:                    python benchmarks/gate_aa_reports.py --pairs 3 --gap-s 1 --models tiny
Replay at other settings: python benchmarks/gate_aa_reports.py --replay FOLDER   (the reports of a run)
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


def _profile(model: Path, inputs: list[str], out: Path, args: argparse.Namespace) -> None:
    cmd = [sys.executable, "-m", "edgekd", "profile", str(model), "--threads", "1", "--sessions",
           str(args.sessions), "--iterations", str(args.iterations), "--out", str(out), "--no-markdown",
           "--no-progress", *sum((["--input", i] for i in inputs), [])]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if r.returncode != 0:
        raise SystemExit(f"edgekd profile failed ({r.returncode}): {r.stderr.strip()[-800:]}")


def _models(names: list[str], folder: Path) -> dict[str, tuple[Path, list[str]]]:
    """name -> (model file, --input values). ``tiny``: a tiny CNN; PP-OCR / onnx-package names as in
    optimize_vs_peers.py; anything else: a path to an .onnx file (NAME=SHAPE inputs not supported then)."""
    from optimize_vs_peers import model_table

    table = model_table((640, 640))
    out: dict[str, tuple[Path, list[str]]] = {}
    for name in names:
        if name == "tiny":
            out[name] = (tiny_cnn(folder / "tiny_cnn.onnx"), [])
        elif name in table:
            info = table[name]
            dims = "x".join(str(d) for d in info["shape"])
            out[name] = (info["path"], [] if name in ("squeezenet", "inception_v1") else [f"x={dims}"])
        elif Path(name).is_file():
            out[Path(name).stem] = (Path(name), [])
        else:
            print(f"{name}: not installed here (skipped)")
    if not out:
        raise SystemExit("no model to profile")
    return out


def _judge(rep: Path, prev: Path, cfg: RegressionConfig) -> dict[str, object]:
    cand, base = load_verified(rep, "CANDIDATE"), load_verified(prev, "--baseline")
    checks = compare_reports(cand, base, cfg)
    reg = next(c for c in checks if c.name == "regression")
    plain = evaluate(cand.session_medians_ms, base.session_medians_ms, cfg)
    return {"drift_rule": reg.verdict, "plain_rule": plain.verdict, "ratio": plain.ratio, "p_plain": plain.p_value,
            "valid": all(c.verdict != "INVALID" for c in checks), "p50_ms": cand.data["results"]["latency_ms"]["p50"]}


def replay(folder: Path) -> None:
    """Judge the pairs of a finished run again at other thresholds and drift allowances (no measuring)."""
    import re
    from collections import defaultdict

    from edgekd.gate.drift import compare_across_runs

    by_model: dict[str, list[tuple[int, Path]]] = defaultdict(list)
    for p in folder.glob("*-r*.profile.json"):
        m = re.match(r"(.+)-r(\d+)\.profile\.json$", p.name)
        if m:
            by_model[m.group(1)].append((int(m.group(2)), p))
    pairs = []
    for reps in by_model.values():
        reps.sort()
        paths = [p for _, p in reps]
        pairs += [(load_verified(b, "CANDIDATE"), load_verified(a, "--baseline"))
                  for a, b in zip(paths, paths[1:], strict=False)]
    if not pairs:
        raise SystemExit(f"no report pairs in {folder}")
    ratios = sorted(c.data["results"]["latency_ms"]["p50"] / b.data["results"]["latency_ms"]["p50"] for c, b in pairs)
    print(f"{len(pairs)} pairs; median-latency ratio {ratios[0]:.3f}-{ratios[-1]:.3f}, "
          f"{sum(abs(r - 1) > 0.05 for r in ratios)} beyond +-5%")
    settings = [(t, 0.05, False) for t in (0.03, 0.10, 0.20, 0.30)] + [(0.03, a, True) for a in (0.05, 0.10, 0.20)]
    for thr, allow, measured in settings:
        cfg = RegressionConfig(threshold=thr, drift_allowance=allow, drift_calibrated=measured)
        cnt = Counter(compare_across_runs(c.session_medians_ms, b.session_medians_ms, cfg, allow).verdict
                      for c, b in pairs)
        flag = f"--drift {allow}" if measured else "default (no --drift)"
        print(f"--threshold {thr:.2f}, {flag}: {dict(cnt)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["tiny", "cls", "rec", "squeezenet", "inception_v1"],
                    help="tiny, det, rec, cls, squeezenet, inception_v1 or .onnx paths (taking turns)")
    ap.add_argument("--pairs", type=int, default=50)
    ap.add_argument("--gap-s", type=float, default=60.0, help="least seconds between two reports of one model")
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--drift", type=float, default=0.05, help="drift allowance of the gate (fraction)")
    ap.add_argument("--out", type=Path, help="folder for the reports and results.json [default: a temp dir]")
    ap.add_argument("--replay", type=Path, help="judge the reports of a finished run again; measure nothing")
    args = ap.parse_args()
    if args.replay is not None:
        replay(args.replay)
        return
    folder = args.out or Path(tempfile.mkdtemp(prefix="edgekd-aa-"))
    folder.mkdir(parents=True, exist_ok=True)
    models = _models(args.models, folder)
    cfg = RegressionConfig(drift_allowance=args.drift, sessions_min=min(6, args.sessions),
                           sessions_max=max(12, args.sessions))
    last: dict[str, tuple[Path, float]] = {}
    rows: list[dict[str, object]] = []
    t_start, i = time.time(), 0
    while len(rows) < args.pairs:
        name = list(models)[i % len(models)]
        path, inputs = models[name]
        if name in last:
            time.sleep(max(0.0, args.gap_s - (time.monotonic() - last[name][1])))
        rep = folder / f"{name}-r{i // len(models):03d}.profile.json"
        _profile(path, inputs, rep, args)
        if name in last:
            row = {"pair": len(rows) + 1, "model": name,
                   "gap_s": round(time.monotonic() - last[name][1], 1), **_judge(rep, last[name][0], cfg)}
            rows.append(row)
            print(f"pair {row['pair']:3d} {name:13s} {row['p50_ms']:8.3f} ms  {row['gap_s']:5.0f} s apart  "
                  f"ratio {row['ratio']:.4f}  drift rule {row['drift_rule']:12s} plain rule {row['plain_rule']:12s}"
                  f"{'' if row['valid'] else '  (a report is INVALID)'}", flush=True)
        last[name] = (rep, time.monotonic())
        i += 1
    _summary(rows, args, folder, models, time.time() - t_start)


def _summary(rows: list[dict[str, object]], args: argparse.Namespace, folder: Path,
             models: dict[str, tuple[Path, list[str]]], seconds: float) -> None:
    drift_counts, plain_counts = Counter(r["drift_rule"] for r in rows), Counter(r["plain_rule"] for r in rows)
    gaps = sorted(float(r["gap_s"]) for r in rows)  # type: ignore[arg-type]
    summary = {"pairs": len(rows), "min_gap_s": args.gap_s, "gap_s_range": [gaps[0], gaps[-1]],
               "drift_allowance": args.drift, "models": {k: str(v[0]) for k, v in models.items()},
               "drift_rule": dict(drift_counts), "plain_rule": dict(plain_counts),
               "false_alarms_drift_rule": drift_counts.get("FAIL", 0),
               "false_alarms_plain_rule": plain_counts.get("FAIL", 0), "seconds": round(seconds), "rows": rows}
    (folder / "results.json").write_text(json.dumps(summary, indent=1))
    print(f"\n{len(rows)} A/A pairs over {len(models)} models, {gaps[0]:.0f}-{gaps[-1]:.0f} s apart, "
          f"{seconds / 60:.1f} min: drift rule {dict(drift_counts)}; plain rule {dict(plain_counts)}")
    print(f"false alarms: drift rule {summary['false_alarms_drift_rule']}/{len(rows)} (target <= 1 in 50); "
          f"plain rule {summary['false_alarms_plain_rule']}/{len(rows)}")
    print(f"reports and results.json in {folder}")


if __name__ == "__main__":
    main()
