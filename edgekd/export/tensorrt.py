"""TensorRT engines, built on the target: a portable build plan here, the engine on the GPU host.

Engines are tied to the GPU and the TensorRT version that built them, so ``edgekd export --format
tensorrt`` on a machine without a GPU writes the ONNX model plus a build plan (``<name>.plan.json``):
precision, one optimisation profile (min/opt/max shape of every input with dynamic dims),
workspace, the timing cache, the ONNX's SHA-256, a small set of parity inputs and the parity policy.
``edgekd build-engine PLAN.json`` on the Jetson/GPU host (:func:`build_engine`) builds the engine with
the TensorRT 10 builder API (``trt.Builder``, ``create_network(0)``: explicit batch is TensorRT 10's only
mode, ``trt.OnnxParser``, ``build_serialized_network``) and checks its outputs against ONNX Runtime
running the same ONNX on the same inputs.

INT8 is explicit quantization only: the plan's ONNX carries symmetric signed INT8 Q/DQ nodes, either
the QAT export's or the one :func:`edgekd.export.trt_qdq.write_explicit_int8` makes from the FP32 model
with edgekd's PTQ, and :func:`edgekd.export.trt_qdq.check_explicit_int8` vouches for it. TensorRT then
needs no calibrator; implicit calibration (``IInt8EntropyCalibrator2``) is deprecated since TensorRT
10.1 and edgekd no longer uses it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError, ExportError
from edgekd.fileio import atomic_open, atomic_path, sha256_file, write_json

PLAN_SCHEMA = "edgekd.trt-plan/2"
_OLD_SCHEMAS = {"edgekd.trt-plan/1": "INT8 by implicit calibration (IInt8EntropyCalibrator2, deprecated since "
                                     "TensorRT 10.1)"}
PRECISIONS = ("fp32", "fp16", "int8")
# ONNX Runtime's dynamic-INT8 and integer ops (quantize.mode=dynamic, `edgekd quantize --precision int8-dynamic`,
# QOperator models): TensorRT's ONNX parser has no kernels for them
_ORT_INTEGER_OPS = {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul",
                    "QLinearConv", "QLinearMatMul"}


@dataclass
class BuildPlan:
    onnx: str  # relative to the plan's folder
    onnx_sha256: str
    engine: str
    precision: str
    profiles: list[dict[str, dict[str, list[int]]]]  # [{input: {"min": [...], "opt": [...], "max": [...]}}]
    workspace_mb: int = 1024
    timing_cache: str = "timing.cache"
    explicit_quantization: bool = False  # the ONNX carries symmetric INT8 Q/DQ nodes (checked when written)
    quantized_by: dict[str, Any] | None = None  # edgekd's PTQ settings when edgekd wrote the Q/DQ model
    parity_feeds: str | None = None  # .npz of inputs for the on-target parity check
    parity: dict[str, Any] = field(default_factory=lambda: {"atol": 1e-3, "rtol": 1e-3, "compare": "allclose"})
    schema: str = PLAN_SCHEMA

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> BuildPlan:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"build plan {str(p)!r} does not exist",
                              hint="write one with `edgekd export MODEL --format tensorrt --out DIR`")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: not a JSON build plan ({exc})") from None
        if isinstance(data, dict) and data.get("schema") in _OLD_SCHEMAS:
            raise ConfigError(f"{p}: a build plan of {data['schema']!r}, from an older edgekd "
                              f"({_OLD_SCHEMAS[data['schema']]})",
                              hint="re-create it with `edgekd export MODEL --format tensorrt --out DIR`")
        if not isinstance(data, dict) or data.get("schema") != PLAN_SCHEMA:
            raise ConfigError(f"{p}: not an edgekd TensorRT build plan (schema {PLAN_SCHEMA!r} expected)")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{p}: unknown field(s) {unknown}", hint=f"allowed: {sorted(known)}")
        try:
            plan = cls(**data)
        except TypeError as exc:
            raise ConfigError(f"{p}: incomplete build plan ({exc})") from None
        if plan.precision not in PRECISIONS:
            raise ConfigError(f"{p}: precision {plan.precision!r}; allowed {list(PRECISIONS)}")
        for name in _FILE_FIELDS:
            _check_contained(p, name, getattr(plan, name), optional=name in _OPTIONAL_FILE_FIELDS)
        if not isinstance(plan.onnx_sha256, str):
            raise ConfigError(f"{p}: onnx_sha256 must be a string")
        if isinstance(plan.workspace_mb, bool) or not isinstance(plan.workspace_mb, int) or plan.workspace_mb < 1:
            raise ConfigError(f"{p}: workspace_mb {plan.workspace_mb!r}: a positive integer expected")
        if not isinstance(plan.profiles, list):
            raise ConfigError(f"{p}: profiles must be a list")
        return plan


# The plan's file names: each must name a file in the plan's own folder (a plan comes from another machine).
_FILE_FIELDS = ("onnx", "engine", "timing_cache", "parity_feeds")
_OPTIONAL_FILE_FIELDS = ("parity_feeds",)


def _check_contained(plan_path: Path, field_name: str, value: Any, *, optional: bool) -> None:
    """A plain file name: no folder part, not absolute, not '..'; so joining it onto the plan's folder can
    neither read nor write outside that folder."""
    if value is None and optional:
        return
    if not isinstance(value, str) or not value or value in (".", "..") or "/" in value or "\\" in value \
            or "\x00" in value or Path(value).name != value:
        raise ConfigError(f"{plan_path}: {field_name} {value!r} must be a plain file name in the plan's folder "
                          "(no folders, no '..', not absolute)",
                          hint="re-create the plan with `edgekd export MODEL --format tensorrt --out DIR`")


def profile_shapes(inputs: Sequence[Any], *, shapes: Mapping[str, Sequence[int]] | None = None,
                   ranges: Mapping[str, tuple[Sequence[int], Sequence[int], Sequence[int]]] | None = None,
                   max_batch: int = 8) -> dict[str, dict[str, list[int]]]:
    """One optimisation profile: min/opt/max per input.

    ``inputs`` are ``ModelInput``-like (``name``, ``shape`` with str/None for dynamic dims). A dynamic
    batch (dim 0) defaults to min 1, opt 1, max ``max_batch``; any other dynamic dim needs ``shapes``
    (fixed: min = opt = max) or ``ranges`` (min, opt, max). Fixed dims stay as they are.
    """
    shapes = dict(shapes or {})
    ranges = dict(ranges or {})
    out: dict[str, dict[str, list[int]]] = {}
    problems = []
    names = {i.name for i in inputs}
    for name in sorted((set(shapes) | set(ranges)) - names):
        problems.append(f"--input/--profile names {name!r}, which is not an input of the model ({sorted(names)})")
    for inp in inputs:
        rank = len(inp.shape)
        if inp.name in ranges:
            lo, opt, hi = (list(map(int, s)) for s in ranges[inp.name])
            if not (len(lo) == len(opt) == len(hi) == rank):
                problems.append(f"--profile {inp.name}: every shape needs {rank} dims (the model's {list(inp.shape)})")
                continue
            if any(not (a <= b <= c) for a, b, c in zip(lo, opt, hi, strict=True)):
                problems.append(f"--profile {inp.name}: needs min <= opt <= max in every dim, got {lo} {opt} {hi}")
                continue
            out[inp.name] = {"min": lo, "opt": opt, "max": hi}
            continue
        if inp.name in shapes:
            s = list(map(int, shapes[inp.name]))
            if len(s) != rank:
                problems.append(f"--input {inp.name}: {len(s)} dims, the model's input has {rank} ({list(inp.shape)})")
                continue
            out[inp.name] = {"min": s, "opt": s, "max": s}
            continue
        lo, opt, hi = [], [], []
        for i, d in enumerate(inp.shape):
            if isinstance(d, int) and d > 0:
                lo.append(d)
                opt.append(d)
                hi.append(d)
            elif i == 0:
                lo.append(1)
                opt.append(1)
                hi.append(int(max_batch))
            else:
                problems.append(f"input {inp.name!r} has a dynamic dim {i} ({d!r}, shape {list(inp.shape)}) with no "
                                f"range: add --profile {inp.name}=MINxx:OPTxx:MAXxx (e.g. 1x3x32x32:1x3x48x320:"
                                "8x3x64x1280) or --input NAME=SHAPE")
                break
        else:
            out[inp.name] = {"min": lo, "opt": opt, "max": hi}
    if problems:
        raise ConfigError("cannot build the TensorRT optimisation profile", problems)
    return out


def _settings_problems(src: Path, precision: str, workspace_mb: int, max_batch: int) -> list[str]:
    """Every problem with the asked settings and with the ONNX itself, found before anything is written."""
    problems = []
    if precision not in PRECISIONS:
        problems.append(f"--precision {precision!r}: allowed {list(PRECISIONS)}")
    if workspace_mb < 16:
        problems.append(f"--workspace-mb {workspace_mb}: must be >= 16")
    if max_batch < 1:
        problems.append(f"--max-batch {max_batch}: must be >= 1")
    if not src.is_file():
        return problems
    import onnx

    from edgekd.export.trt_qdq import check_explicit_int8, has_qdq, refusal_lines

    proto = onnx.load(str(src), load_external_data=False)
    found = sorted({n.op_type for n in proto.graph.node} & _ORT_INTEGER_OPS)
    if found:
        problems.append(
            f"{src.name} holds ONNX Runtime integer ops ({', '.join(found)}) that TensorRT cannot parse: export "
            "the FP32 model (student.onnx) with --precision int8 (edgekd writes its symmetric INT8 Q/DQ model) "
            "or fp16")
    elif has_qdq(proto):
        bad = check_explicit_int8(proto)
        if bad:
            problems.append(
                f"{src.name} has {len(bad)} Q/DQ problem(s) TensorRT's explicit INT8 refuses (symmetric signed int8 "
                "only, zero point 0):\n      " + "\n      ".join(refusal_lines(bad)) + "\n    fix: give TensorRT the "
                "FP32 model (student.onnx) with --precision int8 (edgekd quantizes it symmetrically), or a QAT model "
                "trained with signed symmetric activations (distill.qat.activation=int8)")
        elif precision != "int8" and precision in PRECISIONS:
            problems.append(f"{src.name} holds Q/DQ nodes, which TensorRT builds as explicit INT8, and --precision "
                            f"is {precision}: give --precision int8, or the FP32 model for {precision}")
    return problems


def _plan_onnx(src: Path, out: Path, precision: str, calib: Iterable[Mapping[str, np.ndarray]] | None,
               method: str) -> tuple[Path, dict[str, Any] | None]:
    """The ONNX the plan builds, in ``out``: the model itself, or for INT8 from an FP32 model the symmetric INT8
    Q/DQ model edgekd writes from it (returned with the quantizer's settings)."""
    import shutil

    import onnx

    from edgekd.export.trt_qdq import has_qdq, write_explicit_int8

    explicit = has_qdq(onnx.load(str(src), load_external_data=False))
    if precision == "int8" and not explicit:
        feeds = [dict(f) for f in calib] if calib is not None else []
        if not feeds:
            raise ConfigError(f"--precision int8 for TensorRT from the FP32 model {src.name} needs calibration "
                              "inputs: edgekd quantizes it to symmetric INT8 Q/DQ (TensorRT 10 builds INT8 from "
                              "Q/DQ; implicit calibration is deprecated)",
                              hint="give --calib DIR (.npy/.npz inputs), or build fp16 (--precision fp16)")
        out.mkdir(parents=True, exist_ok=True)
        dst = out / f"{src.stem}.qdq.onnx"
        return dst, write_explicit_int8(src, dst, feeds, method=method)
    out.mkdir(parents=True, exist_ok=True)
    dst = out / src.name
    if dst.resolve() != src.resolve():
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        data = src.with_name(src.name + ".data")
        if data.is_file():
            with atomic_path(out / data.name) as tmp:
                shutil.copyfile(data, tmp)
    return dst, None


def parity_policy(precision: str, *, atol: float, rtol: float, compare: str = "allclose",
                  min_agreement: float = 0.99) -> dict[str, Any]:
    """How ``build-engine`` judges the engine against ONNX Runtime on the same ONNX.

    FP32: allclose at (atol, rtol), judged. FP16: allclose at no less than 1e-2, judged. INT8: the policy
    of edgekd's other INT8 artifacts (``edgekd.pipeline.produce``): the task's comparison (``argmax`` with
    its ``min_agreement`` for class scores, else ``allclose`` at the recipe's tolerances), measured and
    reported but not judged, because TensorRT's INT8 kernels round differently from ONNX Runtime's and an
    INT8 model is judged by its metric.
    """
    if precision == "int8":
        return {"atol": atol, "rtol": rtol, "compare": compare, "min_agreement": min_agreement, "judged": False}
    if precision == "fp16":
        atol, rtol = max(atol, 1e-2), max(rtol, 1e-2)
    return {"atol": atol, "rtol": rtol, "compare": "allclose", "min_agreement": min_agreement, "judged": True}


def write_build_plan(onnx_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, precision: str = "fp16",
                     shapes: Mapping[str, Sequence[int]] | None = None,
                     ranges: Mapping[str, tuple[Sequence[int], Sequence[int], Sequence[int]]] | None = None,
                     max_batch: int = 8, workspace_mb: int = 1024,
                     calib: Iterable[Mapping[str, np.ndarray]] | None = None, method: str = "minmax",
                     parity_feeds: Sequence[Mapping[str, np.ndarray]] | None = None,
                     atol: float = 1e-3, rtol: float = 1e-3, compare: str = "allclose",
                     min_agreement: float = 0.99) -> Path:
    """Write the ONNX TensorRT builds into ``out_dir`` and ``<stem>.plan.json`` beside it; returns the plan's path.

    ``calib``: calibration inputs for INT8 from an FP32 model (edgekd's symmetric PTQ, ``method``); a model
    that already holds Q/DQ nodes is checked instead (:func:`edgekd.export.trt_qdq.check_explicit_int8`).
    ``compare``/``min_agreement``: the task's INT8 comparison (:func:`parity_policy`).
    """
    from edgekd.quantize.calibration import model_inputs

    src = Path(onnx_path)
    problems = _settings_problems(src, precision, workspace_mb, max_batch)
    if problems:
        raise ConfigError("invalid TensorRT build settings", problems)
    out = Path(out_dir)
    profile = profile_shapes(model_inputs(src), shapes=shapes, ranges=ranges, max_batch=max_batch)
    onnx_dst, quantized_by = _plan_onnx(src, out, precision, calib, method)
    stem = src.stem
    parity_name = None
    if parity_feeds:
        parity_name = f"{stem}.parity.npz"
        _save_npz(out / parity_name, [dict(f) for f in parity_feeds])
    plan = BuildPlan(
        onnx=onnx_dst.name, onnx_sha256=sha256_file(onnx_dst), engine=f"{stem}.{precision}.engine",
        precision=precision, profiles=[profile], workspace_mb=int(workspace_mb), timing_cache=f"{stem}.timing.cache",
        explicit_quantization=precision == "int8", quantized_by=quantized_by, parity_feeds=parity_name,
        parity=parity_policy(precision, atol=atol, rtol=rtol, compare=compare, min_agreement=min_agreement))
    path = out / f"{stem}.plan.json"
    write_json(path, plan.to_json())
    return path

def _save_npz(path: Path, batches: Sequence[Mapping[str, np.ndarray]]) -> None:
    """Batches as ``<index>/<input>`` arrays (np.savez; read back with allow_pickle=False)."""
    arrays = {f"{i}/{k}": np.ascontiguousarray(v) for i, b in enumerate(batches) for k, v in b.items()}
    with atomic_open(path, "wb", encoding=None) as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]


