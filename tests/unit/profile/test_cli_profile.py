from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.profile_helpers import make_cnn

from edgekd.cli import main

FAST = ["--sessions", "3", "--iterations", "20", "--warmup-s", "0", "--warmup-iters", "2", "--min-duration-s", "0",
        "--no-progress"]


def test_profile_writes_the_contract(tmp_path: Path) -> None:
    m = make_cnn(tmp_path / "m.onnx")
    out = tmp_path / "rep" / "r.json"
    rc = main(["profile", str(m), "--input", "x=1x3x16x16", "--threads", "1", "--out", str(out), "--layers",
               "--plots", *FAST])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["schema"] == "edgekd.profile/1" and d["runtime"]["name"] == "onnxruntime"
    assert d["runtime"]["threads"] == 1 and d["inputs"]["x"]["shape"] == [1, 3, 16, 16]
    assert d["layers"]["nodes"] and d["layers"]["coverage_pct"] > 0
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == ["r.json", "r.latency.png", "r.layers.png", "r.md", "r.samples.npy"]


def test_dynamic_batch_defaults_to_1_with_a_note(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The models edgekd exports have a dynamic batch: without --input they are profiled at batch 1, and the
    command says so (issue 20, item 9: the README's `edgekd profile RUN/student.onnx` runs as written)."""
    m = make_cnn(tmp_path / "m.onnx")
    out = tmp_path / "r.json"
    assert main(["profile", str(m), "--out", str(out), *FAST]) == 0
    err = capsys.readouterr().err
    assert "dynamic batch dim 'batch' set to 1" in err and "--input x=1x3x16x16" in err
    assert json.loads(out.read_text())["inputs"]["x"]["shape"] == [1, 3, 16, 16]


def test_missing_dynamic_dim_names_the_input(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import onnx

    m = make_cnn(tmp_path / "m.onnx")
    dyn = onnx.load(str(m))  # a dynamic height besides the batch: no default for it
    dyn.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "h"
    onnx.save(dyn, str(m))
    out = tmp_path / "r.json"
    assert main(["profile", str(m), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert "'x'" in err and "'h'" in err and "--input x=1x3x1x16" in err
    assert not out.exists()


@pytest.mark.parametrize("shape, message", [("x=1x3x8x8", "dim 2 must be 16"), ("x=1x3x16", "rank 3"),
                                            ("z=1x3x16x16", "no input 'z'"), ("x=1xAx16", "integers")])
def test_shape_that_does_not_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 shape: str, message: str) -> None:
    m = make_cnn(tmp_path / "m.onnx")
    assert main(["profile", str(m), "--input", shape, "--out", str(tmp_path / "r.json"), *FAST]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [m]


def test_missing_file_and_not_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", str(tmp_path / "nope.onnx"), *FAST]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf \x00\x01\x02" * 10)
    assert main(["profile", str(bad), "--out", str(tmp_path / "r.json"), *FAST]) == 2
    assert "not an ONNX model" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]


def test_unknown_suffix_and_runtime(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "m.pb"
    f.write_bytes(b"x")
    assert main(["profile", str(f), *FAST]) == 2
    assert "--runtime" in capsys.readouterr().err
    assert main(["profile", str(f), "--runtime", "onnxruntim", *FAST]) == 2
    assert "Did you mean 'onnxruntime'" in capsys.readouterr().err


def test_runtime_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    import edgekd.runtime as rt

    # A backend module that is not importable here (as tensorrt is on this CPU host).
    monkeypatch.setitem(rt._BACKENDS, "tensorrt", "edgekd_no_such_backend_module")
    f = tmp_path / "m.engine"
    f.write_bytes(b"\x00" * 64)
    assert main(["profile", str(f), "--out", str(tmp_path / "r.json"), *FAST]) == 2
    assert "tensorrt" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_device_checks_runtime_and_precision(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    m = make_cnn(tmp_path / "m.onnx", dynamic_batch=False)
    assert main(["profile", str(m), "--device", "host-cpu", "--precision", "fp16", *FAST]) == 2
    assert "not supported" in capsys.readouterr().err


def test_tflite_is_profiled_by_litert_and_a_broken_file_is_exit_2(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ai_edge_litert", reason="the litert extra is not installed")
    f = tmp_path / "m.tflite"
    f.write_bytes(b"x")
    assert main(["profile", str(f), *FAST]) == 2
    err = capsys.readouterr().err
    assert "litert could not load it" in err and "Traceback" not in err
