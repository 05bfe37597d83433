"""Calibration data for post-training quantization, framework-neutral.

Every quantizer in ``edgekd.quantize`` takes an iterable of feeds (``dict[str, np.ndarray]``
keyed by model input name, one batch each). This module builds such feeds from

- a recipe's dataset (the pipeline does that with ``tasks.base.iterate_numpy``),
- a folder of images with the preprocessing stated on the command line (resize, mean/std,
  NCHW or NHWC, grayscale or RGB),
- a folder of ``.npy`` / ``.npz`` files holding ready-made inputs,
- random data, with a loud warning: the ranges then say nothing about real inputs, so the
  accuracy of the quantized model is unknown.

It also adapts feeds to ONNX Runtime's ``CalibrationDataReader`` (:class:`FeedReader`).
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from edgekd.errors import ConfigError, QuantizationError
from edgekd.feeds import as_feed_array

log = logging.getLogger(__name__)

Feed = dict[str, np.ndarray]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

_ONNX_DTYPES = {1: "float32", 10: "float16", 11: "float64", 6: "int32", 7: "int64", 9: "bool", 2: "uint8", 3: "int8"}


class RandomCalibrationWarning(UserWarning):
    """Calibration ran on random data: the quantized model's accuracy is unknown."""


@dataclass(frozen=True)
class ModelInput:
    """An ONNX graph input: name, shape (int fixed, str or None dynamic), numpy dtype name."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str

    def resolve(self, override: Sequence[int] | None = None) -> tuple[int, ...]:
        """A concrete shape: ``override`` if given (rank must match), else fixed dims (dynamic -> error)."""
        if override is not None:
            if len(override) != len(self.shape):
                raise ConfigError(
                    f"--input {self.name}={'x'.join(map(str, override))}: rank {len(override)}, the model's input "
                    f"{self.name!r} has rank {len(self.shape)} (shape {list(self.shape)})",
                    hint=f"give {len(self.shape)} dimensions, e.g. --input {self.name}=" + self.example())
            for i, (got, want) in enumerate(zip(override, self.shape, strict=True)):
                if isinstance(want, int) and want > 0 and got != want:
                    raise ConfigError(
                        f"--input {self.name}=...: dim {i} is {got}, the model fixes it to {want} "
                        f"(shape {list(self.shape)})", hint=f"use --input {self.name}=" + self.example())
            return tuple(int(d) for d in override)
        # A dynamic batch dimension defaults to 1; any other dynamic dim needs a stated size.
        dims = [1 if i == 0 and not (isinstance(d, int) and d > 0) else d for i, d in enumerate(self.shape)]
        if any(not isinstance(d, int) or d <= 0 for d in dims):
            raise ConfigError(
                f"input {self.name!r} has dynamic dimensions (shape {list(self.shape)}) and no size was given",
                hint=f"state the calibration shape, e.g. --input {self.name}={self.example()}")
        return tuple(int(d) for d in dims)  # type: ignore[arg-type]

    def example(self) -> str:
        return "x".join(str(d) if isinstance(d, int) and d > 0 else "1" for d in self.shape)


def model_inputs(model: str | Path) -> list[ModelInput]:
    """The real inputs of an ONNX model (graph inputs that are not initializers)."""
    import onnx

    try:
        m = onnx.load(str(model), load_external_data=False)
    except Exception as exc:  # noqa: BLE001  (protobuf raises DecodeError, RuntimeWarning, ValueError...)
        raise ConfigError(f"MODEL {str(model)!r} is not an ONNX model ({type(exc).__name__}: {str(exc)[:200]})",
                          hint="pass a .onnx file exported by a framework") from None
    if not m.graph.node or not m.graph.input:  # protobuf reads an empty or foreign file as an empty model
        raise ConfigError(f"MODEL {str(model)!r} is not an ONNX model (no graph nodes or inputs)",
                          hint="pass a .onnx file exported by a framework")
    inits = {i.name for i in m.graph.initializer}
    out = []
    for vi in m.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        dims: list[int | str | None] = []
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                dims.append(d.dim_param)
            else:
                dims.append(None)
        out.append(ModelInput(vi.name, tuple(dims), _ONNX_DTYPES.get(tt.elem_type, "float32")))
    return out


class FeedReader(CalibrationDataReader):
    """ONNX Runtime calibration reader over any iterable of feeds.

    Checks every feed against the model's inputs (names, rank, dtype) so that a wrong
    calibration folder fails with a message, not deep inside ONNX Runtime. ``limit`` caps
    the number of batches; ``count`` is how many were served.
    """

    def __init__(self, feeds: Iterable[Mapping[str, np.ndarray]], inputs: Sequence[ModelInput] | None = None,
                 limit: int | None = None) -> None:
        self._it: Iterator[Mapping[str, np.ndarray]] = iter(feeds)
        if limit is not None:
            self._it = itertools.islice(self._it, limit)
        self._inputs = {i.name: i for i in inputs} if inputs else None
        self._peeked: Mapping[str, np.ndarray] | None = None
        self.count = 0

    def has_next(self) -> bool:
        if self._peeked is None:
            self._peeked = next(self._it, None)
        return self._peeked is not None

    def get_next(self) -> Feed | None:  # type: ignore[override]
        if not self.has_next():
            return None
        feed, self._peeked = self._peeked, None
        if feed is None:  # has_next() just returned True, so a feed was peeked
            return None
        out = {k: as_feed_array(v) for k, v in feed.items()}
        if self._inputs is not None:
            self._check(out, self._inputs)
        self.count += 1
        return out

    def _check(self, feed: Feed, inputs: Mapping[str, ModelInput]) -> None:
        problems = []
        for name, spec in inputs.items():
            if name not in feed:
                problems.append(f"missing input {name!r} (shape {list(spec.shape)})")
                continue
            a = feed[name]
            if a.ndim != len(spec.shape):
                problems.append(f"input {name!r}: rank {a.ndim} (shape {list(a.shape)}), the model needs "
                                f"rank {len(spec.shape)} (shape {list(spec.shape)})")
            elif np.dtype(a.dtype) != np.dtype(spec.dtype):
                problems.append(f"input {name!r}: dtype {a.dtype}, the model needs {spec.dtype}")
        extra = sorted(set(feed) - set(inputs))
        if extra:
            problems.append(f"unexpected inputs {extra}; the model's inputs are {sorted(inputs)}")
        if problems:
            raise QuantizationError(
                f"calibration batch {self.count} does not fit the model:\n" + "\n".join(f"  - {p}" for p in problems),
                hint="check --calib, --calib-layout, --calib-size and --grayscale against the model's inputs")


class ChunkReader(CalibrationDataReader):
    """Serves at most ``n`` batches of ``parent`` then stops; lets histogram calibrators
    collect in bounded memory (they keep every intermediate output of a collect call)."""

    def __init__(self, parent: FeedReader, n: int) -> None:
        self.parent, self.n, self.served = parent, n, 0

    def get_next(self) -> Feed | None:  # type: ignore[override]
        if self.served >= self.n:
            return None
        feed = self.parent.get_next()
        if feed is not None:
            self.served += 1
        return feed


def image_feeds(folder: str | Path, *, input_name: str, size: tuple[int, int], mean: Sequence[float] = (0.0,),
                std: Sequence[float] = (1.0,), layout: str = "nchw", grayscale: bool = False,
                scale: float = 1.0 / 255.0, limit: int | None = None, batch: int = 1) -> Iterator[Feed]:
    """Feeds from a folder of images: ``(pixel * scale - mean) / std``, resized to ``size`` (H, W).

    ``mean``/``std`` take one value (all channels) or one per channel. Files are read in
    sorted order so that calibration is reproducible.
    """
    from PIL import Image

    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--calib {str(folder)!r}: not a folder", hint="give a folder of images or .npy files")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"--calib {str(folder)!r}: no images ({', '.join(IMAGE_SUFFIXES)}) in it",
                          hint="put calibration images there, or .npy files of ready inputs")
    if layout not in ("nchw", "nhwc"):
        raise ConfigError(f"--calib-layout {layout!r}: allowed nchw, nhwc")
    channels = 1 if grayscale else 3
    m = _per_channel(mean, channels, "--mean")
    s = _per_channel(std, channels, "--std")
    if np.any(s == 0):
        raise ConfigError(f"--std {list(std)}: must be non-zero")
    h, w = size
    if limit is not None:
        files = files[:limit]
    buf: list[np.ndarray] = []
    for path in files:
        try:
            with Image.open(path) as src:
                im = src.convert("L" if grayscale else "RGB").resize((w, h), Image.Resampling.BILINEAR)
                arr = np.asarray(im, dtype=np.float32).reshape(h, w, channels)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:  # UnidentifiedImageError is an OSError
            raise ConfigError(f"--calib image {str(path)!r} cannot be read ({type(exc).__name__}: {str(exc)[:160]})",
                              hint="remove it from the calibration folder or replace it with a valid image") from None
        arr = (arr * scale - m) / s
        buf.append(arr.transpose(2, 0, 1) if layout == "nchw" else arr)
        if len(buf) == batch:
            yield {input_name: np.stack(buf).astype(np.float32)}
            buf = []
    if buf:
        yield {input_name: np.stack(buf).astype(np.float32)}


def npy_feeds(folder: str | Path, inputs: Sequence[ModelInput], limit: int | None = None) -> Iterator[Feed]:
    """Feeds from ``.npy`` files (single-input models) or ``.npz`` files (arrays named like the inputs).

    An array one rank short of the model's input gets a batch dimension of 1.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix in (".npy", ".npz"))
    if limit is not None:
        files = files[:limit]
    by_name = {i.name: i for i in inputs}
    for path in files:
        if path.suffix == ".npy" and len(inputs) != 1:
            raise ConfigError(
                f"--calib {str(folder)!r}: {path.name} is a .npy file but the model has {len(inputs)} inputs "
                f"({[i.name for i in inputs]})", hint="save one .npz per sample with arrays named like the inputs")
        raw = _load_arrays(path, inputs[0].name)
        feed = {}
        for name, a in raw.items():
            spec = by_name.get(name)
            if spec is not None and a.ndim == len(spec.shape) - 1:
                a = a[None]
            if spec is not None:
                _check_fixed_dims(path, spec, a)
            feed[name] = a.astype(spec.dtype) if spec is not None else a
        yield feed


