"""LiteRT backend (TFLite with XNNPACK): runs ``.tflite`` files with the ``ai-edge-litert`` interpreter.

- Threads: ``SessionOptions.threads`` -> the interpreter's ``num_threads`` (XNNPACK's thread pool).
- XNNPACK is LiteRT's default CPU delegate and is applied when the interpreter is built; the session
  option ``extra={"xnnpack": False}`` builds the interpreter without default delegates (the reference
  kernels), which is what a parity investigation wants, never a benchmark.
- The model's first signature (``serving_default`` for converted torch models) names the inputs and
  outputs. A signature lists its tensors sorted by name, so the session orders them by their place in
  the model's input/output lists instead, which is the order the torch module takes and returns them.
- A tensor whose signature shape holds -1 is dynamic; the session names it (``batch`` for dim 0) and
  resizes the interpreter when a feed's shape changes.
- INT8 I/O: a model whose inputs/outputs are int8/uint8 with a quantization scale (a fully quantized
  model) is wrapped so callers see float32 tensors: float feeds are quantized with the input's scale
  and zero point, outputs are dequantized with theirs. ``settings()['io']`` says which it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import BackendUnavailableError, ConfigError, DependencyMissingError, ProfileError
from edgekd.feeds import as_feed_array
from edgekd.iospec import TensorSpec
from edgekd.runtime._feedcheck import FeedChecker
from edgekd.runtime.base import SessionIO, SessionOptions

EXTRA = "litert"
_EXTRA_KEYS = {"xnnpack": "True (default) or False: build the interpreter without XNNPACK",
               "signature": "the signature key to run (default: the model's first signature)"}
_INT_IO = ("int8", "uint8", "int16")


def import_litert(purpose: str = "the litert runtime") -> Any:
    """The ``ai_edge_litert.interpreter`` module, or DependencyMissingError naming the extra."""
    try:
        from ai_edge_litert import interpreter
    except ImportError:
        raise DependencyMissingError("ai-edge-litert", EXTRA, purpose) from None
    return interpreter


def litert_version() -> str:
    try:
        from importlib.metadata import version

        return version("ai-edge-litert")
    except Exception:
        return "unknown"


@dataclass(frozen=True)
class _Port:
    """One signature tensor: its name, the spec shown to callers, and the quantization to undo."""

    name: str
    spec: TensorSpec
    raw_dtype: np.dtype[Any]
    scale: float  # 0.0 = not quantized: fed/returned as is
    zero_point: int


def _quant(detail: Mapping[str, Any]) -> tuple[float, int]:
    """Per-tensor (scale, zero point) of a signature tensor; (0, 0) when it is not quantized."""
    qp = detail.get("quantization_parameters") or {}
    scales = np.asarray(qp.get("scales", ()), dtype=np.float64)
    zps = np.asarray(qp.get("zero_points", ()), dtype=np.int64)
    if scales.size == 0:
        scale, zp = detail.get("quantization", (0.0, 0))
        return float(scale), int(zp)
    if scales.size != 1:
        # per-channel quantized I/O cannot be undone with one affine map; edgekd never makes it
        raise BackendUnavailableError(f"tensor {detail.get('name')!r} is quantized per channel at the model's I/O",
                                      hint="export with per-tensor input/output quantization")
    return float(scales[0]), int(zps[0]) if zps.size else 0


def _port(name: str, detail: Mapping[str, Any]) -> _Port:
    raw = np.dtype(detail["dtype"])
    sig = detail.get("shape_signature")
    dims = list(sig) if sig is not None and len(sig) else list(detail["shape"])
    shape: list[int | str] = [int(d) if d > 0 else ("batch" if i == 0 else f"{name}_dim{i}")
                              for i, d in enumerate(dims)]
    scale, zp = _quant(detail)
    wrapped = raw.name in _INT_IO and scale > 0
    dtype = "float32" if wrapped else raw.name
    return _Port(name, TensorSpec(name, tuple(shape), dtype), raw, scale if wrapped else 0.0, zp)


def _ordered(details: Mapping[str, Mapping[str, Any]], order: list[int]) -> list[tuple[str, Mapping[str, Any]]]:
    """Signature tensors in the model's own input (or output) order; unknown ones last, by name."""
    rank = {idx: i for i, idx in enumerate(order)}
    return sorted(details.items(), key=lambda kv: (rank.get(int(kv[1]["index"]), len(rank)), kv[0]))


def _quantize(x: np.ndarray, port: _Port) -> np.ndarray:
    info = np.iinfo(port.raw_dtype)
    q = np.round(x / np.float32(port.scale)) + port.zero_point
    return np.clip(q, info.min, info.max).astype(port.raw_dtype)


