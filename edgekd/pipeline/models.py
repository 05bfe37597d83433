"""Typed models of the two documents a run writes: ``report.json`` (:class:`RunReport`) and
``manifest.json`` (:class:`Manifest`). The pipeline validates each before writing it; their JSON
Schemas are kept in ``docs/schemas/`` (:func:`write_schemas`, checked by a test).

Sections whose keys depend on the task or the tool that filled them (a task's metric extras, an
exporter's details, a training history) stay open dicts; everything other tools read is typed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["PASS", "FAIL", "INCONCLUSIVE", "INVALID"]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricInfo(_Closed):
    name: str
    lower_is_better: bool
    unit: str | None = None
    beside: list[str] = Field(default_factory=list, description="extras printed beside the metric in report.md")


class LatencyTriple(_Closed):
    p50: float
    p90: float
    p99: float


class Variant(_Closed):
    """One scored model: a torch model (teacher, student arms) or an exported artifact."""

    metric: float = Field(description="the task's metric on the test split")
    extras: dict[str, Any] = Field(default_factory=dict, description="the task's other test-split figures")
    splits: dict[str, float] | None = Field(default=None, description="the metric on the task's other splits")
    params: int | None = Field(default=None, description="parameter count (None: analytic teacher)")
    path: str | None = Field(default=None, description="artifact file, relative to the run folder")
    sha256: str | None = None
    runtime: str | None = None
    precision: str | None = None
    bytes: int | None = Field(default=None, description="artifact size on disk, sidecars included")
    latency_ms: LatencyTriple | None = Field(default=None, description="from the profile stage, this machine")


class ProfileSummary(_Closed):
    """What report.json keeps of one ``profile/<name>.json`` (an ``edgekd.profile/1`` document)."""

    latency_ms: dict[str, float | None]
    session_medians_ms: list[float]
    peak_rss_mb: float | None = None
    valid: bool
    invalid_reasons: list[str] = Field(default_factory=list)
    runtime: str | None = None
    threads: int | None = Field(default=None, description="threads asked for (None: the runtime's default)")
    threads_used: int | None = Field(default=None, description="intra-op threads the session ran with")
    contended: bool = Field(default=False, description="other processes competed for the CPUs while measuring")
    cpu_contention: dict[str, Any] | None = None
    report: str


class BudgetSection(_Closed):
    device: str
    recipe: str
    variant: str | None = None
    verdict: Verdict | None = None
    judged_on_this_machine: bool | None = None
    checks: list[dict[str, Any]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    note: str | None = None


class OptimizeCandidate(_Closed):
    """One candidate of the optimize search, as report.json keeps it (optimize/optimize.json has the rest)."""

    name: str
    runtime: str
    precision: str
    artifact: str | None = Field(default=None, description="relative to the run folder")
    accuracy: float | None = Field(default=None, description="held-out agreement with FP32 (primary output)")
    latency_p50_ms: float | None = None
    ratio_to_ort_fp32: float | None = None
    pareto: bool = False
    status: str
    why: str = Field(default="", description="why it was picked, or why it lost")


class OptimizeSection(_Closed):
    """The optimize search of a run (recipe ``optimize.enabled``): the pick and why each other candidate lost."""

    enabled: bool
    picked: str | None
    picked_artifact: str | None = None
    picked_runtime: str | None = None
    picked_precision: str | None = None
    skipped: str | None = Field(default=None, description="why the search did not run")
    metric: dict[str, str] = Field(default_factory=dict, description="held-out metric per output")
    metric_source: str | None = Field(default=None, description="the task's metric, or why another one is used")
    data: str | None = None
    budget: dict[str, float] = Field(default_factory=dict)
    threads: int | None = None
    timed_on: str | None = None
    report: str | None = None
    table: str | None = None
    plot: str | None = None
    candidates: list[OptimizeCandidate] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class RunReport(_Closed):
    """``report.json`` of ``edgekd distill-and-export`` (schema ``edgekd.report/1``)."""

    schema_: Literal["edgekd.report/1"] = Field(alias="schema")
    recipe: str
    recipe_hash: str
    preset: str | None = None
    seed: int
    device: str
    inputs: dict[str, list[int]] = Field(description="concrete input shapes at the profiled batch")
    metric: MetricInfo
    variants: dict[str, Variant]
    summary: dict[str, float | bool]
    parity: dict[str, dict[str, Any]]
    exports: dict[str, dict[str, Any]]
    profiles: dict[str, ProfileSummary]
    teacher: dict[str, Any]
    training: dict[str, list[dict[str, Any]]]
    warnings: list[str]
    budget: BudgetSection | None = None
    optimize: OptimizeSection | None = Field(default=None, description="recipe optimize.enabled only")
    timings_s: dict[str, float] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ArtifactEntry(_Closed):
    path: str
    sha256: str
    bytes: int
    runtime: str | None = None
    precision: str | None = None
    metric: float | None = None


class Manifest(_Closed):
    """``manifest.json``: what made a run folder and the SHA-256 of every file in it."""

    schema_: Literal["edgekd.manifest/1"] = Field(alias="schema")
    created: str
    recipe: str
    recipe_hash: str
    recipe_config: dict[str, Any]
    device: str
    command: str
    git_commit: str | None = None
    versions: dict[str, str]
    host: dict[str, str]
    steps: list[dict[str, Any]]
    artifacts: list[ArtifactEntry]

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _schemas() -> dict[str, type[BaseModel]]:
    from edgekd.profile.document import ProfileDocument

    return {"report.schema.json": RunReport, "manifest.schema.json": Manifest,
            "profile.schema.json": ProfileDocument}


def schema_texts() -> dict[str, str]:
    """File name -> JSON Schema text (by alias, so ``schema`` is spelled as in the documents)."""
    return {name: json.dumps(model.model_json_schema(by_alias=True), indent=2, sort_keys=True) + "\n"
            for name, model in _schemas().items()}


def write_schemas(folder: Path) -> list[Path]:
    """Write every schema to ``folder`` (docs/schemas); returns the paths written."""
    from edgekd.fileio import write_text

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_texts().items():
        write_text(folder / name, text)
        written.append(folder / name)
    return written
