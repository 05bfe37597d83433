"""TensorRT backend: runs a serialized engine (``.engine`` / ``.plan``) with the TensorRT 10 Python API.

Engines are built on the target (``edgekd build-engine``) and are not portable between GPUs or
TensorRT versions. Buffers are torch CUDA tensors (torch is a core dependency; no pycuda needed):
inputs are copied host -> device, ``set_input_shape`` fixes dynamic dims, every I/O tensor's device
address is set with ``set_tensor_address``, and ``execute_async_v3`` enqueues on a dedicated CUDA
stream. ``timed_run`` returns the milliseconds between CUDA events recorded around the enqueue
(device time, transfers excluded), which the profiler uses instead of a host clock.

Written against the TensorRT 10 API reference; the CPU-only CI host cannot run it (its tests are
marked ``gpu`` and skip with the reason).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import BackendUnavailableError, ConfigError, DependencyMissingError, ProfileError
from edgekd.feeds import as_feed_array
from edgekd.iospec import TensorSpec
from edgekd.runtime.base import SessionIO, SessionOptions

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


def import_tensorrt(purpose: str = "the tensorrt runtime") -> Any:
    try:
        import tensorrt as trt  # type: ignore[import-not-found]
    except ImportError:
        raise DependencyMissingError("tensorrt", "tensorrt", purpose) from None
    return trt


def require_cuda(device: str = "cuda") -> Any:
    """torch.device for ``device``; BackendUnavailableError when no CUDA GPU is visible."""
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailableError(
            "TensorRT needs an NVIDIA GPU with CUDA, and none is visible to torch here",
            hint="run on the Jetson/GPU host (engines are built there with `edgekd build-engine`), "
                 "or use --runtime onnxruntime/openvino")
    dev = device if device.startswith("cuda") else "cuda"
    return torch.device(dev)


def _dtype_maps(trt: Any) -> tuple[dict[Any, Any], dict[Any, str]]:
    import torch

    pairs = [("FLOAT", torch.float32, "float32"), ("HALF", torch.float16, "float16"),
             ("INT8", torch.int8, "int8"), ("INT32", torch.int32, "int32"), ("INT64", torch.int64, "int64"),
             ("BOOL", torch.bool, "bool"), ("UINT8", torch.uint8, "uint8"), ("BF16", torch.bfloat16, "bfloat16")]
    to_torch, to_np = {}, {}
    for name, tdt, ndt in pairs:
        if hasattr(trt.DataType, name):  # BF16/INT64 only in newer TensorRT
            to_torch[getattr(trt.DataType, name)] = tdt
            to_np[getattr(trt.DataType, name)] = ndt
    return to_torch, to_np


class TensorRtSession(SessionIO):
    def __init__(self, engine: Any, path: Path, options: SessionOptions, trt: Any, device: Any) -> None:
        import torch

        self._torch = torch
        self.trt = trt
        self.engine = engine
        self.path = path
        self.options = options
        self.device = device
        self.context = engine.create_execution_context()  # exposed for IProfiler (edgekd.profile.layers)
        if self.context is None:
            raise BackendUnavailableError(f"{path.name}: TensorRT could not create an execution context "
                                          "(out of GPU memory?)")
        self._to_torch, to_np = _dtype_maps(trt)
        ins: list[TensorSpec] = []
        outs: list[TensorSpec] = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dt = engine.get_tensor_dtype(name)
            if dt not in to_np:
                raise BackendUnavailableError(f"{path.name}: tensor {name!r} has TensorRT type {dt}, which "
                                              "edgekd's tensorrt backend cannot feed")
            shape = tuple(int(d) if d >= 0 else f"{name}_dim{j}" for j, d in enumerate(engine.get_tensor_shape(name)))
            spec = TensorSpec(name, shape, to_np[dt])
            (ins if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outs).append(spec)
        self._inputs, self._outputs = tuple(ins), tuple(outs)
        self.stream = torch.cuda.Stream(device=device)
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)
        self._bufs: dict[str, Any] = {}  # device tensors, reused while shapes stay the same
        self._runtime: Any = None  # the trt.Runtime that deserialized the engine: it must outlive it


    def _buffer(self, name: str, shape: tuple[int, ...]) -> Any:
        buf = self._bufs.get(name)
        if buf is None or tuple(buf.shape) != shape:
            dt = self._to_torch[self.engine.get_tensor_dtype(name)]
            buf = self._torch.empty(shape, dtype=dt, device=self.device)
            self._bufs[name] = buf
        return buf

    def _stage(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Copy inputs to the GPU, set dynamic shapes and every tensor address."""
        torch = self._torch
        self.check(feeds)
        with torch.cuda.stream(self.stream):
            for spec in self._inputs:
                arr = as_feed_array(feeds[spec.name])
                if not self.context.set_input_shape(spec.name, tuple(arr.shape)):
                    lo, _, hi = self.engine.get_tensor_profile_shape(spec.name, self.context.active_optimization_profile)
                    raise ProfileError(f"{self.path.name}: input {spec.name!r} shape {list(arr.shape)} is outside "
                                       f"the engine's optimisation profile (min {list(lo)}, max {list(hi)})",
                                       hint="rebuild the engine with a wider profile (build plan 'profiles')")
                buf = self._buffer(spec.name, tuple(arr.shape))
                buf.copy_(torch.from_numpy(arr), non_blocking=False)
                self.context.set_tensor_address(spec.name, buf.data_ptr())
            for spec in self._outputs:
                shape = tuple(int(d) for d in self.context.get_tensor_shape(spec.name))
                if any(d < 0 for d in shape):
                    raise ProfileError(f"{self.path.name}: output {spec.name!r} has a data-dependent shape "
                                       f"{list(shape)}; edgekd's tensorrt backend needs shapes known from inputs")
                self.context.set_tensor_address(spec.name, self._buffer(spec.name, shape).data_ptr())

    def _enqueue(self) -> None:
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise ProfileError(f"{self.path.name}: TensorRT execute_async_v3 failed (see the TensorRT log)")

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        self._stage(feeds)
        self._enqueue()
        self.stream.synchronize()
        return [self._bufs[s.name].cpu().numpy() for s in self._outputs]

    def timed_run(self, feeds: Mapping[str, np.ndarray]) -> float:
        """Milliseconds of device time for one inference (CUDA events around the enqueue)."""
        self._stage(feeds)
        self._start.record(self.stream)
        self._enqueue()
        self._end.record(self.stream)
        self._end.synchronize()
        return float(self._start.elapsed_time(self._end))

    def settings(self) -> dict[str, Any]:
        torch = self._torch
        return {
            "name": "tensorrt",
            "version": self.trt.__version__,
            "device": f"{self.device} ({torch.cuda.get_device_name(self.device)})",
            "threads": self.options.threads,  # no CPU thread pool: the work runs on the GPU
            "precision": self.options.precision,  # as built into the engine (see its build plan)
            "optimization_profiles": self.engine.num_optimization_profiles,
            "transfers": "run(): host->device copies of inputs and device->host copies of outputs included; "
                         "timed_run(): device time between CUDA events, transfers excluded",
        }


