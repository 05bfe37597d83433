"""Held-out judgement of a converted model against its FP32 reference: the data split and a metric per output.

Calibrating and judging on the same inputs flatters a quantizer (the ranges were fitted to exactly those
activations), so the data is split: calibration part first, evaluation part after, and the split is
reported. Each output gets a metric that means something for its kind:

- ``argmax``: class logits or probabilities ``[B, C]`` (trailing 1-dims ignored): the fraction of rows
  whose arg-max class matches FP32.
- ``iou``: probability maps (rank >= 3, values in [0, 1], not a softmax over the last axis): pooled
  intersection over union of the maps thresholded at 0.5.
- ``sequence``: sequence logits or probabilities ``[B, T, C]``: greedy CTC-style decode (arg-max per
  step, collapse repeats, drop blank 0) and the fraction of rows whose decoded sequence equals FP32's.
- ``sqnr``: anything else: ``10 log10(|ref|^2 / |ref - test|^2)`` pooled over the evaluation set, in dB,
  capped at :data:`SQNR_CAP_DB` so a bit-exact candidate has a finite score.

Agreement metrics are fractions in [0, 1] (1 = identical decisions to FP32); the drop is ``1 - score``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from edgekd.errors import ConfigError

MetricName = Literal["argmax", "iou", "sequence", "sqnr"]
METRICS: tuple[str, ...] = ("auto", "argmax", "iou", "sequence", "sqnr")
SQNR_CAP_DB = 100.0
Feed = dict[str, np.ndarray]


@dataclass(frozen=True)
class HeldOutSplit:
    """Calibration and evaluation feeds, and a sentence saying how they were obtained."""

    calib: list[Feed]
    eval: list[Feed]
    note: str


def split_heldout(calib: Sequence[Feed], evaluation: Sequence[Feed] | None = None, *,
                  eval_fraction: float = 0.5) -> HeldOutSplit:
    """Use ``evaluation`` when given; otherwise hold out the last ``eval_fraction`` of ``calib``."""
    calib = list(calib)
    if evaluation is not None:
        ev = list(evaluation)
        if not calib or not ev:
            raise ConfigError("calibration and evaluation data must each hold at least one input",
                              hint="give --calib and --eval folders with .npy/.npz files")
        return HeldOutSplit(calib, ev, f"calibrated on {len(calib)} inputs, judged on {len(ev)} separate "
                                       "evaluation inputs (--eval)")
    if len(calib) < 2:
        raise ConfigError(f"only {len(calib)} input given: at least 2 are needed to hold some out for judging",
                          hint="give more calibration files, or a separate --eval folder")
    if not 0.0 < eval_fraction < 1.0:
        raise ConfigError(f"eval_fraction={eval_fraction}: must be in (0, 1)")
    n_eval = min(len(calib) - 1, max(1, round(len(calib) * eval_fraction)))
    cut = len(calib) - n_eval
    return HeldOutSplit(calib[:cut], calib[cut:], f"no --eval given: split the {len(calib)} inputs automatically, "
                                                  f"first {cut} for calibration, last {n_eval} held out for judging")


def _is_softmax_last(a: np.ndarray) -> bool:
    s = a.sum(axis=-1)
    return bool(np.all(a >= 0) and np.allclose(s, 1.0, atol=1e-3))


def _squeeze_tail(a: np.ndarray) -> np.ndarray:
    while a.ndim > 2 and a.shape[-1] == 1:
        a = a[..., 0]
    return a


def pick_metric(ref: np.ndarray) -> MetricName:
    """The metric that fits one FP32 output (see the module docstring)."""
    a = _squeeze_tail(np.asarray(ref))
    if not np.issubdtype(a.dtype, np.floating):
        return "sqnr"
    if a.ndim == 2 and a.shape[1] > 1:
        return "argmax"
    if a.ndim == 3 and a.shape[-1] > 1 and (_is_softmax_last(a) or float(a.min()) < 0 or float(a.max()) > 1):
        return "sequence"
    if a.ndim >= 3 and a.size and float(a.min()) >= 0.0 and float(a.max()) <= 1.0:
        return "iou"
    return "sqnr"


def ctc_greedy(seq_logits: np.ndarray, blank: int = 0) -> list[tuple[int, ...]]:
    """Greedy CTC decode of ``[B, T, C]``: arg-max per step, collapse repeats, drop ``blank``."""
    best = np.asarray(seq_logits).argmax(axis=-1)
    out = []
    for row in best:
        keep = [int(c) for i, c in enumerate(row) if c != blank and (i == 0 or c != row[i - 1])]
        out.append(tuple(keep))
    return out


def score_output(metric: MetricName, refs: Sequence[np.ndarray], tests: Sequence[np.ndarray]) -> float:
    """Agreement of ``tests`` with ``refs`` (one array per evaluation input) under ``metric``; higher is better."""
    if not refs or len(refs) != len(tests):
        raise ValueError("score_output needs as many test outputs as reference outputs, at least one")
    if metric == "argmax":
        r = np.concatenate([_squeeze_tail(np.asarray(x)).reshape(len(x), -1).argmax(-1) for x in refs])
        t = np.concatenate([_squeeze_tail(np.asarray(x)).reshape(len(x), -1).argmax(-1) for x in tests])
        return float(np.mean(r == t))
    if metric == "iou":
        inter = sum(int(np.logical_and(a > 0.5, b > 0.5).sum()) for a, b in zip(refs, tests, strict=True))
        union = sum(int(np.logical_or(a > 0.5, b > 0.5).sum()) for a, b in zip(refs, tests, strict=True))
        return 1.0 if union == 0 else inter / union
    if metric == "sequence":
        same = total = 0
        for a, b in zip(refs, tests, strict=True):
            for x, y in zip(ctc_greedy(a), ctc_greedy(b), strict=True):
                same += x == y
                total += 1
        return same / total
    if metric == "sqnr":
        sig = sum(float(np.sum(np.asarray(a, np.float64) ** 2)) for a in refs)
        noise = sum(float(np.sum((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
                    for a, b in zip(refs, tests, strict=True))
        if noise == 0.0:
            return SQNR_CAP_DB
        if sig == 0.0:
            return -SQNR_CAP_DB
        return min(SQNR_CAP_DB, 10.0 * math.log10(sig / noise))
    raise ConfigError(f"--metric {metric!r}: allowed {list(METRICS)}")


def resolve_metrics(requested: str, outputs: Mapping[str, np.ndarray]) -> dict[str, MetricName]:
    """One metric per output name: ``auto`` picks per output; a named metric applies to every output."""
    if requested not in METRICS:
        raise ConfigError(f"--metric {requested!r}: allowed {list(METRICS)}")
    if requested == "auto":
        return {k: pick_metric(v) for k, v in outputs.items()}
    return {k: requested for k in outputs}  # type: ignore[misc]


def within_budget(metric: MetricName, score: float, *, max_drop: float, min_sqnr_db: float) -> bool:
    """Agreement metrics: ``1 - score <= max_drop``; SQNR: ``score >= min_sqnr_db``."""
    if metric == "sqnr":
        return score >= min_sqnr_db
    return 1.0 - score <= max_drop + 1e-12


@dataclass(frozen=True)
class OutputJudgement:
    """One output's held-out score under its metric, and whether it meets the budget."""

    name: str
    metric: MetricName
    score: float
    ok: bool