def load_npz_batches(path: str | os.PathLike[str]) -> list[dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as z:
        by_index: dict[int, dict[str, np.ndarray]] = {}
        for key in z.files:
            idx, _, name = key.partition("/")
            by_index.setdefault(int(idx), {})[name] = z[key]
    return [by_index[i] for i in sorted(by_index)]


@dataclass
class BuilderSettings:
    """What :func:`build_engine` asks of TensorRT's builder, derived from a plan without TensorRT installed.

    ``flags`` are ``trt.BuilderFlag`` names. INT8 plans set INT8 (the ONNX's Q/DQ nodes fix which layers run
    in INT8) and FP16, so that the layers outside Q/DQ pairs may run in FP16 rather than FP32 (TensorRT picks
    the faster). ``calibrator`` is always None: with explicit quantization TensorRT 10 takes scales from the
    Q/DQ nodes, and the implicit-calibration API is deprecated since 10.1.
    """

    flags: list[str]
    workspace_bytes: int
    profiles: list[dict[str, dict[str, list[int]]]]
    calibrator: None = None


def builder_settings(plan: BuildPlan) -> BuilderSettings:
    """The builder flags, workspace and optimisation profiles of ``plan``; refuses an INT8 plan without Q/DQ."""
    if plan.precision == "int8" and not plan.explicit_quantization:
        raise ConfigError(f"INT8 plan for {plan.onnx!r} without explicit quantization: TensorRT 10 builds INT8 from "
                          "symmetric Q/DQ nodes only", hint="re-create the plan with `edgekd export MODEL --format "
                          "tensorrt --precision int8 --calib DIR`")
    flags = {"fp32": [], "fp16": ["FP16"], "int8": ["INT8", "FP16"]}[plan.precision]
    return BuilderSettings(flags=flags, workspace_bytes=int(plan.workspace_mb) << 20, profiles=plan.profiles)


@dataclass
class EngineBuildResult:
    engine: Path
    precision: str
    seconds: float
    timing_cache: Path
    tensorrt_version: str
    device: str
    parity: dict[str, Any] | None


def _checked_onnx(plan_file: Path, plan: BuildPlan) -> Path:
    """The plan's ONNX beside it, unchanged since the plan was written (SHA-256), and, for INT8, still valid Q/DQ."""
    import onnx

    from edgekd.export.trt_qdq import check_explicit_int8, refusal_lines

    onnx_path = plan_file.parent / plan.onnx
    if not onnx_path.is_file():
        raise ConfigError(f"{plan_file}: its ONNX {plan.onnx!r} is not beside it",
                          hint="copy the whole export folder to the GPU host")
    digest = sha256_file(onnx_path)
    if digest != plan.onnx_sha256:
        raise ConfigError(f"{onnx_path.name}: SHA-256 {digest[:12]}... differs from the plan's "
                          f"{plan.onnx_sha256[:12]}...", hint="the ONNX changed after the plan was written: re-export")
    if plan.explicit_quantization:
        bad = check_explicit_int8(onnx.load(str(onnx_path), load_external_data=False))
        if bad:
            raise ConfigError(f"{onnx_path.name}: not symmetric INT8 Q/DQ", refusal_lines(bad),
                              hint="re-create the plan with `edgekd export MODEL --format tensorrt --precision int8`")
    return onnx_path


def _parse(trt: Any, builder: Any, logger: Any, onnx_path: Path) -> Any:
    """(network, parser) TensorRT's ONNX parser makes of ``onnx_path``; every parser error in one ExportError."""
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode, no flag needed
    parser = trt.OnnxParser(network, logger)
    if parser.parse_from_file(str(onnx_path)):
        return network, parser  # the parser must outlive the network's use (it owns the weights)
    errs = []
    for i in range(parser.num_errors):
        e = parser.get_error(i)
        op = e.node_operator() if hasattr(e, "node_operator") else "?"
        errs.append(f"node {e.node_name() if hasattr(e, 'node_name') else e.node()} ({op}): {e.desc()}")
    raise ExportError(
        f"{onnx_path.name}: TensorRT {trt.__version__}'s ONNX parser rejected the model:\n"
        + "\n".join(f"  - {e}" for e in errs),
        hint="an operator TensorRT does not support is named above: re-export with another opset, or replace it")


def _configure(trt: Any, builder: Any, settings: BuilderSettings) -> Any:
    """An IBuilderConfig with the settings' workspace, flags and profiles (no calibrator: explicit quantization)."""
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_bytes)
    for flag in settings.flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    for prof_spec in settings.profiles:
        profile = builder.create_optimization_profile()
        for name, s in prof_spec.items():
            profile.set_shape(name, tuple(s["min"]), tuple(s["opt"]), tuple(s["max"]))
        config.add_optimization_profile(profile)
    return config


