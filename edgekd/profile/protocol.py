"""The measurement protocol, modelled on trtexec, OpenVINO's benchmark_app and MLPerf single-stream.

For each target: load (timed), first inference (timed apart: it includes lazy initialisation),
warm-up until BOTH ``warmup_s`` seconds and ``warmup_iters`` iterations have passed, then
``sessions`` blocks of ``iterations`` timed runs. With several targets and ``interleave=True`` the
sessions alternate between targets (A B, B A, A B, ...: the order flips every round so a slow drift
of the machine hits every target equally). The iteration count is raised where needed so that the
timed part lasts at least ``min_duration_s`` (estimated from the warm-up).

The timed loop does nothing but call the clock, run, and store an int into a preallocated list:
``time.perf_counter_ns`` on the CPU; a session that runs on a GPU may expose ``timed_run(feeds) ->
float`` (milliseconds between CUDA events recorded around the enqueue, synchronised) which is then
used instead. Sensors are sampled in a background thread for the whole run; throttling or clock
drift makes every report of the run invalid.

Gates that add sessions until a decision is reached use :class:`InterleavedRun` directly::

    with InterleavedRun(targets, cfg) as run:
        run.run_rounds(5)
        ...; run.run_rounds(2)
        reports = run.reports()
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import BackendUnavailableError, ConfigError, EdgekdError, ProfileError
from edgekd.runtime.base import Session, SessionOptions, check_feeds

MAX_ITERATIONS_PER_SESSION = 200_000


@dataclass(frozen=True)
class MeasureConfig:
    warmup_s: float = 0.5
    warmup_iters: int = 10
    sessions: int = 5
    iterations: int = 100
    min_duration_s: float = 1.0  # total timed duration per target, over all sessions
    noisy_cv: float = 0.05  # session-median CV above which a run is flagged noisy
    sensor_interval_s: float = 0.5
    drift_threshold: float = 0.10  # relative clock range that invalidates a run
    power_interval_s: float = 0.1  # tegrastats/NVML power sampling during the timed sessions (energy)
    power_rail: str | None = None  # tegrastats rail to integrate; None: the board's input rail

    def __post_init__(self) -> None:
        problems = []
        for name in ("warmup_s", "min_duration_s", "noisy_cv", "sensor_interval_s", "drift_threshold"):
            v = getattr(self, name)
            if isinstance(v, float) and not math.isfinite(v):
                problems.append(f"{name}={v!r}: must be a finite number")
        if problems:
            raise ConfigError("invalid measurement settings", problems, hint="e.g. --warmup-s 0.5 --min-duration-s 1")
        for name, lo in (("warmup_s", 0), ("warmup_iters", 0), ("min_duration_s", 0), ("noisy_cv", 0),
                         ("drift_threshold", 0)):
            if getattr(self, name) < lo:
                problems.append(f"{name}={getattr(self, name)!r}: must be >= {lo}")
        for name in ("sessions", "iterations"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                problems.append(f"{name}={v!r}: must be an integer >= 1")
        if not (isinstance(self.power_interval_s, (int, float)) and math.isfinite(self.power_interval_s)
                and self.power_interval_s > 0):
            problems.append(f"power_interval_s={self.power_interval_s!r}: must be a finite number > 0")
        if self.sensor_interval_s <= 0:
            problems.append(f"sensor_interval_s={self.sensor_interval_s!r}: must be > 0")
        if problems:
            raise ConfigError("invalid measurement settings", problems,
                              hint="e.g. --sessions 5 --iterations 100")


@dataclass
class ProfileTarget:
    """What to profile: an artifact file run by a named runtime with options, on fixed feeds.

    ``session_factory`` replaces loading from the file (in-memory torch modules, tests); the load
    time is then the factory's time.
    """

    artifact: Path | None
    runtime: str
    options: SessionOptions = field(default_factory=SessionOptions)
    feeds: Mapping[str, np.ndarray] = field(default_factory=dict)
    label: str | None = None
    session_factory: Callable[[], Session] | None = None

    @classmethod
    def from_module(cls, module: Any, spec: Any, options: SessionOptions, feeds: Mapping[str, np.ndarray],
                    label: str | None = None) -> ProfileTarget:
        """Profile a torch ``nn.Module`` in eager mode (no file)."""
        from edgekd.profile.torch_session import ModuleSession

        return cls(None, "torch", options, feeds, label or type(module).__name__,
                   session_factory=lambda: ModuleSession(module, spec, options))

    @property
    def name(self) -> str:
        return self.label or (Path(self.artifact).name if self.artifact else self.runtime)


def load_session(target: ProfileTarget) -> Session:
    if target.session_factory is not None:
        return target.session_factory()
    if target.artifact is None:
        raise ProfileError(f"target {target.name!r}: no artifact and no session factory")
    from edgekd.runtime import get_runtime

    try:
        rt = get_runtime(target.runtime)
    except ModuleNotFoundError as exc:
        raise BackendUnavailableError(f"--runtime {target.runtime!r}: its backend module could not be imported "
                                      f"({exc})", hint="install the runtime's extra, or pick another --runtime") from None
    ok, why = rt.available()
    if not ok:
        raise BackendUnavailableError(f"--runtime {target.runtime!r} is not usable here: {why}",
                                      hint="install the runtime's extra, or pick another --runtime")
    try:
        return rt.load(Path(target.artifact), target.options)
    except EdgekdError:
        raise
    except Exception as exc:  # a runtime's own parser error: not a model, corrupt file...
        raise ProfileError(f"{target.artifact}: {target.runtime} could not load it: {type(exc).__name__}: {exc}",
                           hint="check that the file is a complete model of the format the runtime reads") from None


@dataclass
class _State:
    target: ProfileTarget
    session: Session
    settings: dict[str, Any]
    load_ms: float
    first_ms: float
    warmup_iters: int
    warmup_ms: float
    iterations: int
    rss_before_load_mb: float | None
    rss_after_load_mb: float | None
    timer: str
    sessions: list[np.ndarray] = field(default_factory=list)
    windows: list[tuple[float, float]] = field(default_factory=list)  # monotonic s of each timed session


def timer_overhead_ns(n: int = 20000) -> float:
    """Mean cost of one timed-loop iteration around a no-op call: the profiler's own overhead."""
    clock = time.perf_counter_ns

    def noop(_: Any) -> None:
        return None

    buf = [0] * n
    x: dict[str, Any] = {}
    for i in range(n):
        t0 = clock()
        noop(x)
        buf[i] = clock() - t0
    return float(np.median(np.asarray(buf, dtype=np.int64)))


