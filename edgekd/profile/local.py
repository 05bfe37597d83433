"""Profile one model file on this machine: what ``edgekd profile ARTIFACT`` does (also on a remote board).

Everything is checked before timing starts (file, format, runtime, device, input shapes), and every
output file is written only at the end, atomically: a failed run leaves nothing half-written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError, ProfileError
from edgekd.runtime.base import SessionOptions

SUFFIX_RUNTIME = {".onnx": "onnxruntime", ".xml": "openvino", ".engine": "tensorrt", ".plan": "tensorrt",
                  ".trt": "tensorrt", ".tflite": "litert"}


def infer_runtime(artifact: Path, runtime: str | None) -> str:
    if runtime:
        from edgekd.errors import UnknownNameError
        from edgekd.runtime import runtime_names

        if runtime not in runtime_names():
            raise UnknownNameError("--runtime", runtime, runtime_names())
        return runtime
    rt = SUFFIX_RUNTIME.get(artifact.suffix.lower())
    if rt is None:
        raise ProfileError(f"ARTIFACT {str(artifact)!r}: cannot tell the runtime from the suffix "
                           f"{artifact.suffix!r}; known suffixes: {', '.join(sorted(SUFFIX_RUNTIME))}",
                           hint="pass --runtime onnxruntime|openvino|tensorrt")
    return rt


def check_artifact(artifact: Path, runtime: str) -> None:
    if not artifact.exists():
        raise ProfileError(f"ARTIFACT {str(artifact)!r}: no such file", hint="check the path")
    if not artifact.is_file():
        raise ProfileError(f"ARTIFACT {str(artifact)!r} is not a file")
    if runtime == "onnxruntime":
        import onnx

        try:
            onnx.load(str(artifact), load_external_data=False)
        except Exception as exc:
            raise ProfileError(f"ARTIFACT {str(artifact)!r} is not an ONNX model ({type(exc).__name__}: "
                               f"{str(exc)[:200]})", hint="pass a .onnx file exported by a framework") from None
    if runtime == "openvino" and artifact.suffix.lower() == ".xml":
        head = artifact.read_bytes()[:512].lstrip()
        if not head.startswith(b"<?xml") and b"<net" not in head:
            raise ProfileError(f"ARTIFACT {str(artifact)!r} is not an OpenVINO IR (.xml) file")
        if not artifact.with_suffix(".bin").is_file():
            raise ProfileError(f"ARTIFACT {str(artifact)!r}: its weights {artifact.with_suffix('.bin').name} "
                               "are missing", hint="keep the .bin beside the .xml")


def build_feeds(specs: Sequence[Any], shapes: Mapping[str, tuple[int, ...]], artifact: str,
                seed: int = 0, notes: list[str] | None = None, *, values: Mapping[str, np.ndarray] | None = None,
                index_bounds: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """Inputs of the model's dtypes (:func:`edgekd.feeds.synth_feed`): ``values`` (--input NAME=VALUE, --feed)
    as given, the others random; dynamic dims come from ``shapes`` (--input), except a dynamic batch (the
    first dim, the only dynamic one): it defaults to 1, said in ``notes`` (the models edgekd exports have one,
    and latency at batch 1 is what an edge device serves)."""
    from edgekd.feeds import synth_feed

    names = [s.name for s in specs]
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise ConfigError(f"--input {unknown[0]}=...: the model {artifact} has no input {unknown[0]!r}; "
                          f"its inputs are {names}")
    given = dict(values or {})
    resolved: dict[str, tuple[int, ...]] = {}
    problems = []
    for s in specs:
        if s.name in given:
            continue
        dims = list(s.shape)
        dynamic = [i for i, d in enumerate(dims) if not (isinstance(d, int) and d > 0)]
        if s.name in shapes:
            want = shapes[s.name]
            if len(want) != len(dims):
                problems.append(f"--input {s.name}={'x'.join(map(str, want))}: rank {len(want)}, the model's "
                                f"input has rank {len(dims)} (dims {dims})")
                continue
            bad = [i for i, (w, d) in enumerate(zip(want, dims, strict=True)) if isinstance(d, int) and d > 0 and w != d]
            if bad:
                problems.append(f"--input {s.name}={'x'.join(map(str, want))}: dim {bad[0]} must be "
                                f"{dims[bad[0]]} (the model's dims are {dims})")
                continue
            shape = tuple(want)
        elif dynamic == [0] and len(dims) > 1:
            shape = (1, *(int(d) for d in dims[1:]))
            if notes is not None:
                notes.append(f"input {s.name!r}: dynamic batch dim {dims[0]!r} set to 1 (give --input "
                             f"{s.name}={'x'.join(map(str, shape))} to choose)")
        elif dynamic:
            example = "x".join(str(d) if isinstance(d, int) and d > 0 else "1" for d in dims)
            problems.append(f"input {s.name!r} has dynamic dims {[dims[i] for i in dynamic]} (shape {dims}): "
                            f"give its shape, e.g. --input {s.name}={example}")
            continue
        else:
            shape = tuple(int(d) for d in dims)
        resolved[s.name] = shape
    if problems:
        raise ProfileError(f"{artifact}: inputs need a shape:\n" + "\n".join(f"  - {p}" for p in problems))
    return synth_feed(specs, resolved, np.random.default_rng(seed), values=given, index_bounds=index_bounds)


@dataclass
class LocalProfileRequest:
    artifact: Path
    runtime: str | None = None
    device: str | None = None
    precision: str = "fp32"
    threads: int | None = None
    inputs: Sequence[str] = ()
    sessions: int = 5
    iterations: int = 100
    warmup_s: float = 0.5
    warmup_iters: int = 10
    min_duration_s: float = 1.0
    layers: bool = False
    provider: str | None = None
    mode: str = "latency"  # "throughput": the latency run, then a batch x streams sweep (edgekd.profile.throughput)
    batches: Sequence[int] = (1, 2, 4, 8)
    streams: Sequence[int] = (1, 2)
    duration_s: float = 2.0
    feeds: Sequence[str] = ()  # --feed NAME=FILE.npy


MODES = ("latency", "throughput")
THROUGHPUT_RUNTIMES = ("onnxruntime", "openvino")


def check_mode(mode: str, runtime: str) -> None:
    """``--mode`` is known, and throughput mode runs on a runtime that can host several sessions at once."""
    if mode not in MODES:
        raise ConfigError(f"--mode {mode!r}: allowed {', '.join(MODES)}", hint="e.g. --mode throughput")
    if mode == "throughput" and runtime not in THROUGHPUT_RUNTIMES:
        raise ConfigError(f"--mode throughput: runtime {runtime!r} cannot run concurrent streams here; it runs on "
                          f"{', '.join(THROUGHPUT_RUNTIMES)}", hint="use --mode latency, or --runtime onnxruntime")


def run_throughput(req: LocalProfileRequest, artifact: Path, runtime: str, opts: SessionOptions,
                   feeds: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The sweep of ``--mode throughput`` as the report's ``throughput`` section. Threads per stream are
    --threads (or the device's), else 1: streams, not threads, are what the sweep varies."""
    from edgekd.profile.throughput import ThroughputConfig, throughput_sweep

    cfg = ThroughputConfig(batches=tuple(req.batches), streams=tuple(req.streams),
                           threads_per_stream=opts.threads or 1, duration_s=req.duration_s,
                           warmup_s=min(req.warmup_s, req.duration_s))
    # no fixed input_shapes extra: the batch changes from point to point
    extra = {k: v for k, v in opts.extra.items() if k != "input_shapes"}
    res = throughput_sweep(artifact, runtime, feeds, cfg, options=dataclasses.replace(opts, extra=extra))
    return res.to_json()


