"""The search behind ``edgekd optimize``: data -> held-out split -> candidates -> judge -> time -> pick -> report.

Every candidate is judged against ONNX Runtime FP32 on inputs that were not used to calibrate it, and
all candidates that run are timed in one interleaved run (A B C, C B A, ...) on this machine, so a slow
drift of the machine hits each of them equally. The pick is the fastest candidate (p50) within the
accuracy budget; every other candidate says why it lost.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError
from edgekd.feeds import InputArgs
from edgekd.pipeline.optimize.report import CandidateEntry, OptimizeReport
from edgekd.profile.protocol import MeasureConfig
from edgekd.quantize.candidates import BuiltCandidate, CandidateSpec
from edgekd.quantize.heldout import HeldOutSplit, MetricName

log = logging.getLogger(__name__)
Feed = dict[str, np.ndarray]


@dataclass
class OptimizeRequest:
    """What ``edgekd optimize`` was asked. ``only``: candidate names to consider (None = all)."""

    model: Path
    out_dir: Path
    device: str = "host-cpu"
    calib_dir: Path | None = None
    eval_dir: Path | None = None
    metric: str = "auto"
    max_drop: float = 0.01
    min_sqnr_db: float = 20.0
    input_shapes: Mapping[str, Sequence[int]] = field(default_factory=dict)
    input_args: InputArgs | None = None  # --input/--feed sizes and values (edgekd.feeds)
    threads: int | None = 1
    calib_count: int = 32
    measure: MeasureConfig = field(default_factory=lambda: MeasureConfig(sessions=6, iterations=50))
    only: Sequence[str] | None = None
    accuracy_control: bool = True
    progress: bool = False
    #: exact candidate names (as a recipe spells them, ``ov-default`` for ``ov-default(PREC)``) instead of
    #: the CLI's name prefixes
    only_exact: bool = False
    #: inputs given directly (``distill-and-export``: training inputs and the validation split) instead of
    #: folders; ``data_note`` says where they came from
    calib_feeds: Sequence[Feed] | None = None
    eval_feeds: Sequence[Feed] | None = None
    data_note: str | None = None
    #: a device already loaded (its name may be a path's), instead of loading ``device`` by name
    device_config: Any = None


@dataclass
class _Judged:
    built: BuiltCandidate
    entry: CandidateEntry
    loaded: bool


def optimize(req: OptimizeRequest) -> OptimizeReport:
    """Run the whole search and write optimize.json, optimize.md and optimize.png into ``req.out_dir``."""
    from edgekd.fileio import sha256_file
    from edgekd.pipeline.optimize.data import load_data
    from edgekd.quantize.candidates import build_candidate, candidate_specs, openvino_host_support
    from edgekd.quantize.heldout import resolve_metrics

    _check(req)
    dev, device_precisions, gpu = _device(req.device_config or req.device)
    input_shapes, values = _given_inputs(req)
    split, data_notes = _given_data(req) or load_data(req.model, req.calib_dir, req.eval_dir, req.calib_count,
                                                      input_shapes, values=values)
    ref_predict, out_names = _reference(req.model, req.threads)
    ref_eval = [list(ref_predict(f)) for f in split.eval]
    metrics = resolve_metrics(req.metric, dict(zip(out_names, ref_eval[0], strict=True)))
    host = openvino_host_support()
    specs = [s for s in candidate_specs(req.model, device_precisions, gpu=gpu, host=host,
                                        accuracy_control=req.accuracy_control) if _wanted(s, req.only, exact=req.only_exact)]
    ac = _accuracy_control(req, split.calib, ref_predict, metrics, out_names)
    work = req.out_dir / "candidates"
    work.mkdir(parents=True, exist_ok=True)
    shapes = _static_shapes(split.eval[0])
    judged = []
    for spec in specs:
        if req.progress:
            log.info("building %s", spec.name)
        built = build_candidate(spec, req.model, work, split.calib, input_shapes=input_shapes or None, ac=ac)
        judged.append(_judge(built, req, split.eval, ref_eval, metrics, out_names, shapes))
    _time(judged, req, split.eval[0], shapes)
    picked = _select(judged)
    rep = OptimizeReport(
        schema="edgekd.optimize/1", model=str(req.model), model_sha256=sha256_file(req.model), device=dev,
        timed_on="this machine" + ("" if dev == "host-cpu" else f" (not on {dev}: run the pick there to confirm)"),
        data=split.note, metrics=dict(metrics), threads=req.threads,
        budget={"max_drop": req.max_drop, "min_sqnr_db": req.min_sqnr_db},
        openvino_default_precision=host.default_precision if host else None,
        measure={**req.measure.__dict__, "interleaved": True}, picked=picked,
        candidates=[j.entry for j in judged], notes=data_notes + _notes(host))
    _write(rep, req.out_dir)
    return rep


def _given_inputs(req: OptimizeRequest) -> tuple[dict[str, Sequence[int]], dict[str, np.ndarray]]:
    """--input/--feed against the model's inputs: (every stated shape, values as given)."""
    shapes: dict[str, Sequence[int]] = dict(req.input_shapes)
    if req.input_args is None or not req.input_args.names:
        return shapes, {}
    from edgekd.quantize.calibration import model_inputs

    res = req.input_args.resolve(model_inputs(req.model), f"MODEL {Path(req.model).name}")
    return {**shapes, **res.shapes}, res.values