class TensorRtRuntime:
    name = "tensorrt"

    def available(self) -> tuple[bool, str]:
        try:
            import tensorrt as trt  # type: ignore[import-not-found]
        except ImportError:
            return False, "the Python package 'tensorrt' is not installed (pip install 'edgekd[tensorrt]' on a GPU host)"
        import torch

        if not torch.cuda.is_available():
            return False, f"tensorrt {trt.__version__} is installed but no CUDA GPU is visible"
        return True, str(trt.__version__)

    def load(self, artifact: Path, options: SessionOptions) -> TensorRtSession:
        path = Path(artifact)
        if not path.is_file():
            raise ProfileError(f"engine file {str(path)!r} does not exist",
                               hint="build one on the GPU host with `edgekd build-engine PLAN.json`")
        if path.suffix == ".onnx":
            raise ProfileError(f"{path.name}: the tensorrt runtime runs serialized engines, not ONNX",
                               hint="`edgekd export --format tensorrt` writes a build plan; build the engine on the "
                                    "target with `edgekd build-engine PLAN.json`")
        if options.threads is not None and options.threads < 1:
            raise ConfigError(f"threads={options.threads}: must be >= 1 (or unset)")
        trt = import_tensorrt("running TensorRT engines")
        device = require_cuda(options.device)
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(logger)
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            raise ProfileError(f"{path.name}: TensorRT {trt.__version__} could not deserialize it",
                               hint="engines are tied to the GPU model and TensorRT version that built them: "
                                    "rebuild it here with `edgekd build-engine`")
        session = TensorRtSession(engine, path, options, trt, device)
        session._runtime = runtime
        return session


RUNTIME = TensorRtRuntime()