def resolved_feeds(artifact: Path, specs: Sequence[Any], given: Any,
                   notes: list[str] | None = None) -> tuple[dict[str, np.ndarray], Any]:
    """The feeds one artifact is timed on from parsed ``--input``/``--feed`` flags (``given``): stated values
    as given, the rest random (integers indexing a Gather within its rows), dynamic dims from the shapes.
    Returns (feeds, the flags resolved against ``specs``)."""
    from edgekd.feeds import gather_index_bounds

    res = given.resolve(specs, f"the model {artifact}")
    shapes = {k: v for k, v in res.shapes.items() if k not in res.values}
    feeds = build_feeds(specs, shapes, str(artifact), notes=notes, values=res.values,
                        index_bounds=gather_index_bounds(artifact))
    return feeds, res


def profile_file(req: LocalProfileRequest, *, progress: bool = True, notes: list[str] | None = None) -> Any:
    """Validate, profile (and optionally run the per-layer pass); returns the ProfileReport (unsaved).
    What was assumed (a dynamic batch set to 1) is appended to ``notes``."""
    from edgekd.feeds import parse_input_args
    from edgekd.profile.protocol import MeasureConfig, ProfileTarget, load_session, profile_artifacts

    artifact = Path(req.artifact)
    runtime = infer_runtime(artifact, req.runtime)
    check_mode(req.mode, runtime)
    check_artifact(artifact, runtime)
    given = parse_input_args(list(req.inputs), list(req.feeds))
    cfg = MeasureConfig(warmup_s=req.warmup_s, warmup_iters=req.warmup_iters, sessions=req.sessions,
                        iterations=req.iterations, min_duration_s=req.min_duration_s)
    threads = req.threads
    dev_name = None
    if req.device:
        from edgekd.config.device import load_device

        dev = load_device(req.device)
        dev_name = dev.name
        if not dev.supports(runtime, req.precision):
            raise ConfigError(f"--device {dev.name}: runtime {runtime!r} at --precision {req.precision!r} is not "
                              f"supported; it supports " + "; ".join(f"{r.name} ({', '.join(r.precisions)})"
                                                                      for r in dev.runtimes))
        threads = threads or dev.default_threads
        cfg = dataclasses.replace(cfg, power_rail=dev.power_rail)
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads {threads}: must be >= 1")
    opts = SessionOptions(threads=threads, precision=req.precision,
                          providers=(req.provider,) if req.provider else ())
    probe = ProfileTarget(artifact, runtime, opts, {})
    # A first load only to read the input specs; the profiler loads again and times that load.
    specs = list(load_session(probe).inputs)
    feeds, res = resolved_feeds(artifact, specs, given, notes)
    if runtime == "openvino":
        # compile at the shapes fed (benchmark_app's -shape): a model compiled with dynamic dims and only fed
        # concrete ones reads 17-40% slow (issue 21)
        opts = dataclasses.replace(opts, extra={**opts.extra,
                                                "input_shapes": {k: list(v.shape) for k, v in feeds.items()}})
    [rep] = profile_artifacts([ProfileTarget(artifact, runtime, opts, feeds)], cfg, progress=progress)
    rep.data["device_profile"] = dev_name
    # which inputs were not random: a stated value changes what the model computes (a branch, a table row)
    rep.data["inputs_given"] = {k: given.args[k].flag for k in res.values}
    if req.mode == "throughput":
        rep.data["throughput"] = run_throughput(req, artifact, runtime, opts, feeds)
    if req.layers:
        from edgekd.profile.layers import layer_breakdown

        lay = layer_breakdown(artifact, runtime, opts, feeds)
        lay["vs_timed_p50_pct"] = 100.0 * lay["sum_ms"] / rep.p50 if rep.p50 > 0 else None
        rep.data["layers"] = lay
    return rep
