"""Throughput mode: concurrent streams and a batch sweep, with latency percentiles, beside the latency mode.

The latency mode (:mod:`edgekd.profile.protocol`) answers "how long does one request take, alone";
a server or a camera pipeline with several inputs in flight asks "how many items per second, and at
what latency" (``benchmark_app -hint throughput``, ``trtexec --streams``). For each point of the sweep
(batch size ``b`` x streams ``s``):

* ``s`` sessions of the artifact are loaded (one per stream: a session is not safe to run from several
  threads for every runtime), each with ``threads_per_stream`` intra-op threads;
* each stream runs in its own thread (ONNX Runtime and OpenVINO release the GIL while they compute),
  calling its session back to back on a ``b``-item batch until ``duration_s`` has passed, after
  ``warmup_s`` of untimed calls;
* throughput = items completed / wall time; latency percentiles over every call of every stream.

A batch other than the model's fixed batch dimension is skipped with the reason. Every setting that
changes speed (batch, streams, threads per stream, the runtime's own reported settings) is recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError
from edgekd.runtime.base import Session, SessionOptions


@dataclass(frozen=True)
class ThroughputConfig:
    """The sweep. Defaults: a short run per point (2 s) over batches 1-8 and 1-2 streams."""

    batches: Sequence[int] = (1, 2, 4, 8)
    streams: Sequence[int] = (1, 2)
    threads_per_stream: int | None = 1
    duration_s: float = 2.0
    warmup_s: float = 0.5

    def __post_init__(self) -> None:
        problems = []
        for name in ("batches", "streams"):
            v = list(getattr(self, name))
            if not v or any(not isinstance(x, int) or x < 1 for x in v):
                problems.append(f"{name}={v!r}: a non-empty list of integers >= 1")
        if self.threads_per_stream is not None and self.threads_per_stream < 1:
            problems.append(f"threads_per_stream={self.threads_per_stream}: must be >= 1 (or unset)")
        if self.duration_s <= 0:
            problems.append(f"duration_s={self.duration_s}: must be > 0")
        if self.warmup_s < 0:
            problems.append(f"warmup_s={self.warmup_s}: must be >= 0")
        if problems:
            raise ConfigError("invalid throughput settings", problems,
                              hint="e.g. --batch 1 --batch 4 --streams 1 --streams 2 --duration-s 2")


@dataclass
class ThroughputPoint:
    batch: int
    streams: int
    threads_per_stream: int | None
    items_per_s: float | None = None
    calls: int = 0
    items: int = 0
    wall_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)  # per call (one batch): p50 p90 p99 mean
    per_item_ms: float | None = None  # wall time per item, all streams together
    skipped: str | None = None


@dataclass
class ThroughputResult:
    artifact: str
    runtime: str
    runtime_settings: dict[str, Any]
    config: dict[str, Any]
    points: list[ThroughputPoint]

    @property
    def best(self) -> ThroughputPoint | None:
        done = [p for p in self.points if p.items_per_s is not None]
        return max(done, key=lambda p: p.items_per_s or 0.0) if done else None

    def to_json(self) -> dict[str, Any]:
        best = self.best
        return {"mode": "throughput", "artifact": self.artifact, "runtime": self.runtime,
                "runtime_settings": self.runtime_settings, "config": self.config,
                "points": [asdict(p) for p in self.points],
                "best": {"batch": best.batch, "streams": best.streams, "items_per_s": best.items_per_s}
                if best else None}


def batched(feeds: Mapping[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    """``feeds`` (batch 1 or any) repeated/cut along axis 0 to ``batch`` items; rank-0 inputs unchanged."""
    out = {}
    for k, v in feeds.items():
        a = np.asarray(v)
        if a.ndim == 0:
            out[k] = a
            continue
        reps = -(-batch // a.shape[0])
        out[k] = np.ascontiguousarray(np.concatenate([a] * reps, axis=0)[:batch])
    return out


def _fixed_batch(session: Session) -> int | None:
    dims = [t.shape[0] for t in session.inputs if len(t.shape) > 0]
    fixed = {int(d) for d in dims if isinstance(d, int) and d > 0}
    return fixed.pop() if len(fixed) == 1 else None


def _run_point(sessions: Sequence[Session], feeds: Mapping[str, np.ndarray], duration_s: float,
               warmup_s: float) -> tuple[list[list[int]], float]:
    """Every stream runs back to back in its own thread; returns per-stream call times (ns) and wall s."""
    times: list[list[int]] = [[] for _ in sessions]
    start = threading.Barrier(len(sessions) + 1)
    stop_at = [2**62]  # until the main thread sets the real deadline, right after the start barrier
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        sess, buf, clock = sessions[i], times[i], time.perf_counter_ns
        try:
            warm_until = clock() + int(warmup_s * 1e9)
            while clock() < warm_until:
                sess.run(feeds)
            start.wait()
            while True:
                t0 = clock()
                if t0 >= stop_at[0]:
                    break
                sess.run(feeds)
                buf.append(clock() - t0)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(sessions))]
    for t in threads:
        t.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        pass
    t0 = time.perf_counter_ns()
    stop_at[0] = t0 + int(duration_s * 1e9)
    for t in threads:
        t.join()
    wall = (time.perf_counter_ns() - t0) / 1e9
    if errors:
        raise errors[0]
    return times, wall


def throughput_sweep(artifact: Path, runtime: str, feeds: Mapping[str, np.ndarray], cfg: ThroughputConfig, *,
                     options: SessionOptions | None = None) -> ThroughputResult:
    """Run the sweep of the module docstring; ``feeds`` give the per-item inputs (any batch)."""
    from edgekd.profile.protocol import ProfileTarget, load_session

    base = options or SessionOptions()
    opts = SessionOptions(threads=cfg.threads_per_stream, precision=base.precision, device=base.device,
                          providers=base.providers, hint=base.hint, extra=base.extra)
    target = ProfileTarget(Path(artifact), runtime, opts, feeds)
    pool: list[Session] = [load_session(target)]
    settings = dict(pool[0].settings())
    fixed = _fixed_batch(pool[0])
    points = []
    for b in cfg.batches:
        for s in cfg.streams:
            pt = ThroughputPoint(b, s, cfg.threads_per_stream)
            if fixed is not None and b != fixed:
                pt.skipped = f"the model fixes the batch dimension to {fixed}"
                points.append(pt)
                continue
            while len(pool) < s:
                pool.append(load_session(target))
            times, wall = _run_point(pool[:s], batched(feeds, b), cfg.duration_s, cfg.warmup_s)
            _fill(pt, times, wall)
            points.append(pt)
    return ThroughputResult(str(artifact), runtime, {str(k): _plain(v) for k, v in settings.items()},
                            {**asdict(cfg), "batches": list(cfg.batches), "streams": list(cfg.streams)}, points)


def _fill(pt: ThroughputPoint, times: Sequence[Sequence[int]], wall: float) -> None:
    all_ms = np.asarray([t for ts in times for t in ts], dtype=np.float64) / 1e6
    pt.calls, pt.items, pt.wall_s = int(all_ms.size), int(all_ms.size) * pt.batch, wall
    if all_ms.size == 0:
        pt.skipped = "no call completed within the duration: raise --duration-s"
        return
    pt.items_per_s = pt.items / wall
    pt.per_item_ms = 1000.0 * wall / pt.items
    pt.latency_ms = {"p50": float(np.percentile(all_ms, 50)), "p90": float(np.percentile(all_ms, 90)),
                     "p99": float(np.percentile(all_ms, 99)), "mean": float(all_ms.mean())}


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v if isinstance(v, (str, int, float, bool)) or v is None else str(v)


def format_table(res: ThroughputResult) -> list[str]:
    """Plain-text lines: one per point, the best marked."""
    best = res.best
    lines = ["batch streams threads/stream   items/s   p50 ms   p90 ms   p99 ms"]
    for p in res.points:
        if p.items_per_s is None:
            lines.append(f"{p.batch:5d} {p.streams:7d} {str(p.threads_per_stream):>14s}   skipped: {p.skipped}")
            continue
        mark = "  <- best" if p is best else ""
        lines.append(f"{p.batch:5d} {p.streams:7d} {str(p.threads_per_stream):>14s} {p.items_per_s:9.1f} "
                     f"{p.latency_ms['p50']:8.3f} {p.latency_ms['p90']:8.3f} {p.latency_ms['p99']:8.3f}{mark}")
    return lines
