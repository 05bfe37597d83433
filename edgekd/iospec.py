"""One declarative description of a model's inputs and outputs, read by every exporter,
runtime and profiler: names, shapes with named dynamic dimensions, dtypes, and dummy
inputs built from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

Dim = int | str  # an int is fixed; a str names a dynamic dimension ("batch", "height")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[Dim, ...]
    dtype: str = "float32"  # numpy dtype name
    # For integer inputs (token ids), dummy values are drawn from [low, high).
    low: float = 0.0
    high: float = 1.0

    def concrete_shape(self, dims: Mapping[str, int] | None = None) -> tuple[int, ...]:
        dims = dict(dims or {})
        out = []
        for d in self.shape:
            if isinstance(d, int):
                out.append(d)
            elif d in dims:
                out.append(int(dims[d]))
            else:
                from edgekd.errors import ProfileError

                raise ProfileError(
                    f"input {self.name!r} has a dynamic dimension {d!r} (shape {list(self.shape)}) with no size",
                    hint=f"give it, e.g. --input {self.name}=" + "x".join(
                        str(x) if isinstance(x, int) else "1" for x in self.shape),
                )
        return tuple(out)

    @property
    def dynamic_dims(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}


@dataclass(frozen=True)
class IOSpec:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    # Example sizes for dynamic dims, used for dummy inputs and export tracing.
    example_dims: Mapping[str, int] = field(default_factory=lambda: {"batch": 2})

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def dummy_inputs(self, dims: Mapping[str, int] | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        use = {**self.example_dims, **(dims or {})}
        out: dict[str, np.ndarray] = {}
        for t in self.inputs:
            shape = t.concrete_shape(use)
            if np.issubdtype(np.dtype(t.dtype), np.integer):
                out[t.name] = rng.integers(int(t.low), max(int(t.high), int(t.low) + 1), size=shape).astype(t.dtype)
            else:
                out[t.name] = rng.uniform(t.low, t.high, size=shape).astype(t.dtype)
        return out

    def with_batch(self, dynamic: bool) -> IOSpec:
        """Same spec with dim 0 of every tensor named 'batch' (dynamic) or fixed to 1."""
        def fix(t: TensorSpec) -> TensorSpec:
            first: Dim = "batch" if dynamic else 1
            return TensorSpec(t.name, (first, *t.shape[1:]), t.dtype, t.low, t.high)

        return IOSpec(tuple(fix(t) for t in self.inputs), tuple(fix(t) for t in self.outputs), self.example_dims)


def parse_input_shapes(items: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """``["image=1x3x48x192", ...]`` -> {"image": (1, 3, 48, 192)}; errors name the flag."""
    from edgekd.errors import ConfigError

    shapes: dict[str, tuple[int, ...]] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--input {item!r}: expected NAME=DxDxD, e.g. --input x=1x3x224x224")
        name, dims = item.split("=", 1)
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            raise ConfigError(f"--input {item!r}: dimensions must be integers separated by 'x'") from None
        if any(d <= 0 for d in shape):
            raise ConfigError(f"--input {item!r}: dimensions must be positive")
        if name.strip() in shapes:  # the last one winning silently would measure a shape nobody meant
            raise ConfigError(f"--input {name.strip()!r} is given twice", hint="give each input's shape once")
        shapes[name.strip()] = shape
    return shapes