def build_engine(plan_path: str | os.PathLike[str], *, check: bool = True) -> EngineBuildResult:
    """Build the engine a plan describes (needs tensorrt and a CUDA GPU), then check parity vs ONNX Runtime."""
    from edgekd.runtime.tensorrt import import_tensorrt, require_cuda

    plan_file = Path(plan_path)
    plan = BuildPlan.read(plan_file)
    settings = builder_settings(plan)
    onnx_path = _checked_onnx(plan_file, plan)
    root = plan_file.parent
    trt = import_tensorrt("building TensorRT engines")
    device = require_cuda()
    import torch

    t0 = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, onnx_path)
    config = _configure(trt, builder, settings)
    timing_path = root / plan.timing_cache
    cache = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"{onnx_path.name}: TensorRT could not build an engine (see the TensorRT log above)",
                          hint="raise --workspace-mb, check the profile shapes, or try another precision")
    engine_path = root / plan.engine
    with atomic_open(engine_path, "wb", encoding=None) as fh:
        fh.write(memoryview(serialized))
    with atomic_open(timing_path, "wb", encoding=None) as fh:
        fh.write(memoryview(config.get_timing_cache().serialize()))
    seconds = round(time.perf_counter() - t0, 2)
    parity = check_engine_parity(plan, root, engine_path) if check else None
    return EngineBuildResult(engine_path, plan.precision, seconds, timing_path, str(trt.__version__),
                             torch.cuda.get_device_name(device), parity)


