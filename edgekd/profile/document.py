"""A typed model of the ``edgekd.profile/1`` document (what :class:`edgekd.profile.report.ProfileReport`
saves), for its JSON Schema in ``docs/schemas/profile.schema.json`` and for readers that want typed
access. The contract lets later versions add keys, so the document and its open sections accept extra
keys; the keys other tools read are typed and required."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class LatencyMs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p50: float
    p90: float
    p95: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    p90_ucb99: float | None = Field(description="99% upper confidence bound on p90; None with too few samples")


class ProfileResults(_Open):
    latency_ms: LatencyMs
    session_medians_ms: list[float]
    load_ms: float | None = None
    first_inference_ms: float | None = None
    peak_rss_mb: float | None = None
    contended: bool = Field(default=False, description="other processes competed for the CPUs while measuring")


class ArtifactInfo(_Open):
    path: str | None
    sha256: str | None
    size_mb: float | None


class RawSamples(_Open):
    path: str = Field(description="<stem>.samples.npy beside the report: sessions x iterations, ms, float64")
    sha256: str
    shape: list[int]
    unit: str = "ms"


class RuntimeInfo(_Open):
    name: str
    threads: int | str | None = Field(default=None, description="threads asked for, or 'default (N)'")


class ThroughputPointDoc(_Open):
    batch: int
    streams: int
    threads_per_stream: int | None
    items_per_s: float | None = Field(description="items completed per second, all streams; None when skipped")
    calls: int
    items: int
    wall_s: float
    latency_ms: dict[str, float] = Field(description="per call (one batch): p50 p90 p99 mean")
    per_item_ms: float | None = None
    skipped: str | None = Field(default=None, description="why the point was not measured")


class ThroughputSection(_Open):
    """``edgekd profile --mode throughput``: a batch x streams sweep, every speed setting recorded."""

    mode: str = Field(pattern=r"^throughput$")
    runtime: str
    runtime_settings: dict[str, Any] = Field(description="the runtime's own settings of a stream's session "
                                             "(threads, inference precision, ...)")
    config: dict[str, Any] = Field(description="batches, streams, threads_per_stream, duration_s, warmup_s")
    points: list[ThroughputPointDoc]
    best: dict[str, Any] | None = Field(description="batch, streams, items_per_s of the fastest point")


class EnergyInfo(BaseModel):
    """Energy per inference over the timed sessions (``edgekd.profile.energy``)."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["tegrastats", "nvml"]
    rail: str = Field(description="tegrastats rail (or rails summed as A+B) or 'gpu' for NVML")
    mean_power_mw: float = Field(ge=0, description="mean power of the rail during the timed sessions")
    mj_per_inference: float = Field(ge=0, description="energy over the timed sessions / inferences timed, mJ")
    samples: int = Field(ge=2, description="power or energy-counter samples inside the timed sessions")
    window_s: float = Field(gt=0, description="seconds of timed sessions the energy covers")
    method: str = Field(description="'energy counter' (NVML total energy) or 'integrated power samples'")


class ProfileDocument(_Open):
    """``edgekd.profile/1``: one profiled artifact on one machine."""

    schema_: str = Field(alias="schema", pattern=r"^edgekd\.profile/1$")
    valid: bool
    invalid_reasons: list[str]
    device: dict[str, Any] = Field(description="the measuring machine's fingerprint")
    runtime: RuntimeInfo
    results: ProfileResults
    artifact: ArtifactInfo | None = None
    raw_samples: RawSamples | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    sensors: dict[str, Any] = Field(default_factory=dict)
    transfers: str | None = None
    throughput: ThroughputSection | None = Field(default=None, description="--mode throughput only")

    energy: EnergyInfo | None = Field(default=None, description="null when no power source was available or "
                                      "its samples could not support a figure; energy_unavailable says why")
    energy_unavailable: str | None = None

    model_config = ConfigDict(extra="allow", populate_by_name=True)
