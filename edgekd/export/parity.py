"""Run an exported artifact against its reference and report every output that differs, in one error.

Two comparisons:

- ``compare="allclose"`` (FP32/FP16 artifacts): an output passes when every element satisfies
  ``|cand - ref| <= atol + rtol * |ref|`` (numpy's ``allclose`` rule) on every batch of feeds.
  Reported per output: max absolute difference ``max |cand - ref|`` and max relative difference
  ``max |cand - ref| / |ref|`` taken over the elements with ``|ref| > atol`` (near zero a relative
  difference says nothing, and the absolute term of the rule governs there).
- ``compare="argmax"`` (class scores, segmentation maps, INT8 artifacts): an output passes when the
  share of positions whose argmax over ``axis`` (the channel axis) agrees with the reference is at
  least ``min_agreement``. Max abs/rel differences are reported too, for information.

Non-finite values in the candidate, a wrong shape or a missing output fail that output.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from edgekd.errors import ConfigError, EdgekdError, ParityError

PredictFn = Callable[[Mapping[str, np.ndarray]], Sequence[np.ndarray]]


@dataclass
class OutputParity:
    name: str
    max_abs_diff: float
    max_rel_diff: float
    passed: bool
    agreement: float | None = None  # argmax agreement share (compare="argmax")
    problem: str | None = None  # shape mismatch, non-finite values, missing output


@dataclass
class ParityReport:
    artifact: str
    compare: str
    atol: float
    rtol: float
    min_agreement: float | None
    batches: int
    samples: int
    outputs: list[OutputParity] = field(default_factory=list)
    seconds: float = 0.0
    passed: bool = True  # every output passed (a field, so asdict()/JSON carry it)

    def summary(self) -> str:
        parts = []
        for o in self.outputs:
            s = f"{o.name}: max abs {o.max_abs_diff:.3g}, max rel {o.max_rel_diff:.3g}"
            if o.agreement is not None:
                s += f", argmax agreement {o.agreement:.4f}"
            parts.append(s + ("" if o.passed else " (FAIL)"))
        return f"{self.artifact} vs reference ({self.compare}, {self.samples} samples): " + "; ".join(parts)


class AgreementError(ParityError):
    """ParityError for ``compare="argmax"``: the message states agreement shares, not tolerances."""

    def __init__(self, artifact: str, failing: list[OutputParity], min_agreement: float, checked: int) -> None:
        self.artifact = artifact
        self.mismatches = {o.name: (o.max_abs_diff, o.max_rel_diff) for o in failing}
        self.agreements = {o.name: o.agreement for o in failing}
        lines = [f"{o.name}: " + (o.problem if o.problem else
                                  f"argmax agreement {o.agreement:.4f} (max abs diff {o.max_abs_diff:.3g})")
                 for o in failing]
        EdgekdError.__init__(
            self,
            f"{artifact}: {len(failing)} of {checked} outputs agree with the reference on fewer than "
            f"{min_agreement:.2%} of argmax positions:\n" + "\n".join(f"  - {line}" for line in lines),
            hint="calibrate on more representative data, keep sensitive layers in higher precision, "
                 "or lower min_agreement if the drop is acceptable for the task metric")


class _Acc:
    """Running maxima / agreement counts of one output across batches."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.max_abs = 0.0
        self.max_rel = 0.0
        self.close = True
        self.agree = 0
        self.positions = 0
        self.problem: str | None = None

    def fail(self, problem: str) -> None:
        self.problem = self.problem or problem
        self.max_abs = self.max_rel = math.inf
        self.close = False