def _check(req: OptimizeRequest) -> None:
    problems = []
    if not Path(req.model).is_file():
        problems.append(f"MODEL {str(req.model)!r} does not exist")
    elif Path(req.model).suffix != ".onnx":
        problems.append(f"MODEL {str(req.model)!r}: edgekd optimize starts from an FP32 .onnx file")
    if not 0.0 <= req.max_drop < 1.0:
        problems.append(f"--max-drop {req.max_drop}: allowed 0 <= X < 1 (a fraction of agreement with FP32)")
    if req.threads is not None and req.threads < 1:
        problems.append(f"--threads {req.threads}: must be >= 1")
    if problems:
        raise ConfigError("edgekd optimize: invalid request", problems, hint="see `edgekd optimize --help`")


def _given_data(req: OptimizeRequest) -> tuple[HeldOutSplit, list[str]] | None:
    """The split of inputs given directly (``calib_feeds`` and ``eval_feeds``), or None to read folders."""
    if req.calib_feeds is None:
        return None
    if not req.calib_feeds or not req.eval_feeds:
        raise ConfigError("optimize: calibration and evaluation inputs must each hold at least one input")
    note = req.data_note or (f"calibrated on {len(req.calib_feeds)} inputs, judged on {len(req.eval_feeds)} "
                             "separate inputs")
    return HeldOutSplit(list(req.calib_feeds), list(req.eval_feeds), note), []


def _device(device: Any) -> tuple[str, dict[str, list[str]], bool]:
    from edgekd.config.device import load_device

    dev = load_device(device) if isinstance(device, str) else device
    precisions: dict[str, list[str]] = {str(r.name): [str(p) for p in r.precisions] for r in dev.runtimes}
    gpu = False
    if dev.family != "cpu":
        import onnxruntime as ort

        gpu = "CUDAExecutionProvider" in ort.get_available_providers()
    return dev.name, precisions, gpu


def _wanted(spec: CandidateSpec, only: Sequence[str] | None, *, exact: bool = False) -> bool:
    """ORT FP32 always (the reference); else the names in ``only``: exact (recipe), or on the CLI a full
    candidate name selects that candidate alone and anything else is a prefix (``ort-int8`` = every ORT INT8;
    ``ov-int8-nncf`` is not also ``ov-int8-nncf-ac``)."""
    from edgekd.config.optimize import CANDIDATE_NAMES, candidate_key

    if only is None or spec.name == "ort-fp32":
        return True
    key = candidate_key(spec.name)
    if exact:
        return key in only
    return any(key == o if o in CANDIDATE_NAMES else spec.name.startswith(o) for o in only)


