"""The result of ``edgekd optimize``: a pydantic model written as optimize.json, and its Markdown table."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["picked", "too slow", "outside the budget", "failed to build", "failed to run", "skipped"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CandidateEntry(_Strict):
    """One candidate: how it was made, how it scored on held-out data, how fast it ran, and its fate."""

    name: str
    runtime: str
    precision: str
    artifact: str | None = None
    build_settings: dict[str, Any] = Field(default_factory=dict)
    runtime_settings: dict[str, Any] = Field(default_factory=dict,
                                             description="what the runtime reported: threads, inference precision, "
                                                         "streams, providers")
    build_s: float | None = None
    scores: dict[str, float] = Field(default_factory=dict, description="per output, under its metric")
    accuracy: float | None = Field(None, description="the primary (first) output's score")
    within_budget: bool | None = None
    latency_p50_ms: float | None = None
    latency_p90_ms: float | None = None
    ratio_to_ort_fp32: float | None = None
    pareto: bool = False
    status: Status
    why: str = ""


class OptimizeReport(_Strict):
    schema_: Literal["edgekd.optimize/1"] = Field("edgekd.optimize/1", alias="schema")
    model: str
    model_sha256: str
    device: str
    timed_on: str
    data: str
    metrics: dict[str, str]
    budget: dict[str, float]
    threads: int | None
    openvino_default_precision: str | None
    measure: dict[str, Any]
    picked: str | None
    candidates: list[CandidateEntry]
    notes: list[str] = Field(default_factory=list)


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def to_markdown(rep: OptimizeReport) -> str:
    """A table of every candidate, best first among the measured ones, with why each loser lost."""
    lines = [f"# edgekd optimize: {rep.model}", "",
             f"- device: {rep.device}; timed on: {rep.timed_on}; threads: {rep.threads}",
             f"- data: {rep.data}",
             f"- metric per output: {', '.join(f'{k}: {v}' for k, v in rep.metrics.items())}",
             f"- budget: {', '.join(f'{k} {v:g}' for k, v in rep.budget.items())}",
             f"- OpenVINO default CPU precision here: {rep.openvino_default_precision}",
             f"- **picked: {rep.picked or 'nothing (no candidate met the budget)'}**", "",
             "| candidate | runtime | precision | accuracy | p50 ms | p90 ms | x ORT FP32 | Pareto | status | why |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c in sorted(rep.candidates, key=lambda c: (c.latency_p50_ms is None, c.latency_p50_ms or 0.0)):
        why = c.why.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {c.name} | {c.runtime} | {c.precision} | {_fmt(c.accuracy, '.4f')} | "
                     f"{_fmt(c.latency_p50_ms, '.3f')} | {_fmt(c.latency_p90_ms, '.3f')} | "
                     f"{_fmt(c.ratio_to_ort_fp32, '.2f')} | {'yes' if c.pareto else ''} | {c.status} | {why} |")
    lines += ["", *[f"- {n}" for n in rep.notes]]
    return "\n".join(lines) + "\n"