def _dequantize(q: np.ndarray, port: _Port) -> np.ndarray:
    return ((q.astype(np.float32) - np.float32(port.zero_point)) * np.float32(port.scale)).astype(np.float32)


class LiteRtSession(SessionIO):
    """A LiteRT interpreter's signature behind the edgekd Session protocol."""

    def __init__(self, interp: Any, path: Path, options: SessionOptions, key: str, xnnpack: bool) -> None:
        self.interp = interp
        self.path = path
        self.options = options
        self.key = key
        self.xnnpack = xnnpack
        self._runner = interp.get_signature_runner(key)
        in_order = [d["index"] for d in interp.get_input_details()]
        out_order = [d["index"] for d in interp.get_output_details()]
        self._in = [_port(n, d) for n, d in _ordered(self._runner.get_input_details(), in_order)]
        self._out = [_port(n, d) for n, d in _ordered(self._runner.get_output_details(), out_order)]
        self._inputs = tuple(p.spec for p in self._in)
        self._outputs = tuple(p.spec for p in self._out)
        self._check_cached = FeedChecker(self._inputs, path.name)


    def _raw_feeds(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {p.name: (_quantize(feeds[p.name], p) if p.scale else as_feed_array(feeds[p.name]))
                for p in self._in}

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        self._check_cached(feeds)
        try:
            res = self._runner(**self._raw_feeds(feeds))
        except Exception as exc:  # the interpreter raises RuntimeError/ValueError with its own text
            raise ProfileError(f"{self.path.name}: litert failed to run: {type(exc).__name__}: {exc}",
                               hint="check the input shapes against the model's inputs") from None
        # GetTensor copies, so results of earlier calls stay valid
        return [_dequantize(res[p.name], p) if p.scale else res[p.name] for p in self._out]

    def settings(self) -> dict[str, Any]:
        quantized = any(p.scale for p in (*self._in, *self._out))
        return {
            "name": "litert",
            "version": litert_version(),
            "device": "cpu",
            "threads": self.options.threads if self.options.threads else "default",
            "delegate": "xnnpack" if self.xnnpack else "none (reference kernels)",
            "signature": self.key,
            "precision": _model_precision(self.interp),
            "io": "int8 (wrapped: float in/out)" if quantized else "float",
        }


def _model_precision(interp: Any) -> str:
    """int8 when any tensor holds int8 weights or activations, fp16 when weights are fp16, else fp32."""
    dtypes = {np.dtype(t["dtype"]).name for t in interp.get_tensor_details()}
    if dtypes & {"int8", "uint8"}:
        return "int8"
    if "float16" in dtypes:
        return "fp16"
    return "fp32"


def _check_options(options: SessionOptions) -> None:
    unknown = sorted(set(options.extra) - set(_EXTRA_KEYS))
    if unknown:
        raise ConfigError(f"litert: unknown session option(s) {unknown}",
                          [f"{k}: {v}" for k, v in _EXTRA_KEYS.items()])
    if options.threads is not None and options.threads < 1:
        raise ConfigError(f"threads={options.threads}: must be >= 1 (or unset for the runtime default)")
    if options.device.split(":")[0].lower() != "cpu":
        raise BackendUnavailableError(f"litert: device {options.device!r} is not supported by edgekd's litert "
                                      "backend (CPU with XNNPACK only)", hint="use --device cpu")


class LiteRtBackend:
    name = "litert"

    def available(self) -> tuple[bool, str]:
        try:
            import_litert()
        except DependencyMissingError as exc:
            return False, str(exc)
        return True, litert_version()

    def load(self, artifact: Path, options: SessionOptions) -> LiteRtSession:
        mod = import_litert()
        path = Path(artifact)
        if not path.is_file():
            raise ProfileError(f"model file {str(path)!r} does not exist",
                               hint="check the path; export one with `edgekd export` (format litert)")
        _check_options(options)
        xnnpack = bool(options.extra.get("xnnpack", True))
        resolver = (mod.OpResolverType.AUTO if xnnpack
                    else mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        try:
            interp = mod.Interpreter(model_path=str(path), num_threads=options.threads,
                                     experimental_op_resolver_type=resolver)
            signatures = list(interp.get_signature_list())
        except Exception as exc:
            raise ProfileError(f"{path.name}: litert could not load it: {str(exc).strip()[:500]}",
                               hint="check that the file is a complete .tflite model") from None
        if not signatures:
            raise ProfileError(f"{path.name}: the model has no signature, so its inputs have no names",
                               hint="export it with `edgekd export` (format litert), which writes one")
        key = str(options.extra.get("signature", signatures[0]))
        if key not in signatures:
            raise ConfigError(f"litert: signature {key!r} is not in {path.name}", hint=f"use one of {signatures}")
        return LiteRtSession(interp, path, options, key, xnnpack)


RUNTIME = LiteRtBackend()
