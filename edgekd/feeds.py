"""Model inputs when there is no dataset: values the user states and random ones a model can consume.

One helper for every command that runs a model on inputs it makes up (``profile``, ``quantize``,
``optimize``, ``export``'s parity check):

* ``--input NAME=1x3x224x224`` sizes an input (its dynamic dims);
* ``--input NAME=16000`` gives a *value*: a scalar for a rank-0 input or one of shape ``[1]``;
  ``--input NAME=1,2,3`` a 1-D value. A bare integer is a value for a rank-0 or ``[1]`` input and a
  length (a shape) for any other 1-D input; a number with a sign, a point or an exponent is a value;
* ``--feed NAME=FILE.npy`` gives an array from a file; its dtype and shape must fit the model's input.

Inputs given no value are random: floats uniform in [0, 1); integers in [0, n) where the input is the
indices of a Gather whose data has n rows on that axis (an embedding or lookup table; a float cast to int
would always be row 0), else in [0, 10) (small non-negative counts, ids, flags); booleans fair coins.
A rank-0 input stays rank 0: ``np.ascontiguousarray`` would make it shape [1], which ONNX Runtime refuses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgekd.errors import ConfigError

SMALL_INT_HIGH = 10  # integers that index nothing known: [0, 10)
_SHAPE = re.compile(r"^\s*\d+(\s*x\s*\d+)*\s*$", re.IGNORECASE)


class InputLike(Protocol):
    """What every input description in edgekd has (TensorSpec, ModelInput, a session's inputs)."""

    @property
    def name(self) -> str: ...
    @property
    def shape(self) -> Sequence[Any]: ...
    @property
    def dtype(self) -> Any: ...


@dataclass(frozen=True)
class _Arg:
    flag: str  # what the user typed, for messages: "--input sr=16000"
    shape: tuple[int, ...] | None  # the text read as a shape, if it can be one
    value: np.ndarray | None  # the text (or file) read as a value, if it can be one
    from_file: bool = False


@dataclass(frozen=True)
class Resolved:
    """``shapes``: a concrete shape per input that has one (a value's shape included);
    ``values``: arrays of the model's dtype and rank, to feed as they are."""

    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class InputArgs:
    """``--input``/``--feed`` flags, parsed before the model is loaded (syntax errors exit early)."""

    args: Mapping[str, _Arg] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.args)

    def shape_candidates(self) -> dict[str, tuple[int, ...]]:
        """Every item that can be read as a shape (``NAME=16`` included), for code that has no model specs
        (a run folder's export: its inputs come from the recipe)."""
        return {n: a.shape for n, a in self.args.items() if a.shape is not None}

    def resolve(self, specs: Sequence[InputLike], model: str = "the model") -> Resolved:
        """Each flag against the model's inputs: unknown names, dtype/rank/dim mismatches -> ConfigError."""
        by_name = {s.name: s for s in specs}
        unknown = [n for n in self.args if n not in by_name]
        if unknown:
            raise ConfigError(f"{self.args[unknown[0]].flag}: {model} has no input {unknown[0]!r}; its inputs are "
                              f"{list(by_name)}", hint="use one of those names")
        out = Resolved()
        for name, arg in self.args.items():
            spec = by_name[name]
            if arg.value is not None and (arg.shape is None or _wants_value(spec)):
                out.values[name] = check_value(spec, arg.value, arg.flag, exact_dtype=arg.from_file)
                out.shapes[name] = tuple(out.values[name].shape)
            elif arg.shape is not None:
                out.shapes[name] = arg.shape
        return out


def _wants_value(spec: InputLike) -> bool:
    """A bare integer is a value for a rank-0 input or one fixed to shape [1]."""
    dims = list(spec.shape)
    return len(dims) == 0 or (len(dims) == 1 and dims[0] == 1)