def _reference(model: Path, threads: int | None) -> tuple[Any, list[str]]:
    from edgekd.runtime import SessionOptions, get_runtime
    from edgekd.runtime.predict import session_predict

    sess = get_runtime("onnxruntime").load(model, SessionOptions(threads=threads))
    return session_predict(sess), [t.name for t in sess.outputs]


def _static_shapes(feed: Feed) -> dict[str, tuple[int, ...]]:
    return {k: tuple(int(d) for d in v.shape) for k, v in feed.items()}


def _score_all(metrics: Mapping[str, MetricName], out_names: Sequence[str], refs: Sequence[Sequence[np.ndarray]],
               tests: Sequence[Sequence[np.ndarray]]) -> dict[str, float]:
    from edgekd.quantize.heldout import score_output

    return {n: score_output(metrics[n], [r[i] for r in refs], [t[i] for t in tests]) for i, n in enumerate(out_names)}


def _accuracy_control(req: OptimizeRequest, calib: Sequence[Feed], ref_predict: Any,
                      metrics: Mapping[str, MetricName], out_names: Sequence[str]) -> dict[str, Any]:
    """NNCF's accuracy control validates on the CALIBRATION part, so the held-out part stays unseen."""
    from edgekd.quantize.heldout import SQNR_CAP_DB

    items = [(f, list(ref_predict(f))) for f in calib]
    primary = out_names[0]

    def metric_fn(predict: Any, data: Sequence[Any]) -> float:
        data = list(data)
        return _score_all(metrics, out_names, [d[1] for d in data], [list(predict(d[0])) for d in data])[primary]

    drop = SQNR_CAP_DB - req.min_sqnr_db if metrics[primary] == "sqnr" else req.max_drop
    return {"validation": items, "metric_fn": metric_fn, "max_drop": drop, "max_num_iterations": 5}


def session_options(spec: CandidateSpec, threads: int | None, shapes: Mapping[str, Sequence[int]]) -> Any:
    """The runtime options of a candidate; OpenVINO gets the concrete input shapes to compile statically."""
    from edgekd.runtime import SessionOptions

    extra: dict[str, Any] = {}
    if spec.runtime == "openvino" and shapes:
        extra["input_shapes"] = {k: list(v) for k, v in shapes.items()}
    return SessionOptions(threads=threads, precision=spec.runtime_precision, extra=extra)


def _judge(built: BuiltCandidate, req: OptimizeRequest, eval_feeds: Sequence[Feed],
           ref_eval: Sequence[Sequence[np.ndarray]], metrics: Mapping[str, MetricName], out_names: Sequence[str],
           shapes: Mapping[str, Sequence[int]]) -> _Judged:
    from edgekd.quantize.heldout import within_budget
    from edgekd.runtime import get_runtime
    from edgekd.runtime.predict import session_predict

    spec = built.spec
    entry = CandidateEntry(name=spec.name, runtime=spec.runtime, precision=spec.precision,
                           artifact=str(built.path) if built.path else None, build_settings=dict(built.settings),
                           build_s=round(built.build_s, 3) if built.path or built.error else None, status="skipped")
    if spec.skip is not None:
        entry.why = spec.skip
        return _Judged(built, entry, False)
    if built.error is not None or built.path is None:
        entry.status, entry.why = "failed to build", built.error or "no artifact"
        return _Judged(built, entry, False)
    try:
        sess = get_runtime(spec.runtime).load(built.path, session_options(spec, req.threads, shapes))
        predict = session_predict(sess)
        outs = [list(predict(f)) for f in eval_feeds]
        entry.runtime_settings = _plain(sess.settings())
        del sess
    except Exception as exc:  # a runtime that cannot load or run this artifact is a result, not a crash
        entry.status, entry.why = "failed to run", f"{type(exc).__name__}: {exc}"[:600]
        return _Judged(built, entry, False)
    entry.scores = _score_all(metrics, out_names, ref_eval, outs)
    entry.accuracy = entry.scores[out_names[0]]
    entry.within_budget = all(within_budget(metrics[n], s, max_drop=req.max_drop, min_sqnr_db=req.min_sqnr_db)
                              for n, s in entry.scores.items())
    return _Judged(built, entry, True)


