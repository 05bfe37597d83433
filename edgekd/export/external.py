"""Models edgekd did not make, and students of finished runs: load them so they can be exported.

- :func:`load_run_student`: an edgekd run folder (``manifest.json`` holding ``recipe_config`` and
  ``student_kd.safetensors``) -> the student module with its weights and the task's IOSpec.
- :func:`prepare_external_onnx`: an ONNX file from elsewhere (e.g. the PP-OCR models shipped in
  ``rapidocr-onnxruntime``) -> a checked model whose weights are initializers (graphs that keep weights
  in ``Constant`` nodes are converted, then folded with onnxslim) and its IOSpec, dynamic H/W included.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError, ExportError
from edgekd.export.iospec import IOSpec, TensorSpec

RUN_WEIGHTS = ("student_kd.safetensors", "student.safetensors")


@dataclass
class RunStudent:
    module: Any  # torch.nn.Module in eval mode, weights loaded
    spec: IOSpec
    task: Any
    recipe: Any
    run_dir: Path
    weights: Path


def load_run_student(run_dir: str | os.PathLike[str], *, weights: str | None = None) -> RunStudent:
    """Rebuild the student of a finished run from its manifest's resolved recipe and load its weights."""
    from edgekd.config.recipe import recipe_model
    from edgekd.tasks import build_task
    from edgekd.weights import load_module_weights

    run = Path(run_dir)
    manifest = run / "manifest.json"
    if not manifest.is_file():
        raise ConfigError(f"{run}: not an edgekd run folder (no manifest.json)",
                          hint="pass the output folder of `edgekd distill-and-export`, or an .onnx file")
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{manifest}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("recipe_config"), dict):
        raise ConfigError(f"{manifest}: has no 'recipe_config' object",
                          hint="the run was made by an older edgekd, or the manifest was edited; re-run it")
    from pydantic import ValidationError

    try:
        recipe = recipe_model().model_validate(data["recipe_config"])
    except ValidationError as exc:
        raise ConfigError(f"{manifest}: its recipe_config does not validate with this edgekd",
                          [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()]) from None
    if weights is not None:
        wpath = run / weights
    else:
        found = [run / w for w in RUN_WEIGHTS if (run / w).is_file()]
        if not found:
            raise ConfigError(f"{run}: no student weights ({' or '.join(RUN_WEIGHTS)})",
                              hint="the run did not finish training; re-run it")
        wpath = found[0]
    task = build_task(recipe.task, getattr(recipe, "seed", 0))
    module = task.build_student()
    distill_cfg = getattr(recipe, "distill", None)
    qat = getattr(distill_cfg, "qat", None)
    if qat is not None and (qat.mode == "scratch" or wpath.name == "student_qat.safetensors"):
        # A quantization-aware run saved fake-quant scales with the weights: rebuild the same
        # fake-quant student so they load (export_onnx then writes it as QDQ INT8). A fine-tuned one
        # (student_qat.safetensors) was BatchNorm-folded before fake quantization: fold the fresh one too.
        from edgekd.distill.fold_bn import fold_batchnorm
        from edgekd.distill.qat import prepare_qat

        if qat.mode == "finetune":
            fold_batchnorm(module.eval())
        prepare_qat(module, per_channel=qat.per_channel, weight_bits=qat.weight_bits, activation=qat.activation)
    load_module_weights(module, wpath)
    module.eval()
    return RunStudent(module, task.io_spec(), task, recipe, run, wpath)


# --- ONNX models from elsewhere --------------------------------------------------------------------------

@dataclass
class ExternalModel:
    source: Path
    proto: Any  # onnx.ModelProto, weights as initializers
    spec: IOSpec
    constants_converted: int
    folded: bool
    notes: list[str]


def load_onnx(path: str | os.PathLike[str]) -> Any:
    """onnx.load with errors that say what is wrong with the file."""
    import onnx

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"model {str(p)!r} does not exist", hint="check the path")
    if not p.is_file():
        raise ConfigError(f"{str(p)!r} is a folder without manifest.json, not a model",
                          hint="pass an .onnx file or an edgekd run folder")
    try:
        proto = onnx.load(str(p))
    except Exception as exc:
        raise ConfigError(f"{p.name}: not an ONNX model ({type(exc).__name__}: {str(exc)[:200]})",
                          hint="pass an .onnx file, or an edgekd run folder") from None
    if not proto.graph.node and not proto.graph.output:
        raise ConfigError(f"{p.name}: not an ONNX model (no graph)", hint="pass an .onnx file")
    return proto


def onnx_io_spec(proto: Any) -> IOSpec:
    """IOSpec of an ONNX graph: fixed dims as ints, named or unknown dynamic dims as names."""
    import onnx

    inits = {i.name for i in proto.graph.initializer}

    def spec(vi: Any) -> TensorSpec:
        tt = vi.type.tensor_type
        dims: list[int | str] = []
        for i, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param") and d.dim_param not in ("", "?"):
                dims.append(d.dim_param)
            else:
                dims.append(f"{vi.name}_dim{i}")
        try:
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)).name
        except Exception:
            dtype = "float32"
        return TensorSpec(vi.name, tuple(dims), dtype)

    ins = tuple(spec(vi) for vi in proto.graph.input if vi.name not in inits)
    outs = tuple(spec(vi) for vi in proto.graph.output)
    first = {t.shape[0] for t in ins if t.shape and isinstance(t.shape[0], str)}
    return IOSpec(ins, outs, {d: 1 for d in first})


