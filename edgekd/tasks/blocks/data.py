"""Datasets for a task of your own: in-memory arrays as edgekd items, and a task's splits.

An edgekd dataset item is a ``dict[str, Tensor]`` holding every model input and the targets (see
:mod:`edgekd.tasks.base`). :class:`ArrayDataset` makes one from numpy arrays of equal length;
:class:`Splits` turns what a user has (a dict of datasets, or a function of the split name) into
the task's ``dataset(split)`` and infers the input specs from a training item.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from edgekd.errors import ConfigError, UnknownNameError
from edgekd.iospec import TensorSpec

Item = dict[str, torch.Tensor]
DatasetSource = Mapping[str, Dataset[Item]] | Callable[[str], Dataset[Item]]


class ArrayDataset(Dataset):  # type: ignore[type-arg]
    """Items ``{name: tensor}`` from numpy arrays (or tensors) sharing their first dimension.

    ``ArrayDataset(image=x, label=y)``: item i is ``{"image": x[i], "label": y[i]}``. Arrays are kept
    as given (convert images to float32 in [0, 1] first); nothing is copied per access."""

    def __init__(self, **arrays: np.ndarray | torch.Tensor) -> None:
        if not arrays:
            raise ValueError("ArrayDataset needs at least one named array")
        self.arrays = {k: torch.as_tensor(v) for k, v in arrays.items()}
        lengths = {k: len(v) for k, v in self.arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"ArrayDataset arrays differ in length: {lengths}")
        self._n = next(iter(lengths.values()))

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> Item:
        return {k: v[i] for k, v in self.arrays.items()}


class Splits:
    """A task's splits from a mapping or a function ``split -> Dataset`` (called once per split)."""

    def __init__(self, source: DatasetSource) -> None:
        self.source = source
        self._made: dict[str, Dataset[Item]] = {}

    def names(self) -> list[str]:
        return list(self.source) if isinstance(self.source, Mapping) else ["train", "val", "test"]

    def get(self, split: str) -> Dataset[Item]:
        if split in self._made:
            return self._made[split]
        if isinstance(self.source, Mapping):
            if split not in self.source:
                raise UnknownNameError("split", split, list(self.source),
                                       hint="give the task a dataset for every split it is asked for "
                                            "(train, val, test and any eval_splits)")
            ds = self.source[split]
        else:
            ds = self.source(split)
        self._made[split] = ds
        return ds

    def first_item(self) -> Item:
        ds = self.get("train")
        if len(ds) == 0:  # type: ignore[arg-type]
            raise ConfigError("the 'train' split is empty", hint="give the task a non-empty training set")
        item = ds[0]
        if not isinstance(item, Mapping):
            raise ConfigError(f"a dataset item is a {type(item).__name__}; edgekd needs a dict of tensors "
                              "{input name: tensor, target name: tensor}", hint="use edgekd.tasks.blocks.ArrayDataset")
        return dict(item)


def input_specs(item: Mapping[str, Any], names: Sequence[str]) -> tuple[TensorSpec, ...]:
    """Input specs [batch, *item shape] from a dataset item; dummy values drawn in [0, 1] for floats
    and in [0, max + 1) for integer inputs (token ids)."""
    specs = []
    for name in names:
        if name not in item:
            raise ConfigError(f"input {name!r} is not a key of a dataset item (keys: {sorted(item)})",
                              hint="set inputs= to the item keys the models read, in call order")
        value = torch.as_tensor(item[name])
        dtype = str(value.numpy().dtype)
        high = float(value.max()) + 1 if not value.is_floating_point() and value.numel() else 1.0
        specs.append(TensorSpec(name, ("batch", *value.shape), dtype, 0.0, high))
    return tuple(specs)


__all__ = ["ArrayDataset", "DatasetSource", "Item", "Splits", "input_specs"]
