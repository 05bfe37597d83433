"""Models edgekd did not make: load them so they can be exported.

(A finished run's student is rebuilt by ``edgekd.tasks.run_student.load_run_student``.)

- :func:`prepare_external_onnx`: an ONNX file from elsewhere (e.g. the PP-OCR models shipped in
  ``rapidocr-onnxruntime``) -> a checked model whose weights are initializers (graphs that keep weights
  in ``Constant`` nodes are converted, then folded with onnxslim) and its IOSpec, dynamic H/W included.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError, ExportError
from edgekd.iospec import IOSpec, TensorSpec

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


def concrete_feeds(spec: IOSpec, shapes: Mapping[str, Sequence[int]] | None = None, seed: int = 0,
                   default_dim: int = 64, *, values: Mapping[str, np.ndarray] | None = None,
                   index_bounds: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """Inputs (:func:`edgekd.feeds.synth_feed`): ``values`` as given, else random at ``shapes`` where given,
    else dynamic batch 1 and other dynamic dims ``default_dim``; integers within ``index_bounds``."""
    from edgekd.feeds import synth_feed

    shapes = dict(shapes or {})
    resolved = {}
    for t in spec.inputs:
        if t.name in shapes:
            resolved[t.name] = tuple(shapes[t.name])
        else:
            resolved[t.name] = tuple(d if isinstance(d, int) else (1 if i == 0 else default_dim)
                                     for i, d in enumerate(t.shape))
    return synth_feed(spec.inputs, resolved, np.random.default_rng(seed), values=values, index_bounds=index_bounds)


def prepare_external_onnx(path: str | os.PathLike[str], *, fold: bool = True,
                          input_shapes: dict[str, tuple[int, ...]] | None = None,
                          input_values: Mapping[str, np.ndarray] | None = None) -> ExternalModel:
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
            ok, why = _same_outputs(original, slim, spec, input_shapes, input_values)
            if ok:
                proto, folded = slim, True
                if why:
                    notes.append(why)
            else:
                notes.append(f"folded graph rejected: {why}")
    if not folded:
        ok, why = _same_outputs(original, proto, spec, input_shapes, input_values)
        if not ok:
            raise ExportError(f"{src.name}: converting Constant nodes to initializers changed the model: {why}")
    return ExternalModel(src, proto, onnx_io_spec(proto), n_const, folded, notes)


def _same_outputs(a: Any, b: Any, spec: IOSpec, shapes: dict[str, tuple[int, ...]] | None,
                  values: Mapping[str, np.ndarray] | None = None) -> tuple[bool, str | None]:
    """Run both protos with ORT on one random input (``values`` as given); (same?, note)."""
    import onnxruntime as ort

    from edgekd.feeds import gather_index_bounds

    feeds = concrete_feeds(spec, shapes, seed=0, values=values, index_bounds=gather_index_bounds(a))
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