def constants_to_initializers(proto: Any) -> int:
    """Move the main graph's ``Constant`` nodes into initializers (what exporters like paddle2onnx emit).

    Tools that look for weights among initializers (quantizers, TensorRT refitting, onnxslim's folding)
    then see them. Returns how many nodes were converted.
    """
    from onnx import helper, numpy_helper

    keep, converted = [], 0
    for node in proto.graph.node:
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or len(node.attribute) != 1:
            keep.append(node)
            continue
        attr = node.attribute[0]
        value = helper.get_attribute_value(attr)
        if attr.name == "value":
            arr = numpy_helper.to_array(value)
        elif attr.name in ("value_float", "value_floats"):
            arr = np.asarray(value, dtype=np.float32)
        elif attr.name in ("value_int", "value_ints"):
            arr = np.asarray(value, dtype=np.int64)
        else:  # sparse tensors, strings: leave them
            keep.append(node)
            continue
        proto.graph.initializer.append(numpy_helper.from_array(arr, node.output[0]))
        converted += 1
    del proto.graph.node[:]
    proto.graph.node.extend(keep)
    return converted


def concrete_feeds(spec: IOSpec, shapes: dict[str, tuple[int, ...]] | None = None, seed: int = 0,
                   default_dim: int = 64) -> dict[str, np.ndarray]:
    """Random inputs: ``shapes`` where given, else dynamic batch 1 and other dynamic dims ``default_dim``."""
    rng = np.random.default_rng(seed)
    shapes = dict(shapes or {})
    out = {}
    for t in spec.inputs:
        if t.name in shapes:
            shape = tuple(shapes[t.name])
        else:
            shape = tuple(d if isinstance(d, int) else (1 if i == 0 else default_dim) for i, d in enumerate(t.shape))
        if np.issubdtype(np.dtype(t.dtype), np.integer):
            out[t.name] = rng.integers(0, 2, size=shape).astype(t.dtype)
        else:
            out[t.name] = rng.uniform(0, 1, size=shape).astype(t.dtype)
    return out


def prepare_external_onnx(path: str | os.PathLike[str], *, fold: bool = True,
                          input_shapes: dict[str, tuple[int, ...]] | None = None) -> ExternalModel:
    """Load, move Constant-node weights to initializers, fold constants with onnxslim (kept only if the
    folded graph reproduces the original's outputs at ``input_shapes``, or at a guessed shape)."""
    import onnx

    src = Path(path)
    proto = load_onnx(src)
    original = onnx.ModelProto()
    original.CopyFrom(proto)
    notes: list[str] = []
    n_const = constants_to_initializers(proto)
    spec = onnx_io_spec(proto)
    unknown = sorted(set(input_shapes or {}) - set(spec.input_names))
    if unknown:
        raise ConfigError(f"--input names {unknown}, which are not inputs of {src.name} ({spec.input_names})")
    folded = False
    if fold:
        try:
            import onnxslim

            slim = onnxslim.slim(proto)
        except Exception as exc:
            slim = None
            notes.append(f"onnxslim failed ({type(exc).__name__}: {str(exc)[:200]}); constants not folded")
        if slim is not None:
            ok, why = _same_outputs(original, slim, spec, input_shapes)
            if ok:
                proto, folded = slim, True
                if why:
                    notes.append(why)
            else:
                notes.append(f"folded graph rejected: {why}")
    if not folded:
        ok, why = _same_outputs(original, proto, spec, input_shapes)
        if not ok:
            raise ExportError(f"{src.name}: converting Constant nodes to initializers changed the model: {why}")
    return ExternalModel(src, proto, onnx_io_spec(proto), n_const, folded, notes)


def _same_outputs(a: Any, b: Any, spec: IOSpec, shapes: dict[str, tuple[int, ...]] | None) -> tuple[bool, str | None]:
    """Run both protos with ORT on one random input; (same?, note)."""
    import onnxruntime as ort

    feeds = concrete_feeds(spec, shapes, seed=0)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    try:
        ref = ort.InferenceSession(a.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)
    except Exception as exc:
        return True, (f"not verified: the original model does not run at {({k: list(v.shape) for k, v in feeds.items()})}"
                      f" ({type(exc).__name__}); give --input NAME=SHAPE")
    try:
        got = ort.InferenceSession(b.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)
    except Exception as exc:
        return False, f"it does not run ({type(exc).__name__}: {str(exc)[:200]})"
    for o, x, y in zip(spec.output_names, ref, got, strict=False):
        if x.shape != y.shape or not np.allclose(x, y, atol=1e-5, rtol=1e-4):
            return False, f"output {o!r} changed"
    return True, None