def check_parity(reference: PredictFn, candidate: PredictFn, feeds: Sequence[Mapping[str, np.ndarray]], *,
                 output_names: Sequence[str], atol: float = 1e-4, rtol: float = 1e-3, artifact: str = "artifact",
                 compare: Literal["allclose", "argmax"] = "allclose", min_agreement: float = 0.99,
                 axis: int = 1, raise_on_failure: bool = True) -> ParityReport:
    """Compare ``candidate`` with ``reference`` on every batch in ``feeds``.

    Raises ParityError (AgreementError for argmax) listing every failing output, unless
    ``raise_on_failure=False`` (then read ``report.passed``).
    """
    problems = []
    if compare not in ("allclose", "argmax"):
        problems.append(f"compare={compare!r}: allowed 'allclose' or 'argmax'")
    if not atol > 0 and not rtol > 0:
        problems.append(f"atol={atol}, rtol={rtol}: at least one must be > 0")
    if atol < 0 or rtol < 0:
        problems.append(f"atol={atol}, rtol={rtol}: tolerances must be >= 0")
    if not 0.0 < min_agreement <= 1.0:
        problems.append(f"min_agreement={min_agreement}: must be in (0, 1]")
    if not feeds:
        problems.append("feeds: no input batches given; parity needs at least one")
    if not output_names:
        problems.append("output_names: empty; name the model's outputs (IOSpec.output_names)")
    if problems:
        raise ConfigError("invalid parity check settings", problems)

    t0 = time.perf_counter()
    accs = [_Acc(n) for n in output_names]
    samples = 0
    for feed in feeds:
        ref = list(reference(feed))
        cand = list(candidate(feed))
        first = next(iter(feed.values()), None)
        samples += int(first.shape[0]) if first is not None and first.ndim else 1
        for i, acc in enumerate(accs):
            if i >= len(ref):
                raise ConfigError(f"output_names has {len(accs)} names but the reference returned {len(ref)} outputs",
                                  hint="pass the names of the reference model's outputs, in order")
            if i >= len(cand):
                acc.fail(f"missing: the candidate returned {len(cand)} outputs")
                continue
            _accumulate(acc, np.asarray(ref[i]), np.asarray(cand[i]), atol, rtol, compare, axis)

    outs = []
    for acc in accs:
        agreement = None
        if compare == "argmax":
            agreement = acc.agree / acc.positions if acc.positions else 0.0
            passed = acc.problem is None and agreement >= min_agreement
        else:
            passed = acc.problem is None and acc.close
        outs.append(OutputParity(acc.name, float(acc.max_abs), float(acc.max_rel), bool(passed), agreement,
                                 acc.problem))
    report = ParityReport(artifact, compare, float(atol), float(rtol),
                          float(min_agreement) if compare == "argmax" else None, len(feeds), samples, outs,
                          round(time.perf_counter() - t0, 4), all(o.passed for o in outs))
    failing = [o for o in outs if not o.passed]
    if failing and raise_on_failure:
        if compare == "argmax":
            raise AgreementError(artifact, failing, min_agreement, len(outs))
        raise ParityError(artifact, {o.name: (o.max_abs_diff, o.max_rel_diff) for o in failing}, atol, rtol,
                          len(outs))
    return report


def _accumulate(acc: _Acc, ref: np.ndarray, cand: np.ndarray, atol: float, rtol: float, compare: str,
                axis: int) -> None:
    if ref.shape != cand.shape:
        acc.fail(f"shape {list(cand.shape)}, the reference has {list(ref.shape)}")
        return
    r = ref.astype(np.float64)
    c = cand.astype(np.float64)
    if not np.all(np.isfinite(c)):
        bad = int(np.size(c) - np.count_nonzero(np.isfinite(c)))
        acc.fail(f"{bad} non-finite values (NaN/Inf) in the candidate")
        return
    if r.size == 0:
        return
    diff = np.abs(c - r)
    acc.max_abs = max(acc.max_abs, float(diff.max()))
    mag = np.abs(r)
    big = mag > atol
    if np.any(big):
        acc.max_rel = max(acc.max_rel, float((diff[big] / mag[big]).max()))
    acc.close = acc.close and bool(np.all(diff <= atol + rtol * mag))
    if compare == "argmax":
        ax = axis if r.ndim > 1 else 0
        acc.agree += int(np.count_nonzero(np.argmax(r, axis=ax) == np.argmax(c, axis=ax)))
        acc.positions += int(r.size // r.shape[ax])
