"""Teachers of every kind behind one small interface.

- :class:`ModuleTeacher`: a torch module, frozen (no grads) and in eval mode; its inner
  features can be tapped by module path.
- :class:`CallableTeacher`: any Python callable (an analytic controller, a lookup table);
  it may return a Tensor, a tuple/list of them, or numpy arrays.
- :class:`EnsembleTeacher`: the weighted average of several teachers' outputs
  (``sum_k w_k * y_k / sum_k w_k`` per output), e.g. the ensemble teacher of Hinton et al. 2015.
- :class:`OnnxTeacher`: any ONNX model run frozen by ONNX Runtime (a third-party teacher with no
  torch code); outputs only, so no feature taps.

A teacher is called with the model inputs (positional, io order) and returns
``(outputs tuple, {module path: feature})``. It always runs in full precision without
autograd, so cached and live teacher outputs are the same numbers.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekd.distill.hooks import FeatureTaps, module_paths, probe_all_shapes
from edgekd.errors import ConfigError


def to_tensors(out: Any, device: torch.device | str) -> tuple[torch.Tensor, ...]:
    """Normalise a model/teacher output (Tensor, numpy, tuple/list of them, scalar) to a tuple of tensors."""
    items = out if isinstance(out, (tuple, list)) else (out,)
    result = []
    for i, item in enumerate(items):
        if isinstance(item, torch.Tensor):
            t = item
        elif isinstance(item, (np.ndarray, np.generic, float, int)):
            t = torch.as_tensor(np.asarray(item))
        else:
            raise ConfigError(
                f"teacher output {i} is a {type(item).__name__}",
                hint="a teacher must return a Tensor, a numpy array, or a tuple/list of them",
            )
        # Analytic teachers often compute in float64; the student trains in float32.
        if t.dtype == torch.float64:
            t = t.float()
        result.append(t.to(device))
    return tuple(result)


class Teacher:
    """Interface: ``teacher(inputs) -> (outputs, features)``; ``set_taps``; ``fingerprint``."""

    taps: tuple[str, ...] = ()

    def __call__(self, inputs: Sequence[torch.Tensor]) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
        raise NotImplementedError

    def set_taps(self, paths: Sequence[str]) -> None:
        if paths:
            raise ConfigError(
                f"teacher taps {list(paths)} requested, but a {type(self).__name__} has no modules to tap",
                hint="use a feature loss only with a torch-module teacher, or use an output loss "
                "(e.g. kind: regression or hinton_kd)",
            )

    def module_paths(self) -> list[str]:
        return []

    def probe_shapes(self, inputs: Sequence[torch.Tensor]) -> dict[str, torch.Size]:
        return {}

    def to(self, device: torch.device | str) -> Teacher:
        return self

    def fingerprint(self) -> str:
        raise NotImplementedError


class ModuleTeacher(Teacher):
    def __init__(self, module: nn.Module) -> None:
        self.module = module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._taps: FeatureTaps | None = None
        self.device = _module_device(module)

    def set_taps(self, paths: Sequence[str]) -> None:
        if self._taps is not None:
            self._taps.remove()
        self.taps = tuple(dict.fromkeys(paths))
        self._taps = FeatureTaps(self.module, self.taps, role="teacher") if self.taps else None

    def module_paths(self) -> list[str]:
        return module_paths(self.module)

    def to(self, device: torch.device | str) -> ModuleTeacher:
        self.module.to(device)
        self.device = torch.device(device)
        return self

    @torch.no_grad()
    def probe_shapes(self, inputs: Sequence[torch.Tensor]) -> dict[str, torch.Size]:
        return probe_all_shapes(self.module, lambda: self.module(*inputs))

    @torch.no_grad()
    def __call__(self, inputs: Sequence[torch.Tensor]) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
        # Someone may have called .train() on the module (e.g. an outer model); keep it frozen.
        self.module.eval()
        if self._taps is not None:
            self._taps.clear()
        with _full_precision(self.device):
            out = to_tensors(self.module(*inputs), self.device)
        feats = self._taps.take() if self._taps is not None else {}
        return out, feats

    def fingerprint(self) -> str:
        h = hashlib.sha256(f"module:{type(self.module).__module__}.{type(self.module).__qualname__}".encode())
        for name, t in sorted(self.module.state_dict().items()):
            t = t.detach().cpu().contiguous()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
            h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        return h.hexdigest()


class CallableTeacher(Teacher):
    """An analytic teacher. ``name`` identifies it in the cache key (default: its qualified name)."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None, device: torch.device | str = "cpu") -> None:
        self.fn = fn
        self.name = name or _qualname(fn)
        self.device = torch.device(device)

    def to(self, device: torch.device | str) -> CallableTeacher:
        self.device = torch.device(device)
        return self

    @torch.no_grad()
    def __call__(self, inputs: Sequence[torch.Tensor]) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
        return to_tensors(self.fn(*inputs), self.device), {}

    def fingerprint(self) -> str:
        fp = getattr(self.fn, "fingerprint", None)
        extra = str(fp()) if callable(fp) else ""
        return hashlib.sha256(f"callable:{self.name}:{extra}".encode()).hexdigest()