def _load_arrays(path: Path, single_name: str) -> dict[str, np.ndarray]:
    """The numeric arrays of one .npy/.npz calibration file; anything else is a ConfigError naming it."""
    import zipfile

    fix = "save numeric arrays with numpy.save / numpy.savez (no pickled objects)"
    try:
        if path.suffix == ".npy":
            raw = {single_name: np.load(path, allow_pickle=False)}
        else:
            with np.load(path, allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"--calib file {str(path)!r} is not a readable numeric array ({type(exc).__name__}: "
                          f"{str(exc)[:160]})", hint=fix) from None
    for name, a in raw.items():
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
            raise ConfigError(f"--calib file {str(path)!r}: array {name!r} has dtype {a.dtype}, not a number type",
                              hint=fix)
    return raw


def _check_fixed_dims(path: Path, spec: ModelInput, a: np.ndarray) -> None:
    """A calibration array must fit the model's fixed dims (a wrong file fails here, not inside the runtime)."""
    if a.ndim != len(spec.shape):
        raise ConfigError(f"--calib file {str(path)!r}: array of shape {list(a.shape)} for input {spec.name!r} of "
                          f"shape {list(spec.shape)} (rank {a.ndim}, needs {len(spec.shape)})",
                          hint=f"save arrays of shape {spec.example()}")
    bad = [i for i, (d, want) in enumerate(zip(a.shape, spec.shape, strict=True))
           if isinstance(want, int) and want > 0 and d != want]
    if bad:
        raise ConfigError(f"--calib file {str(path)!r}: array of shape {list(a.shape)} for input {spec.name!r} of "
                          f"shape {list(spec.shape)}: dim {bad[0]} must be {spec.shape[bad[0]]}",
                          hint=f"save arrays of shape {spec.example()}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ConfigError(f"--calib file {str(path)!r}: holds NaN or Inf values", hint="calibrate on finite inputs")


def folder_feeds(folder: str | Path, inputs: Sequence[ModelInput], *, size: tuple[int, int] | None = None,
                 mean: Sequence[float] = (0.0,), std: Sequence[float] = (1.0,), layout: str = "nchw",
                 grayscale: bool = False, limit: int | None = None) -> Iterator[Feed]:
    """Images or .npy/.npz, whichever the folder holds (.npy/.npz win if both are present)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--calib {str(folder)!r}: not a folder", hint="give a folder of images or .npy files")
    if any(p.suffix in (".npy", ".npz") for p in folder.iterdir()):
        return npy_feeds(folder, inputs, limit)
    if len(inputs) != 1:
        raise ConfigError(f"--calib {str(folder)!r}: images can feed only a single-input model; this one has "
                          f"{[i.name for i in inputs]}", hint="save .npz files with arrays named like the inputs")
    spec = inputs[0]
    if len(spec.shape) != 4:
        raise ConfigError(f"--calib {str(folder)!r}: images need a rank-4 input, {spec.name!r} has shape "
                          f"{list(spec.shape)}", hint="save .npy files of ready inputs instead")
    if size is None:
        hw = spec.shape[2:4] if layout == "nchw" else spec.shape[1:3]
        if not all(isinstance(d, int) and d > 0 for d in hw):
            raise ConfigError(f"input {spec.name!r} has dynamic height/width (shape {list(spec.shape)}) and no "
                              "--calib-size was given", hint="add e.g. --calib-size 640x640")
        size = (int(hw[0]), int(hw[1]))  # type: ignore[arg-type]
    return image_feeds(folder, input_name=spec.name, size=size, mean=mean, std=std, layout=layout,
                       grayscale=grayscale, limit=limit)


def random_feeds(inputs: Sequence[ModelInput], n: int = 8, *, shapes: Mapping[str, Sequence[int]] | None = None,
                 seed: int = 0, low: float = 0.0, high: float = 1.0, calibration: bool = True,
                 values: Mapping[str, np.ndarray] | None = None,
                 index_bounds: Mapping[str, int] | None = None) -> Iterator[Feed]:
    """``n`` batches of random data (:func:`edgekd.feeds.synth_feed`: floats uniform in [low, high), integers in
    a valid range, rank 0 kept), ``values`` (--input NAME=VALUE, --feed) fed as given in every batch. For
    calibration (the default) it warns loudly: accuracy after quantization is then unknown;
    ``calibration=False`` (inputs only to compare outputs) does not."""
    from edgekd.feeds import synth_feed

    if calibration:
        msg = ("calibrating on RANDOM data: activation ranges do not reflect real inputs, so the accuracy of the "
               "quantized model is UNKNOWN. Give real calibration data (--calib DIR) for a trustworthy artifact.")
        warnings.warn(msg, RandomCalibrationWarning, stacklevel=2)
        log.warning(msg)
    given = dict(values or {})
    resolved = {i.name: i.resolve((shapes or {}).get(i.name)) for i in inputs if i.name not in given}
    rng = np.random.default_rng(seed)
    for _ in range(n):
        feed = synth_feed(inputs, resolved, rng, values=given, index_bounds=index_bounds)
        for i in inputs:
            if i.name not in given and np.dtype(i.dtype).kind == "f" and (low, high) != (0.0, 1.0):
                feed[i.name] = (low + (high - low) * feed[i.name]).astype(i.dtype)
        yield feed


def _per_channel(values: Sequence[float], channels: int, flag: str) -> np.ndarray:
    v = np.asarray(list(values), dtype=np.float32)
    if v.size == 1:
        return np.full(channels, float(v[0]), dtype=np.float32)
    if v.size != channels:
        raise ConfigError(f"{flag} {list(values)}: {v.size} values for {channels} channels",
                          hint=f"give 1 or {channels} values")
    return v
