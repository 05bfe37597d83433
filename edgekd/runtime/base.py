"""The one small protocol where runtimes meet: load an artifact, run named numpy inputs,
say how it is set up. Every backend (torch eager, ONNX Runtime, OpenVINO, TensorRT)
implements it in one file, and passes the shared conformance tests
(``tests/support/runtime_conformance.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from edgekd.iospec import TensorSpec


@dataclass(frozen=True)
class SessionOptions:
    threads: int | None = None  # None = the runtime's default
    precision: str = "fp32"  # inference precision hint (OpenVINO: f32 vs bf16; TensorRT: fp16/int8)
    device: str = "cpu"  # "cpu", "cuda", "gpu", "npu", "cuda:0"...
    providers: tuple[str, ...] = ()  # ORT execution providers, in priority order
    hint: str = "latency"  # OpenVINO performance hint: latency | throughput
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Session(Protocol):
    """A loaded artifact, ready to run."""

    @property
    def inputs(self) -> Sequence[TensorSpec]: ...

    @property
    def outputs(self) -> Sequence[TensorSpec]: ...

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run once; outputs in ``outputs`` order. Raises ProfileError on a bad feed (name, shape, dtype)."""
        ...

    def settings(self) -> dict[str, Any]:
        """Runtime name, version, providers/device, threads, precision actually used."""
        ...


class Runtime(Protocol):
    name: str

    def available(self) -> tuple[bool, str]:
        """(True, version) or (False, why: the extra to install / no GPU)."""
        ...

    def load(self, artifact: Path, options: SessionOptions) -> Session: ...


def check_feeds(feeds: Mapping[str, np.ndarray], specs: Sequence[TensorSpec], artifact: str) -> None:
    """Shared input validation: every input present, no extras, rank and fixed dims and dtype match."""
    from edgekd.errors import ProfileError

    problems = []
    names = {s.name for s in specs}
    for s in specs:
        if s.name not in feeds:
            problems.append(f"missing input {s.name!r} (shape {list(s.shape)}, {s.dtype})")
            continue
        a = feeds[s.name]
        if a.ndim != len(s.shape):
            problems.append(f"input {s.name!r}: rank {a.ndim} (shape {list(a.shape)}), expected {list(s.shape)}")
            continue
        for i, (got, want) in enumerate(zip(a.shape, s.shape, strict=True)):
            if isinstance(want, int) and want > 0 and got != want:
                problems.append(f"input {s.name!r}: dim {i} is {got}, the model needs {want} "
                                f"(shape {list(a.shape)} vs {list(s.shape)})")
        if np.dtype(a.dtype) != np.dtype(s.dtype):
            problems.append(f"input {s.name!r}: dtype {a.dtype}, the model needs {s.dtype}")
    for extra in sorted(set(feeds) - names):
        problems.append(f"unexpected input {extra!r}; the model's inputs are {sorted(names)}")
    if problems:
        raise ProfileError(f"{artifact}: inputs do not fit the model:\n" + "\n".join(f"  - {p}" for p in problems))


class SessionIO:
    """What every file-backed session shares: its declared inputs and outputs, and the feed check against
    them. A backend sets ``path``, ``_inputs`` and ``_outputs`` when it loads the artifact."""

    path: Path
    _inputs: Sequence[TensorSpec]
    _outputs: Sequence[TensorSpec]

    @property
    def inputs(self) -> Sequence[TensorSpec]:
        return self._inputs

    @property
    def outputs(self) -> Sequence[TensorSpec]:
        return self._outputs

    def check(self, feeds: Mapping[str, np.ndarray]) -> None:
        check_feeds(feeds, self._inputs, self.path.name)