class EnsembleTeacher(Teacher):
    """Weighted average of several teachers' outputs: ``y = sum_k w_k y_k / sum_k w_k``.

    Every member must return the same number of outputs with the same shapes. Features
    are not tapped (members' inner layers need not correspond).
    """

    def __init__(self, teachers: Sequence[Any], weights: Sequence[float] | None = None) -> None:
        if not teachers:
            raise ConfigError("EnsembleTeacher(teachers=[]): needs at least one teacher")
        self.members = [as_teacher(t) for t in teachers]
        w = [1.0] * len(self.members) if weights is None else [float(x) for x in weights]
        if len(w) != len(self.members) or any(x < 0 for x in w) or sum(w) <= 0:
            raise ConfigError(
                f"EnsembleTeacher weights={list(w)} for {len(self.members)} teachers",
                hint="give one non-negative weight per teacher, not all zero",
            )
        self.weights = [x / sum(w) for x in w]

    def to(self, device: torch.device | str) -> EnsembleTeacher:
        self.members = [m.to(device) for m in self.members]
        return self

    @torch.no_grad()
    def __call__(self, inputs: Sequence[torch.Tensor]) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
        total: list[torch.Tensor] | None = None
        for k, (member, w) in enumerate(zip(self.members, self.weights, strict=True)):
            outs, _ = member(inputs)
            if total is None:
                total = [w * o.float() for o in outs]
                continue
            if len(outs) != len(total) or any(o.shape != t.shape for o, t in zip(outs, total, strict=False)):
                raise ConfigError(
                    f"ensemble member {k} returns shapes {[tuple(o.shape) for o in outs]}, member 0 "
                    f"returns {[tuple(t.shape) for t in total]}",
                    hint="ensemble only teachers with the same outputs",
                )
            total = [t + w * o.float() for t, o in zip(total, outs, strict=True)]
        if total is None:  # unreachable: __init__ rejects an empty ensemble
            raise ConfigError("the ensemble has no members", hint="give EnsembleTeacher at least one teacher")
        return tuple(total), {}

    def fingerprint(self) -> str:
        parts = [f"{m.fingerprint()}*{w!r}" for m, w in zip(self.members, self.weights, strict=True)]
        return hashlib.sha256(("ensemble:" + "|".join(parts)).encode()).hexdigest()