def check_engine_parity(plan: BuildPlan, root: Path, engine_path: Path) -> dict[str, Any]:
    """The engine vs ONNX Runtime (CPU) running the plan's ONNX on the plan's parity inputs, under the plan's
    :func:`parity_policy` (an INT8 engine's differences are measured, not judged)."""
    from edgekd.export.parity import check_parity
    from edgekd.runtime import SessionOptions, get_runtime
    from edgekd.runtime.predict import session_predict

    ref = get_runtime("onnxruntime").load(root / plan.onnx, SessionOptions(threads=None))
    cand = get_runtime("tensorrt").load(engine_path, SessionOptions(device="cuda", precision=plan.precision))
    if plan.parity_feeds:
        feeds = load_npz_batches(root / plan.parity_feeds)
    else:  # random inputs at the profile's opt shape
        rng = np.random.default_rng(0)
        feeds = [{t.name: rng.uniform(0, 1, plan.profiles[0][t.name]["opt"]).astype(t.dtype) for t in ref.inputs}]
    p = plan.parity
    rep = check_parity(session_predict(ref), session_predict(cand), feeds,
                       output_names=[t.name for t in ref.outputs], atol=float(p.get("atol", 1e-3)),
                       rtol=float(p.get("rtol", 1e-3)), artifact=engine_path.name,
                       compare=p.get("compare", "allclose"), min_agreement=float(p.get("min_agreement", 0.99)),
                       raise_on_failure=bool(p.get("judged", True)))
    return {**asdict(rep), "judged": bool(p.get("judged", True))}