def _plain(d: Any) -> Any:
    if isinstance(d, dict):
        return {str(k): _plain(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_plain(v) for v in d]
    return d if isinstance(d, (str, int, float, bool)) or d is None else str(d)


def _time(judged: Sequence[_Judged], req: OptimizeRequest, feed: Feed, shapes: Mapping[str, Sequence[int]]) -> None:
    from edgekd.profile.protocol import ProfileTarget, profile_artifacts

    run = [j for j in judged if j.loaded]
    targets = [ProfileTarget(j.built.path, j.built.spec.runtime, session_options(j.built.spec, req.threads, shapes),
                             feed, label=j.built.spec.name) for j in run]
    if not targets:
        return
    reports = profile_artifacts(targets, req.measure, interleave=True, progress=req.progress)
    for j, rep in zip(run, reports, strict=True):
        lat = rep.data["results"]["latency_ms"]
        j.entry.latency_p50_ms, j.entry.latency_p90_ms = float(lat["p50"]), float(lat["p90"])
        j.entry.runtime_settings = _plain(rep.data["runtime"])


def _select(judged: Sequence[_Judged]) -> str | None:
    """Fastest p50 within budget; every other candidate gets its reason. Marks the Pareto front and ratios."""
    from edgekd.pipeline.optimize.plot import pareto_front

    measured = [j.entry for j in judged if j.entry.latency_p50_ms is not None]
    base = next((e for e in measured if e.name == "ort-fp32"), None)
    for e in measured:
        if base is not None and base.latency_p50_ms:
            e.ratio_to_ort_fp32 = e.latency_p50_ms / base.latency_p50_ms  # type: ignore[operator]
    flags = pareto_front([(e.latency_p50_ms or 0.0, e.accuracy or 0.0) for e in measured])
    for e, f in zip(measured, flags, strict=True):
        e.pareto = f
    ok = sorted((e for e in measured if e.within_budget), key=lambda e: e.latency_p50_ms or 0.0)
    best = ok[0] if ok else None
    for e in measured:
        if e is best:
            e.status, e.why = "picked", "fastest within the accuracy budget"
        elif not e.within_budget:
            e.status, e.why = "outside the budget", _budget_why(e)
        else:
            e.status = "too slow"  # within budget, so a pick exists (best is not None)
            ratio = (e.latency_p50_ms / best.latency_p50_ms if best is not None and best.latency_p50_ms
                     and e.latency_p50_ms is not None else float("nan"))
            e.why = f"within budget but {ratio:.2f}x the pick's p50"
    return best.name if best else None


def _budget_why(e: CandidateEntry) -> str:
    return "held-out agreement with FP32 too low: " + ", ".join(f"{k} {v:.4g}" for k, v in e.scores.items())


def _notes(host: Any) -> list[str]:
    notes = ["accuracy = agreement with ONNX Runtime FP32 on the held-out inputs (not task labels)"]
    if host is not None:
        notes.append(f"OpenVINO's default CPU inference precision on this machine is {host.default_precision} "
                     f"(capabilities {list(host.capabilities)}); the ov-default candidate, when listed, runs at it")
    return notes


def _write(rep: OptimizeReport, out_dir: Path) -> None:
    from edgekd.fileio import write_json, write_text
    from edgekd.pipeline.optimize.plot import plot_candidates
    from edgekd.pipeline.optimize.report import to_markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "optimize.json", rep.model_dump(mode="json", by_alias=True))
    write_text(out_dir / "optimize.md", to_markdown(rep))
    first = next(iter(rep.metrics.items()))
    plot_candidates(rep.candidates, out_dir / "optimize.png", title=f"{Path(rep.model).name}: {rep.data}",
                    accuracy_label=f"held-out {first[1]} agreement with FP32 ({first[0]})")