class OnnxTeacher(Teacher):
    """An ONNX model as the teacher, run by ONNX Runtime on CPU in full precision.

    It is called with the student's inputs in io order; they feed the model's inputs by position
    (the model's own input names may differ from the task's). Its fingerprint is the SHA-256 of the
    file, so the offline teacher cache follows the file's content, not its name.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None, device: torch.device | str = "cpu") -> None:
        from edgekd.fileio import sha256_file
        from edgekd.runtime import SessionOptions, get_runtime

        self.path = Path(path)
        self.session = get_runtime("onnxruntime").load(self.path, SessionOptions(threads=threads))
        self.input_names = [t.name for t in self.session.inputs]
        self.output_names = [t.name for t in self.session.outputs]
        self.sha256 = sha256_file(self.path)
        self.device = torch.device(device)

    def set_taps(self, paths: Sequence[str]) -> None:
        if paths:
            raise ConfigError(
                f"teacher taps {list(paths)} requested, but the teacher is the ONNX model {self.path.name}, "
                "which gives its outputs only: feature losses need a torch teacher",
                hint="use teacher.source: module for feature losses, or an output loss (kind: regression, "
                "hinton_kd) with this teacher")

    def to(self, device: torch.device | str) -> OnnxTeacher:
        self.device = torch.device(device)
        return self

    def run_numpy(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The model on numpy inputs given by position."""
        if len(arrays) != len(self.input_names):
            raise ConfigError(f"the ONNX teacher {self.path.name} takes {len(self.input_names)} input(s) "
                              f"{self.input_names}, the task gives {len(arrays)}",
                              hint="the teacher must take the student's inputs, in the same order")
        feeds = {n: np.ascontiguousarray(a, dtype=np.float32) if a.dtype == np.float64 else np.ascontiguousarray(a)
                 for n, a in zip(self.input_names, arrays, strict=True)}
        return self.session.run(feeds)

    @torch.no_grad()
    def __call__(self, inputs: Sequence[torch.Tensor]) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
        outs = self.run_numpy([t.detach().float().cpu().numpy() for t in inputs])
        return to_tensors(outs, self.device), {}

    def param_count(self) -> int:
        """Float weights held in the graph (initializers and Constant nodes: exporters use both)."""
        import onnx

        model = onnx.load(str(self.path), load_external_data=False)
        tensors = list(model.graph.initializer)
        tensors += [a.t for n in model.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
        floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
                  onnx.TensorProto.BFLOAT16)
        return int(sum(int(np.prod(t.dims)) for t in tensors if t.data_type in floats and len(t.dims) > 0))

    def declared_output_shapes(self) -> list[tuple[int | str, ...]]:
        return [tuple(t.shape) for t in self.session.outputs]

    def fingerprint(self) -> str:
        return hashlib.sha256(f"onnx:{self.sha256}:{self.input_names}".encode()).hexdigest()


def as_teacher(teacher: Any) -> Teacher:
    """Wrap an nn.Module, a callable or a Teacher."""
    if isinstance(teacher, Teacher):
        return teacher
    if isinstance(teacher, nn.Module):
        return ModuleTeacher(teacher)
    if callable(teacher):
        return CallableTeacher(teacher)
    raise ConfigError(
        f"teacher of type {type(teacher).__name__} is neither a torch module nor a callable",
        hint="pass an nn.Module, a function of the model inputs, or an EnsembleTeacher",
    )


def _module_device(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")


def _qualname(fn: Any) -> str:
    target = getattr(fn, "func", fn)  # functools.partial
    mod = getattr(target, "__module__", None) or type(target).__module__
    qn = getattr(target, "__qualname__", None) or type(target).__qualname__
    name = f"{mod}.{qn}"
    if target is not fn:
        name += f"(args={getattr(fn, 'args', ())!r}, kw={sorted(getattr(fn, 'keywords', {}).items())!r})"
    elif not inspect.isfunction(fn) and not inspect.ismethod(fn):
        # A callable object: its attributes are its configuration.
        state = {k: v for k, v in sorted(vars(fn).items())} if hasattr(fn, "__dict__") else {}
        name += repr(state)
    return name


class _full_precision:
    """Disable autocast around the teacher: the teacher is the full-precision reference."""

    def __init__(self, device: torch.device) -> None:
        self.ctx = torch.autocast(device_type=device.type, enabled=False)

    def __enter__(self) -> None:
        self.ctx.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.ctx.__exit__(*exc)