def parse_input_args(inputs: Sequence[str] = (), feeds: Sequence[str] = ()) -> InputArgs:
    """``--input`` and ``--feed`` items -> :class:`InputArgs`; a bad item raises ConfigError naming it."""
    args: dict[str, _Arg] = {}
    for item in inputs:
        name, text = _split("--input", item, "NAME=DxDxD (a shape, e.g. 1x3x224x224), NAME=16000 or NAME=1,2,3 (a value)")
        _add(args, name, _parse_text(f"--input {item}", text))
    for item in feeds:
        name, text = _split("--feed", item, "NAME=FILE.npy")
        _add(args, name, _Arg(f"--feed {item}", None, _load_npy(f"--feed {item}", Path(text)), from_file=True))
    return InputArgs(args)


def _split(flag: str, item: str, form: str) -> tuple[str, str]:
    if "=" not in item or not item.split("=", 1)[0].strip() or not item.split("=", 1)[1].strip():
        raise ConfigError(f"{flag} {item!r}: expected {form}", hint=f"e.g. {flag} x=1x3x224x224"
                          if flag == "--input" else f"e.g. {flag} x=input.npy")
    name, text = item.split("=", 1)
    return name.strip(), text.strip()


def _add(args: dict[str, _Arg], name: str, arg: _Arg) -> None:
    if name in args:  # the last one winning silently would measure an input nobody meant
        raise ConfigError(f"input {name!r} is given twice ({args[name].flag}, {arg.flag})",
                          hint="give each input once, by --input or by --feed")
    args[name] = arg


def _parse_text(flag: str, text: str) -> _Arg:
    """``1x3x8`` a shape; ``16000`` a shape or a value; ``-1``, ``0.5``, ``1,2,3`` values."""
    if "," in text:
        return _Arg(flag, None, _numbers(flag, text.split(",")))
    if _SHAPE.match(text) and "x" in text.lower():
        shape = tuple(int(d) for d in text.lower().split("x"))
        if any(d <= 0 for d in shape):
            raise ConfigError(f"{flag}: dimensions must be positive", hint="e.g. --input x=1x3x224x224")
        return _Arg(flag, shape, None)
    value = _numbers(flag, [text]).reshape(())
    if text.isdigit():
        return _Arg(flag, (int(text),) if int(text) > 0 else None, value)
    return _Arg(flag, None, value)


def _numbers(flag: str, parts: Sequence[str]) -> np.ndarray:
    try:
        if all(re.fullmatch(r"\s*[+-]?\d+\s*", p) for p in parts):
            return np.asarray([int(p) for p in parts], dtype=np.int64)
        return np.asarray([float(p) for p in parts], dtype=np.float64)
    except ValueError:
        raise ConfigError(f"{flag}: a shape's dimensions must be integers separated by 'x' (1x3x224x224); a "
                          "value is a number (16000) or numbers separated by ',' (1,2,3)",
                          hint="give a .npy file with --feed NAME=FILE.npy for other values") from None


