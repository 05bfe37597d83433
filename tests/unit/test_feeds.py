"""edgekd.feeds: --input/--feed parsing and checking, random inputs a model can consume, Gather bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.valued_model import TABLE_ROWS, valued_model

from edgekd.errors import ConfigError
from edgekd.feeds import (
    SMALL_INT_HIGH,
    as_feed_array,
    check_value,
    gather_index_bounds,
    parse_input_args,
    random_array,
    synth_feed,
)
from edgekd.iospec import TensorSpec

SPECS = [TensorSpec("x", ("batch", 4), "float32"), TensorSpec("sr", (), "int64"),
         TensorSpec("one", (1,), "int64"), TensorSpec("idx", ("batch", 3), "int64"),
         TensorSpec("seq", ("n",), "float32")]


def test_shapes_and_values_resolved_against_the_model() -> None:
    res = parse_input_args(["sr=16000", "one=7", "idx=2x3", "seq=16"]).resolve(SPECS)
    assert res.values["sr"].shape == () and res.values["sr"].dtype == np.int64 and int(res.values["sr"]) == 16000
    assert res.values["one"].shape == (1,) and res.values["one"].tolist() == [7]
    assert res.shapes["idx"] == (2, 3) and "idx" not in res.values
    assert res.shapes["seq"] == (16,) and "seq" not in res.values  # a bare integer sizes a dynamic 1-D input
    with pytest.raises(ConfigError, match=r"input 'x' expects shape \['\?', 4\] \(rank 2\), got \[4\] \(rank 1\)"):
        parse_input_args(["x=0.5,1,2,3"]).resolve(SPECS[:1])


def test_feed_file_dtype_and_shape_are_checked(tmp_path: Path) -> None:
    np.save(tmp_path / "ok.npy", np.array([[0, 4, 1]], np.int64))
    np.save(tmp_path / "f32.npy", np.array([[0, 4, 1]], np.float32))
    np.save(tmp_path / "long.npy", np.array([[0, 4, 1, 2]], np.int64))
    assert parse_input_args(feeds=[f"idx={tmp_path / 'ok.npy'}"]).resolve(SPECS).values["idx"].tolist() == [[0, 4, 1]]
    with pytest.raises(ConfigError, match="input 'idx' expects dtype int64, the file holds float32"):
        parse_input_args(feeds=[f"idx={tmp_path / 'f32.npy'}"]).resolve(SPECS)
    with pytest.raises(ConfigError, match=r"input 'idx' expects shape \['\?', 3\].*got \[1, 4\]"):
        parse_input_args(feeds=[f"idx={tmp_path / 'long.npy'}"]).resolve(SPECS)
    with pytest.raises(ConfigError, match="no such file"):
        parse_input_args(feeds=[f"idx={tmp_path / 'missing.npy'}"])


@pytest.mark.parametrize("items, message", [
    (["sr"], "expected NAME=DxDxD"), (["sr=abc"], "integers separated by 'x'"), (["x=1x0"], "positive"),
    (["sr=1", "sr=2"], "given twice"), (["zz=3"], "has no input 'zz'"), (["sr=0.5"], "not an integer"),
    (["sr=1,2"], r"expects shape \[\] \(rank 0\), got \[2\]"),
])
def test_bad_items_name_the_flag(items: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_input_args(items).resolve(SPECS)


def test_random_inputs_keep_rank_0_and_valid_ranges() -> None:
    rng = np.random.default_rng(0)
    a = random_array("int64", (), rng)
    assert a.shape == () and a.dtype == np.int64 and 0 <= int(a) < SMALL_INT_HIGH
    idx = random_array("int64", (1000,), rng, index_high=TABLE_ROWS)
    assert idx.min() == 0 and idx.max() == TABLE_ROWS - 1  # every row reachable, none outside the table
    f = random_array("float32", (1000,), rng)
    assert f.dtype == np.float32 and 0.0 <= f.min() and f.max() < 1.0
    feed = synth_feed(SPECS[:2], {"x": (1, 4)}, rng, values={"sr": np.array(16000, np.int64)})
    assert feed["sr"].shape == () and int(feed["sr"]) == 16000 and feed["x"].shape == (1, 4)
    assert as_feed_array(np.array(3)).shape == ()  # np.ascontiguousarray would give (1,)


def test_gather_index_bounds(tmp_path: Path) -> None:
    assert gather_index_bounds(valued_model(tmp_path / "v.onnx")) == {"idx": TABLE_ROWS}
    assert gather_index_bounds(tmp_path / "model.xml") == {}


def test_scalar_for_a_one_element_input_is_reshaped() -> None:
    got = check_value(TensorSpec("one", (1,), "float32"), np.array(2), "--input one=2")
    assert got.shape == (1,) and got.dtype == np.float32
