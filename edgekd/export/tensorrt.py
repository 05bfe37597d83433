"""TensorRT engines, built on the target: a portable build plan here, the engine on the GPU host.

Engines are tied to the GPU and the TensorRT version that built them, so ``edgekd export --format
tensorrt`` on a machine without a GPU writes the ONNX model plus a build plan (``<name>.plan.json``):
precision, one optimisation profile (min/opt/max shape of every input with dynamic dims),
workspace, the paths of the INT8 calibration cache / data and of the timing cache, the ONNX's
SHA-256, and a small set of parity inputs. ``edgekd build-engine PLAN.json`` on the Jetson/GPU host
(:func:`build_engine`) builds the engine with the TensorRT 10 builder API and checks its outputs
against ONNX Runtime running the same ONNX on the same inputs.

INT8 without Q/DQ nodes in the graph uses implicit quantization with ``IInt8EntropyCalibrator2``
(entropy calibration; the calibration cache is read when present and written after calibration, so
a rebuild does not recalibrate). A graph with Q/DQ nodes (explicit quantization) needs no calibrator.
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

PLAN_SCHEMA = "edgekd.trt-plan/1"
PRECISIONS = ("fp32", "fp16", "int8")
_QDQ = {"QuantizeLinear", "DequantizeLinear"}
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
    calibration_cache: str | None = None
    calibration_data: str | None = None  # .npz of calibration batches (INT8, implicit quantization)
    explicit_quantization: bool = False  # the ONNX carries Q/DQ nodes
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
_FILE_FIELDS = ("onnx", "engine", "timing_cache", "calibration_cache", "calibration_data", "parity_feeds")
_OPTIONAL_FILE_FIELDS = ("calibration_cache", "calibration_data", "parity_feeds")


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


def asymmetric_qdq_nodes(proto: Any) -> list[str]:
    """Names of the Q/DQ nodes of ``proto`` that TensorRT rejects: an unsigned (uint8; also the ONNX
    default when the zero point is omitted) or non-zero zero point. TensorRT's explicit quantization is
    symmetric signed INT8 only (its ONNX parser asserts "zeroPt must be all zeros")."""
    from onnx import numpy_helper

    values = {i.name: i for i in proto.graph.initializer}
    for n in proto.graph.node:
        if n.op_type == "Constant" and n.attribute:
            values[n.output[0]] = n.attribute[0].t
    bad = []
    for n in proto.graph.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if len(n.input) < 3 or not n.input[2]:
            bad.append(n.name or n.output[0])
            continue
        zp_t = values.get(n.input[2])
        if zp_t is None:
            continue  # computed at run time: nothing to judge statically
        zp = numpy_helper.to_array(zp_t)
        if zp.dtype == np.uint8 or np.any(zp != 0):
            bad.append(n.name or n.output[0])
    return bad


def write_build_plan(onnx_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, precision: str = "fp16",
                     shapes: Mapping[str, Sequence[int]] | None = None,
                     ranges: Mapping[str, tuple[Sequence[int], Sequence[int], Sequence[int]]] | None = None,
                     max_batch: int = 8, workspace_mb: int = 1024,
                     calib: Iterable[Mapping[str, np.ndarray]] | None = None,
                     parity_feeds: Sequence[Mapping[str, np.ndarray]] | None = None,
                     atol: float = 1e-3, rtol: float = 1e-3) -> Path:
    """Copy the ONNX into ``out_dir`` and write ``<stem>.plan.json`` (plus calibration/parity .npz). Returns the plan."""
    import shutil

    from edgekd.quantize.calibration import model_inputs

    src = Path(onnx_path)
    problems = []
    if precision not in PRECISIONS:
        problems.append(f"--precision {precision!r}: allowed {list(PRECISIONS)}")
    if workspace_mb < 16:
        problems.append(f"--workspace-mb {workspace_mb}: must be >= 16")
    if max_batch < 1:
        problems.append(f"--max-batch {max_batch}: must be >= 1")
    if src.is_file():
        import onnx

        proto = onnx.load(str(src), load_external_data=False)
        found = sorted({n.op_type for n in proto.graph.node} & _ORT_INTEGER_OPS)
        if found:
            problems.append(
                f"{src.name} holds ONNX Runtime integer ops ({', '.join(found)}) that TensorRT cannot parse: export "
                "the FP32 model (student.onnx) with --precision int8 (TensorRT calibrates it) or fp16")
        asym = asymmetric_qdq_nodes(proto)
        if asym:
            problems.append(
                f"{src.name} has {len(asym)} QuantizeLinear/DequantizeLinear node(s) with an unsigned or non-zero "
                f"zero point (e.g. {asym[0]}): TensorRT parses only symmetric signed INT8 Q/DQ (zero point 0). "
                "Give TensorRT the FP32 model (student.onnx) with --precision int8 (it calibrates), or a model "
                "quantized with signed symmetric activations (distill.qat.activation=int8)")
    if problems:
        raise ConfigError("invalid TensorRT build settings", problems)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inputs = model_inputs(src)
    profile = profile_shapes(inputs, shapes=shapes, ranges=ranges, max_batch=max_batch)
    stem = src.stem
    onnx_dst = out / src.name
    if onnx_dst.resolve() != src.resolve():
        with atomic_path(onnx_dst) as tmp:
            shutil.copyfile(src, tmp)
        data = src.with_name(src.name + ".data")
        if data.is_file():
            with atomic_path(out / data.name) as tmp:
                shutil.copyfile(data, tmp)
    import onnx

    ops = {n.op_type for n in onnx.load(str(onnx_dst), load_external_data=False).graph.node}
    explicit = bool(ops & _QDQ)
    calib_name = None
    calib_cache = None
    if precision == "int8" and not explicit:
        calib_cache = f"{stem}.calib.cache"
        if calib is not None:
            batches = [dict(f) for f in calib]
            if not batches:
                raise ConfigError("INT8 calibration data is empty", hint="give calibration inputs (--calib DIR)")
            # TensorRT calibrates at the calibration profile's opt shape: the batches must have it
            for i, b in enumerate(batches):
                for name, a in b.items():
                    if name in profile and list(a.shape) != profile[name]["opt"]:
                        raise ConfigError(
                            f"calibration batch {i}: input {name!r} has shape {list(a.shape)}, the profile's opt "
                            f"shape is {profile[name]['opt']}",
                            hint=f"give --profile {name}=MIN:{'x'.join(map(str, a.shape))}:MAX so that opt matches "
                                 "the calibration batches, or batch the calibration data to the opt shape")
            calib_name = f"{stem}.calib.npz"
            _save_npz(out / calib_name, batches)
    parity_name = None
    if parity_feeds:
        parity_name = f"{stem}.parity.npz"
        _save_npz(out / parity_name, [dict(f) for f in parity_feeds])
    tol = {"fp32": (atol, rtol), "fp16": (max(atol, 1e-2), max(rtol, 1e-2)), "int8": (atol, rtol)}[precision]
    plan = BuildPlan(
        onnx=onnx_dst.name, onnx_sha256=sha256_file(onnx_dst), engine=f"{stem}.{precision}.engine",
        precision=precision, profiles=[profile], workspace_mb=int(workspace_mb), timing_cache=f"{stem}.timing.cache",
        calibration_cache=calib_cache, calibration_data=calib_name, explicit_quantization=explicit,
        parity_feeds=parity_name,
        # INT8 outputs are judged by agreement of the arg-max, not element-wise closeness
        parity={"atol": tol[0], "rtol": tol[1], "compare": "argmax" if precision == "int8" else "allclose",
                "min_agreement": 0.95},
    )
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
class EngineBuildResult:
    engine: Path
    precision: str
    seconds: float
    timing_cache: Path
    calibration_cache: Path | None
    tensorrt_version: str
    device: str
    parity: dict[str, Any] | None


def build_engine(plan_path: str | os.PathLike[str], *, check: bool = True) -> EngineBuildResult:
    """Build the engine a plan describes (needs tensorrt and a CUDA GPU), then check parity vs ONNX Runtime."""
    from edgekd.runtime.tensorrt import import_tensorrt, require_cuda

    plan_file = Path(plan_path)
    plan = BuildPlan.read(plan_file)
    root = plan_file.parent
    onnx_path = root / plan.onnx
    if not onnx_path.is_file():
        raise ConfigError(f"{plan_file}: its ONNX {plan.onnx!r} is not beside it",
                          hint="copy the whole export folder to the GPU host")
    digest = sha256_file(onnx_path)
    if digest != plan.onnx_sha256:
        raise ConfigError(f"{onnx_path.name}: SHA-256 {digest[:12]}... differs from the plan's "
                          f"{plan.onnx_sha256[:12]}...", hint="the ONNX changed after the plan was written: re-export")
    trt = import_tensorrt("building TensorRT engines")
    device = require_cuda()
    import torch

    t0 = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: networks are always explicit-batch
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errs = []
        for i in range(parser.num_errors):
            e = parser.get_error(i)
            op = e.node_operator() if hasattr(e, "node_operator") else "?"
            errs.append(f"node {e.node_name() if hasattr(e, 'node_name') else e.node()} ({op}): {e.desc()}")
        raise ExportError(
            f"{onnx_path.name}: TensorRT {trt.__version__}'s ONNX parser rejected the model:\n"
            + "\n".join(f"  - {e}" for e in errs),
            hint="an operator TensorRT does not support is named above: re-export with another opset, or replace it")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(plan.workspace_mb) << 20)
    if plan.precision in ("fp16", "int8"):
        # INT8 builds also allow FP16 for the layers INT8 cannot take (TensorRT picks the fastest)
        config.set_flag(trt.BuilderFlag.FP16)
    for prof_spec in plan.profiles:
        profile = builder.create_optimization_profile()
        for name, s in prof_spec.items():
            profile.set_shape(name, tuple(s["min"]), tuple(s["opt"]), tuple(s["max"]))
        config.add_optimization_profile(profile)
    calib_cache = None
    if plan.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        if not plan.explicit_quantization:
            calib_cache = root / (plan.calibration_cache or f"{Path(plan.onnx).stem}.calib.cache")
            batches = load_npz_batches(root / plan.calibration_data) if plan.calibration_data else []
            if not batches and not calib_cache.is_file():
                raise ConfigError(f"{plan_file}: INT8 needs calibration data or a calibration cache, and has neither",
                                  hint="re-export with --calib DIR, or copy the .calib.cache beside the plan")
            config.int8_calibrator = _make_calibrator(trt, torch, batches, calib_cache, device)
            config.set_calibration_profile(profile)
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

    parity = None
    if check:
        parity = check_engine_parity(plan, root, engine_path)
    return EngineBuildResult(engine_path, plan.precision, seconds, timing_path, calib_cache, str(trt.__version__),
                             torch.cuda.get_device_name(device), parity)


def check_engine_parity(plan: BuildPlan, root: Path, engine_path: Path) -> dict[str, Any]:
    """The engine vs ONNX Runtime (CPU) running the plan's ONNX on the plan's parity inputs."""
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
                       compare=p.get("compare", "allclose"), min_agreement=float(p.get("min_agreement", 0.95)))
    return asdict(rep)


def _make_calibrator(trt: Any, torch: Any, batches: list[dict[str, np.ndarray]], cache: Path, device: Any) -> Any:
    """An IInt8EntropyCalibrator2 over in-memory batches, with a read/write calibration cache."""

    class _Calibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = batches
            self.index = 0
            self.device_bufs: dict[str, Any] = {}

        def get_batch_size(self) -> int:
            first = next(iter(self.batches[0].values())) if self.batches else None
            return int(first.shape[0]) if first is not None and first.ndim else 1

        def get_batch(self, names: list[str], *args: Any) -> list[int] | None:
            if self.index >= len(self.batches):
                return None
            b = self.batches[self.index]
            self.index += 1
            ptrs = []
            for n in names:
                t = torch.from_numpy(np.ascontiguousarray(b[n])).to(device)
                self.device_bufs[n] = t  # kept alive until the next batch
                ptrs.append(int(t.data_ptr()))
            return ptrs

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            with atomic_open(cache, "wb", encoding=None) as fh:
                fh.write(bytes(data))

    return _Calibrator()
