"""The one error hierarchy of edgekd.

Every error a user can cause or meet derives from :class:`EdgekdError`. The CLI maps
each class to an exit code (0 pass, 1 only a judged FAIL, 2 bad input or environment,
3 inconclusive, 4 invalid measurement) and prints the message, never a traceback. Anything
else that escapes is a bug: the CLI exits ``EXIT_INTERNAL`` (70), never 1.

A message names the field or flag, the value, what is allowed, and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INCONCLUSIVE = 3
EXIT_INVALID = 4
# An unexpected exception (a bug in edgekd): its own code, so CI never reads it as a judged FAIL (1).
# 70 is EX_SOFTWARE of sysexits.h.
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class EdgekdError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  fix: {hint}")


class ConfigError(EdgekdError):
    """A recipe, device file or override is invalid. ``problems`` holds every problem found."""

    def __init__(self, message: str, problems: Sequence[str] = (), *, hint: str | None = None) -> None:
        self.problems = list(problems)
        body = message
        if self.problems:
            body += "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(body, hint=hint)


class UnknownNameError(ConfigError):
    """A name (recipe, device, loss kind, runtime, module path...) that does not exist."""

    def __init__(self, what: str, name: str, known: Iterable[str], *, hint: str | None = None) -> None:
        known_l = sorted(known)
        self.name = name
        self.known = known_l
        self.suggestion = suggest(name, known_l)
        msg = f"unknown {what} {name!r}."
        if self.suggestion:
            msg += f" Did you mean {self.suggestion!r}?"
        shown = ", ".join(known_l[:30]) + (" ..." if len(known_l) > 30 else "")
        msg += f" Known: {shown or '(none)'}"
        super().__init__(msg, hint=hint)


class DependencyMissingError(EdgekdError):
    """An optional runtime is not installed; names the extra that provides it."""

    def __init__(self, package: str, extra: str, purpose: str, *, install: str | None = None) -> None:
        super().__init__(
            f"{purpose} needs the Python package {package!r}, which is not installed.",
            hint=install or f"pip install 'edgekd[{extra}]'",
        )
        self.package = package
        self.extra = extra


class BackendUnavailableError(EdgekdError):
    """A runtime is installed but cannot serve this request (no GPU, no such device, unsupported op)."""


class ExportError(EdgekdError):
    """Exporting a model failed for a reason the user can act on."""


class ParityError(EdgekdError):
    """An exported artifact's outputs differ from the reference beyond tolerance.

    ``mismatches`` maps each failing output name to (max_abs_diff, max_rel_diff).
    """

    def __init__(self, artifact: str, mismatches: dict[str, tuple[float, float]], atol: float, rtol: float,
                 checked: int) -> None:
        self.artifact = artifact
        self.mismatches = dict(mismatches)
        lines = [f"{n}: max abs diff {a:.3g}, max rel diff {r:.3g}" for n, (a, r) in mismatches.items()]
        super().__init__(
            f"{artifact}: {len(mismatches)} of {checked} outputs differ from the reference beyond "
            f"atol={atol:g}, rtol={rtol:g}:\n" + "\n".join(f"  - {line}" for line in lines),
            hint="check the exporter log, try another opset (--opset) or the legacy exporter, "
            "or loosen the tolerance if the difference is expected (e.g. INT8)",
        )


class QuantizationError(EdgekdError):
    """Quantization failed or could not meet the recipe's accuracy tolerance."""


class TrainingError(EdgekdError):
    """Training stopped: a NaN/Inf loss term, a broken checkpoint, a resume that does not match."""


class ProfileError(EdgekdError):
    """Profiling could not run: bad artifact, bad input shape, runtime failure."""


class RemoteError(EdgekdError):
    """An SSH host is unreachable, its key unknown, or the remote run failed."""


class GateFailed(EdgekdError):
    """A gate found a regression or a broken budget."""

    exit_code = EXIT_GATE_FAILED


class GateInconclusive(EdgekdError):
    exit_code = EXIT_INCONCLUSIVE


class GateInvalid(EdgekdError):
    exit_code = EXIT_INVALID


def suggest(name: str, known: Iterable[str]) -> str | None:
    """The nearest known name, or None. Only suggested, never applied."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return matches[0] if matches else None