def _timed_session(session: Session, feeds: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """One session of ``n`` timed runs; milliseconds. Kept minimal: no allocation besides the int."""
    timed = getattr(session, "timed_run", None)
    if callable(timed):
        out_ms = [0.0] * n
        for i in range(n):
            out_ms[i] = timed(feeds)
        return np.asarray(out_ms, dtype=np.float64)
    run = session.run
    clock = time.perf_counter_ns
    buf = [0] * n
    for i in range(n):
        t0 = clock()
        run(feeds)
        buf[i] = clock() - t0
    return np.asarray(buf, dtype=np.int64) / 1e6


class InterleavedRun:
    """Load and warm up targets once; then run rounds of sessions; then build reports."""

    def __init__(self, targets: Sequence[ProfileTarget], cfg: MeasureConfig, *, interleave: bool = True,
                 progress: bool = True, fresh_sessions: bool = False) -> None:
        """``fresh_sessions``: before every round after the first, load each target's session anew, in that
        round's (alternating) order. A runtime session instance can carry its own small, persistent speed
        offset (cause not pinned down; measured with sessions kept for the whole run: two copies of one
        ONNX model gave candidate (created first) / baseline 1.013-1.028 in 12 of 12 gate runs), which
        turns into a false difference between the models; fresh sessions turn it into between-session
        noise that the statistics account for (0.997-1.033 in 12 runs after). Used by the regression gate."""
        if not targets:
            raise ProfileError("no targets to profile")
        self.targets = list(targets)
        self.cfg = cfg
        self.interleave = interleave
        self.fresh_sessions = fresh_sessions
        self.progress = progress
        self.states: list[_State] = []
        self.rounds = 0
        self._sampler: Any = None
        self._last_log: Any = None
        self._power: Any = None  # PowerSampler, started at the first timed session
        self._power_log: Any = None
        self._t_start = 0.0

    def __enter__(self) -> InterleavedRun:
        from edgekd.profile.memory import current_rss_mb
        from edgekd.profile.sensors import SensorSampler

        self.overhead_ns = timer_overhead_ns()
        for t in self.targets:
            before = current_rss_mb()
            t0 = time.perf_counter_ns()
            sess = load_session(t)
            load_ms = (time.perf_counter_ns() - t0) / 1e6
            after = current_rss_mb()
            check_feeds(t.feeds, sess.inputs, t.name)
            t0 = time.perf_counter_ns()
            sess.run(t.feeds)
            first_ms = (time.perf_counter_ns() - t0) / 1e6
            settings = dict(sess.settings())
            self.states.append(_State(t, sess, settings, load_ms, first_ms, 0, 0.0, self.cfg.iterations, before,
                                      after, "cuda_events" if callable(getattr(sess, "timed_run", None))
                                      else "perf_counter_ns"))
        self._sampler = SensorSampler(self.cfg.sensor_interval_s).__enter__()
        self._t_start = time.monotonic()
        for st in self.states:
            self._warmup(st)
        return self

    def _warmup(self, st: _State) -> None:
        run, feeds = st.session.run, st.target.feeds
        t0 = time.perf_counter_ns()
        deadline = t0 + int(self.cfg.warmup_s * 1e9)  # from t0, so warmup_ms_run >= warmup_s exactly
        n = 0
        while n < self.cfg.warmup_iters or time.perf_counter_ns() < deadline:
            run(feeds)
            n += 1
        st.warmup_iters = n
        st.warmup_ms = (time.perf_counter_ns() - t0) / 1e6
        est_ms = st.warmup_ms / n if n else st.first_ms
        # Raise the per-session count so the timed part lasts min_duration_s in total.
        need = math.ceil(self.cfg.min_duration_s * 1000.0 / (self.cfg.sessions * max(est_ms, 1e-6)))
        st.iterations = int(min(max(self.cfg.iterations, need), MAX_ITERATIONS_PER_SESSION))

    def run_rounds(self, n_rounds: int) -> None:
        order = list(range(len(self.states)))
        if self.interleave:
            for _ in range(n_rounds):
                seq = order if self.rounds % 2 == 0 else order[::-1]
                if self.fresh_sessions and self.rounds > 0:
                    for i in seq:
                        self._reload(i)
                for i in seq:
                    self._one(i)
                self.rounds += 1
        else:
            for i in order:
                for _ in range(n_rounds):
                    self._one(i)
            self.rounds += n_rounds

    def _reload(self, i: int) -> None:
        st = self.states[i]
        st.session = None  # type: ignore[assignment]  # release the old instance before loading the new one
        st.session = load_session(st.target)
        for _ in range(max(self.cfg.warmup_iters, 10)):
            st.session.run(st.target.feeds)

    def _one(self, i: int) -> None:
        st = self.states[i]
        if self._power is None and self._power_log is None:
            from edgekd.profile.energy import PowerSampler

            # energy is sampled over the timed sessions only (not loading or warm-up)
            self._power = PowerSampler(self.cfg.power_interval_s, self.cfg.power_rail).start()
        t0 = time.monotonic()
        st.sessions.append(_timed_session(st.session, st.target.feeds, st.iterations))
        st.windows.append((t0, time.monotonic()))
        if self.progress:
            med = float(np.median(st.sessions[-1]))
            print(f"  [{st.target.name}] session {len(st.sessions)}: median {med:.4f} ms "
                  f"({st.iterations} iterations)", file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reports(self) -> list[Any]:
        from edgekd.profile.fingerprint import collect_fingerprint
        from edgekd.profile.memory import file_size_mb, gpu_memory_mb, peak_rss_mb
        from edgekd.profile.report import SCHEMA, ProfileReport
        from edgekd.profile.stats import summarize

        log = self._sampler.log if self._sampler is not None else self._last_log
        if log is None:
            raise ProfileError("reports() called before the run started")
        reasons, sensor_summary = log.verdict(self.cfg.drift_threshold)
        device = collect_fingerprint()
        peak = peak_rss_mb()
        gpu_mem = gpu_memory_mb()
        out = []
        for st in self.states:
            if not st.sessions:
                raise ProfileError(f"{st.target.name}: no sessions were run")
            samples = np.stack(st.sessions)
            s = summarize(samples, noisy_cv=self.cfg.noisy_cv)
            inval = list(reasons)
            emu = device.get("emulation") or {}
            if emu.get("emulated"):  # never present an emulator's latency as the board's
                inval.append(f"emulated ({emu.get('kind', 'unknown')}): this latency is the emulator's, not the "
                             "board's; profile on the real board")
            if s.p90_ucb99 is None:
                inval.append(f"too few samples ({s.n}) for a 99% upper bound on p90: at least 44 are needed")
            art = st.target.artifact
            artifact: dict[str, Any] = {"path": str(art) if art else None, "sha256": None,
                                        "size_mb": file_size_mb(art)}
            if art and Path(art).is_file():
                from edgekd.fileio import sha256_file

                artifact["sha256"] = sha256_file(art)
            rt = {"name": st.target.runtime, **st.settings}
            rt.setdefault("threads", st.target.options.threads)
            rt.setdefault("precision", st.target.options.precision)
            rt.setdefault("device", st.target.options.device)
            if isinstance(rt.get("providers"), tuple):
                rt["providers"] = list(rt["providers"])
            data: dict[str, Any] = {
                "schema": SCHEMA,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "label": st.target.name,
                "valid": not inval,
                "invalid_reasons": inval,
                "artifact": artifact,
                "device": device,
                "runtime": _jsonable(rt),
                "inputs": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in st.target.feeds.items()},
                "transfers": str(st.settings.get("transfers", "none: inputs and outputs stay in host memory (CPU)"
                                                 if st.timer == "perf_counter_ns" else "see runtime settings")),
                "settings": {**asdict(self.cfg), "interleaved": self.interleave and len(self.states) > 1,
                             "targets_in_run": len(self.states), "sessions_run": len(st.sessions),
                             "iterations_per_session": st.iterations, "warmup_iters_run": st.warmup_iters,
                             "warmup_ms_run": st.warmup_ms, "timer": st.timer,
                             "timer_overhead_ns": self.overhead_ns},
                "results": {
                    "latency_ms": s.latency_dict(),
                    "session_medians_ms": s.session_medians_ms,
                    "session_cv": s.session_cv, "noisy": s.noisy, "noisy_threshold": s.noisy_threshold,
                    "contended": bool((sensor_summary.get("cpu_contention") or {}).get("contended", False)),
                    "n_samples": s.n, "throughput_per_s": s.throughput_per_s,
                    "load_ms": st.load_ms, "first_inference_ms": st.first_ms,
                    "peak_rss_mb": peak,
                    "peak_rss_scope": "process" if len(self.states) == 1 else
                    f"process, {len(self.states)} targets loaded together",
                    "rss_before_load_mb": st.rss_before_load_mb,
                    "rss_load_delta_mb": (st.rss_after_load_mb - st.rss_before_load_mb)
                    if st.rss_after_load_mb is not None and st.rss_before_load_mb is not None else None,
                    "gpu_memory": gpu_mem,
                    "artifact_mb": artifact["size_mb"],
                    "timer_overhead_pct_of_p50": 100.0 * self.overhead_ns / 1e6 / s.p50 if s.p50 > 0 else None,
                },
                "sensors": sensor_summary,
            }
            data["energy"], data["energy_unavailable"] = self._energy(st)
            out.append(ProfileReport(data, samples))
        return out

    def _stop_power(self) -> Any:
        """Stop the power sampler (the timed sessions are over once reports are asked for); its log."""
        if self._power is not None:
            self._power_log = self._power.stop()
            self._power = None
        return self._power_log

    def _energy(self, st: _State) -> tuple[dict[str, Any] | None, str | None]:
        """The report's ``energy`` for one target and, when it is None, the reason (``energy_unavailable``)."""
        return _energy_of(self._stop_power(), st)

    def close(self) -> None:
        self._stop_power()
        if self._sampler is not None:
            self._last_log = self._sampler.log
            self._sampler.__exit__(None, None, None)
            self._sampler = None


def _energy_of(log: Any, st: _State) -> tuple[dict[str, Any] | None, str | None]:
    from edgekd.profile.energy import target_energy

    if log is None:
        return None, "power was not sampled (no timed session ran)"
    return target_energy(log, st.windows, sum(len(x) for x in st.sessions))


def _jsonable(d: Any) -> Any:
    if isinstance(d, dict):
        return {str(k): _jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    if isinstance(d, (str, int, float, bool)) or d is None:
        return d
    if isinstance(d, np.generic):
        return d.item()
    return str(d)


def profile_artifacts(targets: Sequence[ProfileTarget], cfg: MeasureConfig, *, interleave: bool = True,
                      progress: bool = True) -> list[Any]:
    """Profile every target under one protocol; one :class:`ProfileReport` per target, in order."""
    run = InterleavedRun(targets, cfg, interleave=interleave, progress=progress)
    try:
        run.__enter__()
        run.run_rounds(cfg.sessions)
    finally:
        run.close()
    return run.reports()
