"""Input values, not only shapes (issue 21), as users call the commands: a model with a rank-0 int64 ``sr`` that
selects a branch and an int64 ``idx`` that indexes a table (tests/support/valued_model.py). profile, quantize and
export succeed, and a spy on ONNX Runtime's ``InferenceSession.run`` shows the fed values reaching the model:
``sr`` rank 0 with the stated value, ``idx`` inside the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from support.valued_model import TABLE_ROWS, valued_model

from edgekd.cli import main

FAST = ["--sessions", "2", "--iterations", "5", "--warmup-s", "0", "--warmup-iters", "1", "--min-duration-s", "0",
        "--no-progress"]


@pytest.fixture()
def seen(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, np.ndarray]]:
    """Every feed ONNX Runtime ran that holds ``sr`` (the valued model's), as copies."""
    calls: list[dict[str, np.ndarray]] = []
    real = ort.InferenceSession.run

    def spy(self: Any, output_names: Any, input_feed: Any, *args: Any, **kw: Any) -> Any:
        if isinstance(input_feed, dict) and "sr" in input_feed:
            calls.append({k: np.array(v) for k, v in input_feed.items()})
        return real(self, output_names, input_feed, *args, **kw)

    monkeypatch.setattr(ort.InferenceSession, "run", spy)
    return calls


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return valued_model(tmp_path_factory.mktemp("valued") / "v.onnx")


def _check_feeds(calls: list[dict[str, np.ndarray]], sr: int) -> None:
    assert calls, "ONNX Runtime never ran the model"
    for feed in calls:
        assert feed["sr"].shape == () and int(feed["sr"]) == sr
        assert feed["idx"].dtype == np.int64 and 0 <= feed["idx"].min() and feed["idx"].max() < TABLE_ROWS


def test_profile_feeds_the_value(model: Path, tmp_path: Path, seen: list[dict[str, np.ndarray]]) -> None:
    out = tmp_path / "r.json"
    assert main(["profile", str(model), "--input", "sr=16000", "--threads", "1", "--out", str(out), *FAST]) == 0
    _check_feeds(seen, 16000)
    d = json.loads(out.read_text())
    assert d["inputs"]["sr"]["shape"] == [] and d["inputs_given"] == {"sr": "--input sr=16000"}


def test_profile_without_values_still_runs(model: Path, tmp_path: Path, seen: list[dict[str, np.ndarray]]) -> None:
    """No --input at all: sr is a random rank-0 integer, idx random rows of the table."""
    assert main(["profile", str(model), "--threads", "1", "--out", str(tmp_path / "r.json"), *FAST]) == 0
    assert seen and all(f["sr"].shape == () and f["idx"].max() < TABLE_ROWS for f in seen)


def test_profile_throughput_feeds_the_value(model: Path, tmp_path: Path, seen: list[dict[str, np.ndarray]]) -> None:
    args = ["profile", str(model), "--input", "sr=100", "--mode", "throughput", "--batch", "1", "--streams", "1",
            "--duration-s", "0.05", "--out", str(tmp_path / "r.json"), *FAST]
    assert main(args) == 0
    _check_feeds(seen, 100)


def test_quantize_feeds_the_value(model: Path, tmp_path: Path, seen: list[dict[str, np.ndarray]]) -> None:
    out = tmp_path / "v.int8.onnx"
    assert main(["quantize", str(model), "--out", str(out), "--input", "sr=16000", "--calib-count", "4"]) == 0
    assert out.is_file()
    _check_feeds(seen, 16000)


def test_export_feeds_the_value_from_a_file(model: Path, tmp_path: Path,
                                            seen: list[dict[str, np.ndarray]]) -> None:
    np.save(tmp_path / "idx.npy", np.array([[4, 0, 2]], np.int64))
    out = tmp_path / "e.onnx"
    assert main(["export", str(model), "--format", "onnx", "--out", str(out), "--input", "sr=13000", "--feed",
                 f"idx={tmp_path / 'idx.npy'}"]) == 0
    _check_feeds(seen, 13000)
    assert all(f["idx"].tolist() == [[4, 0, 2]] for f in seen)


def test_gate_model_vs_model_feeds_the_value(model: Path, tmp_path: Path,
                                             seen: list[dict[str, np.ndarray]]) -> None:
    """The interleaved gate times both files on the same stated values (not only --input shapes)."""
    np.save(tmp_path / "idx.npy", np.array([[1, 4, 3]], np.int64))
    code = main(["gate", str(model), "--baseline", str(model), "--input", "sr=22050", "--feed",
                 f"idx={tmp_path / 'idx.npy'}", "--sessions-min", "3", "--sessions-max", "3", "--iterations", "15",
                 "--threads", "1", "--json", str(tmp_path / "v.json")])
    assert code in (0, 3)  # the same file twice: PASS, or INCONCLUSIVE at 3 sessions; never FAIL or an error
    _check_feeds(seen, 22050)
    assert all(f["idx"].tolist() == [[1, 4, 3]] for f in seen)


@pytest.mark.parametrize("command", ["profile", "quantize", "export", "gate"])
def test_feed_of_the_wrong_dtype_exits_2(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         command: str) -> None:
    np.save(tmp_path / "idx.npy", np.array([[4, 0, 2]], np.float32))
    out = {"profile": ["--out", str(tmp_path / "r.json"), *FAST], "quantize": ["--out", str(tmp_path / "q.onnx")],
           "export": ["--format", "onnx", "--out", str(tmp_path / "e.onnx")],
           "gate": ["--baseline", str(model)]}[command]
    assert main([command, str(model), "--feed", f"idx={tmp_path / 'idx.npy'}", *out]) == 2
    err = capsys.readouterr().err
    assert "input 'idx' expects dtype int64, the file holds float32" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx.npy"]


def test_optimize_data_carries_the_value(model: Path) -> None:
    from edgekd.pipeline.optimize.data import load_data

    split, notes = load_data(model, None, None, 4, {}, values={"sr": np.array(16000, np.int64)})
    feeds = [*split.calib, *split.eval]
    assert feeds and notes
    _check_feeds(feeds, 16000)


def test_optimize_feeds_the_value(model: Path, tmp_path: Path, seen: list[dict[str, np.ndarray]]) -> None:
    out = tmp_path / "opt"
    assert main(["optimize", str(model), "--input", "sr=16000", "--candidate", "ort-int8-dynamic", "--out", str(out),
                 "--sessions", "2", "--iterations", "5", "--calib-count", "4"]) == 0
    assert (out / "optimize.json").is_file()
    _check_feeds(seen, 16000)
