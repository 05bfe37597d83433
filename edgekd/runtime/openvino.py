"""OpenVINO backend: reads an IR (``.xml`` + ``.bin``) or an ``.onnx`` file and compiles it for CPU, GPU or NPU.

Compile settings:
- ``PERFORMANCE_HINT`` from ``options.hint`` (latency | throughput);
- ``INFERENCE_NUM_THREADS`` from ``options.threads`` (CPU only);
- static input shapes from ``options.extra["input_shapes"]`` (``{name: [dims]}``, e.g. from ``--input``): the
  model is reshaped to them before ``compile_model``, as ``benchmark_app -shape`` does. Compiled with its
  dynamic dimensions instead, a model ran 1.26-1.43x slower than compiled static (issue 21);
- ``INFERENCE_PRECISION_HINT`` from ``options.precision``: ``fp32`` (default) -> f32. On CPUs with
  AVX-512 BF16/AMX OpenVINO's own default is bf16, which is neither a true FP32 baseline nor good for
  parity; ``fp16``/``bf16`` ask for those, ``int8`` (an NNCF-quantized IR) keeps f32 for the layers
  that stay in floating point. ``settings()`` reports the precision the compiled model actually uses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import BackendUnavailableError, ConfigError, DependencyMissingError, ProfileError
from edgekd.feeds import as_feed_array
from edgekd.iospec import TensorSpec
from edgekd.runtime._feedcheck import FeedChecker
from edgekd.runtime.base import SessionIO, SessionOptions

_DEVICES = {"cpu": "CPU", "gpu": "GPU", "npu": "NPU", "auto": "AUTO"}
_PRECISIONS = {"fp32": "f32", "f32": "f32", "int8": "f32", "fp16": "f16", "f16": "f16", "bf16": "bf16"}
_HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT"}


def import_openvino(purpose: str = "the openvino runtime") -> Any:
    try:
        import openvino
    except ImportError:
        raise DependencyMissingError("openvino", "openvino", purpose) from None
    return openvino


def _ov_device(device: str, available: Sequence[str]) -> str:
    base, _, index = device.partition(":")
    name = _DEVICES.get(base.lower())
    if name is None:
        raise ConfigError(f"openvino: device {device!r} is not one OpenVINO can target",
                          hint=f"use one of {sorted(_DEVICES)} (optionally with an index, e.g. gpu:0)")
    full = f"{name}.{index}" if index else name
    if name != "AUTO" and not any(d == full or d.split(".")[0] == full for d in available):
        raise BackendUnavailableError(f"openvino: device {full} is not available here; available: {list(available)}",
                                      hint="install the device's driver/plugin, or use --device cpu")
    return full


def _unsupported_op(message: str) -> str | None:
    for pat in (r"No conversion rule found for operations?:\s*([\w.:, -]+)",
                r"[Uu]nsupported operations?:?\s*([\w.:, -]+)",
                r"Cannot create (\w+) layer"):
        m = re.search(pat, message)
        if m:
            return m.group(1).strip().rstrip(",").splitlines()[0]
    return None


def _dim_names_from_onnx(path: Path) -> dict[str, list[str | None]]:
    """Named dynamic dims of an ONNX file's inputs/outputs (OpenVINO's shapes drop the names)."""
    import onnx

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception:
        return {}
    out: dict[str, list[str | None]] = {}
    for vi in (*m.graph.input, *m.graph.output):
        out[vi.name] = [d.dim_param or None for d in vi.type.tensor_type.shape.dim]
    return out


def _specs(ports: Sequence[Any], names: Mapping[str, list[str | None]], where: str) -> tuple[TensorSpec, ...]:
    specs = []
    for p in ports:
        name = p.get_any_name()
        given = names.get(name, [])
        shape: list[int | str] = []
        for i, d in enumerate(p.get_partial_shape()):
            if d.is_static:
                shape.append(int(d.get_length()))
            else:
                label = given[i] if i < len(given) and given[i] else None
                shape.append(label or f"{name}_dim{i}")
        try:
            dtype = np.dtype(p.get_element_type().to_dtype()).name
        except Exception:
            raise BackendUnavailableError(f"{where}: tensor {name!r} has element type {p.get_element_type()}, "
                                          "which edgekd's openvino backend cannot feed") from None
        specs.append(TensorSpec(name, tuple(shape), dtype))
    return tuple(specs)


def _static_shapes(model: Any, given: Any, where: str) -> dict[str, list[int]] | None:
    """Reshape ``model`` in place to the concrete ``given`` shapes (every name must be a model input)."""
    if not given:
        return None
    import openvino as ov

    names = {n for p in model.inputs for n in p.get_names()}
    shapes: dict[str, list[int]] = {}
    problems = []
    for name, dims in dict(given).items():
        if name not in names:
            problems.append(f"input_shapes: {name!r} is not an input of {where}; inputs: {sorted(names)}")
            continue
        try:
            shape = [int(d) for d in dims]
        except (TypeError, ValueError):
            problems.append(f"input_shapes[{name!r}]={dims!r}: must be a list of positive integers")
            continue
        if any(d <= 0 for d in shape):
            problems.append(f"input_shapes[{name!r}]={shape}: dimensions must be positive")
            continue
        shapes[name] = shape
    if problems:
        raise ConfigError("openvino: invalid static input shapes", problems,
                          hint="give each input as NAME=DxDxD (e.g. --input x=1x3x48x192)")
    try:
        model.reshape({n: ov.PartialShape(s) for n, s in shapes.items()})
    except Exception as exc:
        raise ConfigError(f"{where}: openvino cannot reshape the inputs to {shapes}: {str(exc).strip()[:300]}",
                          hint="give shapes the model accepts (fixed dims must match)") from None
    return shapes


class OpenVinoSession(SessionIO):
    def __init__(self, compiled: Any, path: Path, options: SessionOptions, device: str, asked: dict[str, Any],
                 dim_names: Mapping[str, list[str | None]]) -> None:
        self.compiled = compiled
        self.path = path
        self.options = options
        self.device = device
        self.asked = asked
        self._inputs = _specs(compiled.inputs, dim_names, path.name)
        self._outputs = _specs(compiled.outputs, dim_names, path.name)
        self._check_cached = FeedChecker(self._inputs, path.name)
        self._request = compiled.create_infer_request()


    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        self._check_cached(feeds)
        try:
            res = self._request.infer({k: as_feed_array(v) for k, v in feeds.items()})
        except Exception as exc:
            raise ProfileError(f"{self.path.name}: openvino failed to run: {type(exc).__name__}: {exc}",
                               hint="check the input shapes against the model's inputs") from None
        # the request reuses its output buffers: copy so results of earlier calls stay valid
        return [np.array(res[port], copy=True) for port in self.compiled.outputs]

    def settings(self) -> dict[str, Any]:
        import openvino as ov

        def prop(name: str) -> Any:
            try:
                v = self.compiled.get_property(name)
            except Exception:
                return None
            return v.get_type_name() if hasattr(v, "get_type_name") else v

        used_precision = prop("INFERENCE_PRECISION_HINT")
        return {
            "name": "openvino",
            "version": ov.get_version(),
            "device": self.device,
            "execution_devices": prop("EXECUTION_DEVICES"),
            "threads": prop("INFERENCE_NUM_THREADS") if self.options.threads else
            f"default ({prop('INFERENCE_NUM_THREADS')})",
            "performance_hint": prop("PERFORMANCE_HINT"),
            "num_streams": prop("NUM_STREAMS"),
            "precision": self.options.precision,
            "inference_precision": used_precision,  # what the plugin runs float layers in (f32 / bf16 / f16)
            "asked": dict(self.asked),
        }


class OpenVinoRuntime:
    name = "openvino"

    def available(self) -> tuple[bool, str]:
        try:
            import openvino as ov
        except ImportError:
            return False, "the Python package 'openvino' is not installed (pip install 'edgekd[openvino]')"
        return True, ov.get_version()

    def load(self, artifact: Path, options: SessionOptions) -> OpenVinoSession:
        ov = import_openvino("running OpenVINO models")
        path = Path(artifact)
        if not path.is_file():
            raise ProfileError(f"model file {str(path)!r} does not exist",
                               hint="check the path; export an IR with `edgekd export --format openvino`")
        if path.suffix not in (".xml", ".onnx"):
            raise ProfileError(f"{path.name}: openvino reads an IR (.xml with its .bin) or an .onnx file",
                               hint="pass the .xml of the IR")
        if path.suffix == ".xml" and not path.with_suffix(".bin").is_file():
            raise ProfileError(f"{path.name}: its weights file {path.with_suffix('.bin').name} is missing",
                               hint="keep the .xml and .bin of an IR together")
        problems = []
        if options.precision not in _PRECISIONS:
            problems.append(f"precision {options.precision!r}: allowed {sorted(_PRECISIONS)}")
        if options.hint not in _HINTS:
            problems.append(f"hint {options.hint!r}: allowed {sorted(_HINTS)}")
        if options.threads is not None and options.threads < 1:
            problems.append(f"threads={options.threads}: must be >= 1 (or unset for the runtime default)")
        unknown = sorted(set(options.extra) - {"config", "input_shapes"})
        if unknown:
            problems.append(f"unknown option(s) {unknown}: allowed 'config' (a dict of OpenVINO properties), "
                            "'input_shapes' ({name: [dims]})")
        if problems:
            raise ConfigError("openvino: invalid session options", problems)

        core = ov.Core()
        device = _ov_device(options.device, core.available_devices)
        config: dict[str, Any] = {"PERFORMANCE_HINT": _HINTS[options.hint],
                                  "INFERENCE_PRECISION_HINT": _PRECISIONS[options.precision]}
        if options.threads and device.startswith("CPU"):
            config["INFERENCE_NUM_THREADS"] = int(options.threads)
        config.update(dict(options.extra.get("config", {})))
        try:
            model = core.read_model(str(path))
        except Exception as exc:
            op = _unsupported_op(str(exc))
            if op:
                raise BackendUnavailableError(
                    f"{path.name}: operator(s) {op} are not supported by openvino {ov.get_version()}",
                    hint="replace the op in the model, or use a runtime that implements it") from None
            raise ProfileError(f"{path.name}: openvino could not read it: {str(exc).strip()[:500]}",
                               hint="check that the file is a complete model") from None
        shapes = _static_shapes(model, options.extra.get("input_shapes"), path.name)
        try:
            compiled = core.compile_model(model, device, config)
        except Exception as exc:
            op = _unsupported_op(str(exc))
            if op:
                raise BackendUnavailableError(
                    f"{path.name}: operator(s) {op} are not supported by openvino {ov.get_version()} on {device}",
                    hint="try another device, or use a runtime that implements it") from None
            raise BackendUnavailableError(f"{path.name}: openvino could not compile it for {device} with "
                                          f"{config}: {str(exc).strip()[:500]}") from None
        names = _dim_names_from_onnx(path) if path.suffix == ".onnx" else {}
        asked = {**config, "static_input_shapes": shapes} if shapes else config
        return OpenVinoSession(compiled, path, options, device, asked, names)


RUNTIME = OpenVinoRuntime()
