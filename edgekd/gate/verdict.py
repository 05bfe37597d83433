"""The four gate verdicts, one :class:`Check` per model x device x check, and how they combine.

PASS, FAIL, INCONCLUSIVE (the measurement could not decide within its cap), INVALID (the measurement
cannot be trusted: throttling, clock drift, fingerprint mismatch, too few samples). Combining: any
FAIL fails the gate; otherwise an INVALID or INCONCLUSIVE check decides the outcome unless the user
allowed it (``--allow-invalid`` / ``--allow-inconclusive``), because "could not tell" is not "fine".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from edgekd.errors import EXIT_GATE_FAILED, EXIT_INCONCLUSIVE, EXIT_INVALID, EXIT_OK

Verdict = Literal["PASS", "FAIL", "INCONCLUSIVE", "INVALID"]
VERDICTS: tuple[Verdict, ...] = ("PASS", "FAIL", "INCONCLUSIVE", "INVALID")
EXIT_CODES: dict[str, int] = {"PASS": EXIT_OK, "FAIL": EXIT_GATE_FAILED, "INCONCLUSIVE": EXIT_INCONCLUSIVE,
                              "INVALID": EXIT_INVALID}


@dataclass
class Check:
    """One gate check. ``value``/``limit`` are in ``unit``; ``details`` holds e.g. the regression result."""

    name: str                      # "latency_p90_ucb99", "peak_rss_mb", "regression", "validity" ...
    verdict: Verdict
    message: str
    model: str = ""
    device: str = ""
    value: float | None = None
    limit: float | None = None
    unit: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GateOutcome:
    verdict: Verdict               # the combined verdict before the allow flags
    exit_code: int                 # after the allow flags
    checks: list[Check]
    allow_inconclusive: bool = False
    allow_invalid: bool = False
    not_judged: list[str] = field(default_factory=list)  # budgets set but not judged, each with its reason

    @property
    def passed(self) -> bool:
        return self.exit_code == EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {"schema": "edgekd.gate/1", "verdict": self.verdict, "exit_code": self.exit_code,
                "passed": self.passed, "allow_inconclusive": self.allow_inconclusive,
                "allow_invalid": self.allow_invalid, "checks": [c.to_json() for c in self.checks],
                "not_judged": list(self.not_judged)}


def combine_verdicts(verdicts: Iterable[Verdict]) -> Verdict:
    """FAIL > INVALID > INCONCLUSIVE > PASS. No checks at all is INVALID (nothing was verified)."""
    vs = list(verdicts)
    for v in vs:
        if v not in VERDICTS:
            raise ValueError(f"unknown verdict {v!r}; allowed {VERDICTS}")
    if not vs:
        return "INVALID"
    for v in ("FAIL", "INVALID", "INCONCLUSIVE"):
        if v in vs:
            return v  # type: ignore[return-value]
    return "PASS"


def outcome(checks: Sequence[Check], *, allow_inconclusive: bool = False,
            allow_invalid: bool = False, not_judged: Sequence[str] = ()) -> GateOutcome:
    """Combine checks and map to an exit code. An allowed INVALID/INCONCLUSIVE check is ignored when
    choosing the exit code, but the combined verdict still reports it."""
    verdict = combine_verdicts(c.verdict for c in checks)
    counted = [c.verdict for c in checks
               if not (c.verdict == "INVALID" and allow_invalid)
               and not (c.verdict == "INCONCLUSIVE" and allow_inconclusive)]
    if checks and not counted:
        code = EXIT_OK
    else:
        code = EXIT_CODES[combine_verdicts(counted)] if checks else EXIT_INVALID
    return GateOutcome(verdict=verdict, exit_code=code, checks=list(checks),
                       allow_inconclusive=allow_inconclusive, allow_invalid=allow_invalid,
                       not_judged=list(not_judged))


def validity_check(report: dict[str, Any], *, model: str = "", device: str = "", role: str = "") -> Check:
    """INVALID when a profile report says ``valid: false`` (its ``invalid_reasons`` are quoted)."""
    label = f"{role} measurement" if role else "measurement"
    if bool(report.get("valid", False)):
        return Check(f"validity{'_' + role if role else ''}", "PASS", f"{label} valid", model=model, device=device)
    reasons = list(report.get("invalid_reasons") or ["report marked invalid without a reason"])
    return Check(f"validity{'_' + role if role else ''}", "INVALID", f"{label} invalid: " + "; ".join(reasons),
                 model=model, device=device, details={"invalid_reasons": reasons})