def _load_npy(flag: str, path: Path) -> np.ndarray:
    if not path.is_file():
        raise ConfigError(f"{flag}: no such file {str(path)!r}", hint="give an existing .npy file")
    try:
        return np.asarray(np.load(path, allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{flag}: not a .npy array ({type(exc).__name__}: {str(exc)[:120]})",
                          hint="save it with numpy.save(path, array)") from None


def check_value(spec: InputLike, value: np.ndarray, flag: str, *, exact_dtype: bool = False) -> np.ndarray:
    """``value`` as the model's input ``spec`` takes it: its dtype (a file's must match exactly; a number typed
    on the command line is converted, an integer input refusing a fraction), its rank (a scalar given for a
    shape-[1] input becomes [1]) and its fixed dims. Mismatch -> ConfigError: input, expected vs got."""
    want = np.dtype(spec.dtype)
    dims = list(spec.shape)
    if exact_dtype and value.dtype != want:
        raise ConfigError(f"{flag}: input {spec.name!r} expects dtype {want}, the file holds {value.dtype}",
                          hint=f"save the array as {want} (array.astype(numpy.{want}))")
    if np.issubdtype(want, np.integer) and value.dtype.kind == "f" and not np.all(np.mod(value, 1) == 0):
        raise ConfigError(f"{flag}: input {spec.name!r} is {want}; {value.tolist()} is not an integer",
                          hint="give an integer value")
    if value.ndim == 0 and len(dims) == 1 and (dims[0] == 1 or not (isinstance(dims[0], int) and dims[0] > 0)):
        value = value.reshape(1)  # a scalar for a [1] (or dynamic 1-D) input
    if value.ndim != len(dims) or any(isinstance(d, int) and d > 0 and g != d
                                      for g, d in zip(value.shape, dims, strict=False)):
        shown = [d if isinstance(d, int) and d > 0 else "?" for d in dims]
        raise ConfigError(f"{flag}: input {spec.name!r} expects shape {shown} (rank {len(dims)}), got "
                          f"{list(value.shape)} (rank {value.ndim})",
                          hint="give a value of that shape (--feed NAME=FILE.npy for arrays)")
    return as_feed_array(value.astype(want, copy=False))


def as_feed_array(value: Any) -> np.ndarray:
    """A C-contiguous array that keeps its rank (``np.ascontiguousarray`` turns rank 0 into shape [1])."""
    a = np.asarray(value)
    return a if a.flags.c_contiguous else np.array(a, order="C")


def random_array(dtype: Any, shape: Sequence[int], rng: np.random.Generator, *,
                 index_high: int | None = None) -> np.ndarray:
    """Random data a model can consume: floats in [0, 1), integers in [0, ``index_high``) (Gather rows) or
    [0, 10), booleans fair coins; ``shape`` () gives a rank-0 array."""
    dt = np.dtype(dtype)
    size = tuple(int(d) for d in shape)
    if dt == np.bool_:
        return as_feed_array(rng.random(size) < 0.5)
    if np.issubdtype(dt, np.integer):
        high = max(1, int(index_high)) if index_high is not None else SMALL_INT_HIGH
        return as_feed_array(rng.integers(0, high, size=size).astype(dt))
    return as_feed_array(rng.random(size).astype(dt))


def synth_feed(specs: Sequence[InputLike], shapes: Mapping[str, Sequence[int]], rng: np.random.Generator, *,
               values: Mapping[str, np.ndarray] | None = None,
               index_bounds: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """One feed: ``values`` where given, else :func:`random_array` at ``shapes[name]`` (every other input
    needs one), integers bounded by ``index_bounds`` (see :func:`gather_index_bounds`)."""
    given, bounds = dict(values or {}), dict(index_bounds or {})
    feed: dict[str, np.ndarray] = {}
    for s in specs:
        if s.name in given:
            feed[s.name] = given[s.name]
        else:
            feed[s.name] = random_array(s.dtype, shapes[s.name], rng, index_high=bounds.get(s.name))
    return feed


def gather_index_bounds(model: Any) -> dict[str, int]:
    """Graph inputs used (directly) as the indices of a Gather whose data has a known size n on the gathered
    axis -> n (the smallest, if several); ``model`` is an onnx.ModelProto or a path to one. Other formats and
    inputs reach no bound: integers are then drawn from [0, 10)."""
    import onnx

    if not hasattr(model, "graph"):
        if Path(str(model)).suffix.lower() != ".onnx":
            return {}
        model = onnx.load(str(model), load_external_data=False)
    g = model.graph
    sizes: dict[str, list[int]] = {i.name: list(i.dims) for i in g.initializer}
    for vi in [*g.input, *g.value_info]:
        dims = vi.type.tensor_type.shape.dim
        if vi.name not in sizes and all(d.HasField("dim_value") for d in dims):
            sizes[vi.name] = [d.dim_value for d in dims]
    inputs = {i.name for i in g.input} - {i.name for i in g.initializer}
    bounds: dict[str, int] = {}
    for node in g.node:
        if node.op_type != "Gather" or len(node.input) < 2 or node.input[1] not in inputs:
            continue
        data = sizes.get(node.input[0])
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if data and -len(data) <= axis < len(data) and data[axis] > 0:
            n = int(data[axis])
            bounds[node.input[1]] = min(n, bounds.get(node.input[1], n))
    return bounds
