"""Bind ``--recipe-report`` (a ``report.json`` of ``edgekd distill-and-export``) to the profiled artifact.

A metric budget reads its figure from the recipe report, and the recipe report names the budget's
recipe; a gate that took both on trust would judge a gaze profile with a segmentation report's budgets
and metric. The binding: the report must name the profiled artifact's SHA-256 as the variant whose
budget applies (``variants.<onnx_int8 | onnx_fp32>.sha256``, written by the pipeline), and its recipe must
be the one the gate was asked about. Anything else is INVALID (exit 4), with the reason.
"""

from __future__ import annotations

from typing import Any

from edgekd.errors import GateInvalid

_HINT = ("pass the report.json of the run that wrote the profiled artifact, and the budget's --recipe "
         "(or leave --recipe out: the report names it)")


def _mismatch(what: str) -> GateInvalid:
    return GateInvalid(f"--recipe-report is not bound to the profiled model: {what}", hint=_HINT)


def variant_of(report: dict[str, Any], sha256: str) -> str | None:
    """The variant of ``report`` whose artifact has this SHA-256, or None."""
    variants = report.get("variants")
    if not isinstance(variants, dict):
        return None
    for name, info in variants.items():
        if isinstance(info, dict) and info.get("sha256") == sha256:
            return str(name)
    return None


def bind_recipe_report(report: dict[str, Any], *, artifact_sha256: Any, recipe: str | None,
                       variant: str) -> dict[str, Any]:
    """Check that ``report`` belongs to the profiled artifact (SHA-256 ``artifact_sha256``) as ``variant``
    and to ``recipe`` (when given). Returns the variant's entry; raises :class:`GateInvalid` otherwise."""
    name = report.get("recipe")
    if not isinstance(name, str) or not name:
        raise _mismatch(f"its 'recipe' is {name!r}, expected a recipe name")
    if recipe is not None and recipe != name:
        raise _mismatch(f"--recipe {recipe!r} but the report is of recipe {name!r}")
    if not isinstance(artifact_sha256, str) or len(artifact_sha256) != 64:
        raise _mismatch("the profile report names no artifact SHA-256 (artifact.sha256), so it cannot be "
                        "matched with the recipe report")
    variants = report.get("variants")
    entry = variants.get(variant) if isinstance(variants, dict) else None
    if not isinstance(entry, dict):
        known = sorted(variants) if isinstance(variants, dict) else []
        raise _mismatch(f"it has no variant {variant!r} (has: {', '.join(map(str, known)) or 'none'})")
    if entry.get("sha256") == artifact_sha256:
        return entry
    other = variant_of(report, artifact_sha256)
    if other is not None:
        raise _mismatch(f"the profiled artifact is its variant {other!r}, but the {name!r} budget applies to "
                        f"{variant!r} (sha256 {str(entry.get('sha256'))[:12]}...)")
    raise _mismatch(f"the profiled artifact (sha256 {artifact_sha256[:12]}...) is none of its artifacts "
                    f"({variant} is {str(entry.get('sha256'))[:12]}...): the report comes from another run")
