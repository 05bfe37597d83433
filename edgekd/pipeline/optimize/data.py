"""Inputs for ``edgekd optimize``: calibration and evaluation feeds from folders (or random, said loudly)."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from edgekd.quantize.heldout import HeldOutSplit


def load_data(model: Path, calib_dir: Path | None, eval_dir: Path | None, count: int,
              shapes: Mapping[str, Sequence[int]], *,
              values: Mapping[str, np.ndarray] | None = None) -> tuple[HeldOutSplit, list[str]]:
    """Held-out split of the given data; notes for the report (random data, automatic split). ``values``
    (--input NAME=VALUE, --feed) replace those inputs in every feed; random integers stay in a valid range
    (:mod:`edgekd.feeds`)."""
    from edgekd.errors import ConfigError
    from edgekd.feeds import gather_index_bounds
    from edgekd.quantize.calibration import RandomCalibrationWarning, folder_feeds, model_inputs, random_feeds
    from edgekd.quantize.heldout import split_heldout

    if count < 2:
        raise ConfigError(f"--calib-count {count}: at least 2 (some inputs are held out for judging)")
    inputs = model_inputs(model)
    notes: list[str] = []
    if calib_dir is None:
        if eval_dir is not None:
            raise ConfigError("--eval given without --calib", hint="give --calib DIR too (or only --calib)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RandomCalibrationWarning)
            calib = list(random_feeds(inputs, n=count, shapes=shapes, values=values,
                                      index_bounds=gather_index_bounds(model)))
        notes.append("WARNING: no --calib given: RANDOM inputs; agreement on random data says little about "
                     "real inputs")
        return split_heldout(calib), notes
    given = dict(values or {})
    calib = [{**f, **given} for f in itertools.islice(folder_feeds(calib_dir, inputs, limit=count), count)]
    ev = [{**f, **given} for f in itertools.islice(folder_feeds(eval_dir, inputs, limit=count), count)] \
        if eval_dir else None
    return split_heldout(calib, ev), notes