def judge_heldout(reference: Callable[[Mapping[str, np.ndarray]], Sequence[np.ndarray]],
                  candidate: Callable[[Mapping[str, np.ndarray]], Sequence[np.ndarray]],
                  eval_feeds: Sequence[Mapping[str, np.ndarray]], names: Sequence[str], *, metric: str = "auto",
                  max_drop: float = 0.01, min_sqnr_db: float = 20.0) -> list[OutputJudgement]:
    """Score ``candidate`` against ``reference`` on held-out ``eval_feeds``, one judgement per output.

    The one call ``quantize_external`` needs after :func:`split_heldout` to report accuracy (and apply
    ``--min-sqnr``) on inputs it did not calibrate on.
    """
    if not eval_feeds:
        raise ConfigError("no held-out inputs to judge on", hint="give at least 2 calibration inputs or --eval")
    refs = [list(reference(f)) for f in eval_feeds]
    tests = [list(candidate(f)) for f in eval_feeds]
    metrics = resolve_metrics(metric, dict(zip(names, refs[0], strict=True)))
    out = []
    for i, n in enumerate(names):
        s = score_output(metrics[n], [r[i] for r in refs], [t[i] for t in tests])
        out.append(OutputJudgement(n, metrics[n], s, within_budget(metrics[n], s, max_drop=max_drop,
                                                                   min_sqnr_db=min_sqnr_db)))
    return out
