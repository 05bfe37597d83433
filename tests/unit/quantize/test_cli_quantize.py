"""`edgekd quantize` as users call it: exit codes, random-data warning, comparison printed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgekd.cli import main


def test_random_calibration_warns_and_compares(tiny_onnx_dynamic: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "q.onnx"
    code = main(["quantize", str(tiny_onnx_dynamic), "--input", "x=1x3x16x24", "--out", str(out)])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "RANDOM" in cap.err and "UNKNOWN" in cap.out + cap.err
    assert "map: SQNR" in cap.out and "IoU@0.5" in cap.out and "logits: SQNR" in cap.out
    assert out.is_file()


def test_image_folder_openvino(tiny_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("nncf", reason="the openvino extra is not installed")
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(d / f"{i}.jpg")
    out = tmp_path / "ov" / "q.xml"
    code = main(["quantize", str(tiny_onnx), "--runtime", "openvino", "--calib", str(d), "--mean", "0.5",
                 "--std", "0.25", "--out", str(out)])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    # three inputs and no --eval: calibrated on the first, judged on the two held out
    assert "RANDOM" not in cap.err and "calibration batches: 1" in cap.out and "2 held out for judging" in cap.out
    assert out.is_file() and out.with_suffix(".bin").is_file()


@pytest.mark.parametrize("argv,needle", [
    (["--runtime", "tflite"], "--runtime 'tflite'"),
    (["--precision", "int4"], "--precision 'int4'"),
    (["--calib-size", "12"], "--calib-size '12'"),
    (["--input", "y=1x3x16x16"], "'y'"),
    (["--method", "kl"], "--method 'kl'"),
])
def test_bad_input_exits_2(tiny_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           argv: list[str], needle: str) -> None:
    code = main(["quantize", str(tiny_onnx), "--out", str(tmp_path / "q.onnx"), *argv])
    assert code == 2
    assert needle in capsys.readouterr().err


def test_dynamic_int8_on_cnn_warns(tiny_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["quantize", str(tiny_onnx), "--precision", "int8-dynamic", "--out", str(tmp_path / "d.onnx")])
    assert code == 0
    assert "SLOWER" in capsys.readouterr().err


def test_min_sqnr_fallback(tiny_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Ask for more SQNR than all-INT8 gives: layers fall back to FP32 and the target is reached."""
    out = tmp_path / "fb.onnx"
    code = main(["quantize", str(tiny_onnx), "--input", "x=1x3x16x16", "--min-sqnr", "55", "--out", str(out)])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "accuracy-aware fallback" in cap.err and "TARGET NOT REACHED" not in cap.err
    assert "compute nodes left in FP32: 0" not in cap.out  # some layers did fall back (all-INT8 gives ~51 dB)
    sqnrs = [float(line.split("SQNR ")[1].split(" dB")[0]) for line in cap.out.splitlines() if "SQNR" in line]
    assert len(sqnrs) == 2 and min(sqnrs) >= 55.0


def test_op_types_per_tensor_and_a_separate_eval_folder(tiny_onnx: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI reaches the API's options (issue 21): --op-types, --per-tensor, --activation; --eval judges on
    inputs the calibration never saw, and says so."""
    import onnx

    rng = np.random.default_rng(1)
    cal, ev = tmp_path / "cal", tmp_path / "ev"
    for d, n in ((cal, 4), (ev, 3)):
        d.mkdir()
        for i in range(n):
            np.save(d / f"{i}.npy", rng.random((1, 3, 16, 16), dtype=np.float32))
    every, conv = tmp_path / "all.onnx", tmp_path / "conv.onnx"
    assert main(["quantize", str(tiny_onnx), "--calib", str(cal), "--out", str(every)]) == 0
    capsys.readouterr()
    assert main(["quantize", str(tiny_onnx), "--calib", str(cal), "--eval", str(ev), "--op-types", "Conv",
                 "--per-tensor", "--activation", "int8", "--out", str(conv)]) == 0
    out = capsys.readouterr().out
    assert "calibrated on 4 inputs, judged on 3 separate evaluation inputs (--eval)" in out
    assert "held out, map:" in out and "calibration batches: 4" in out

    def quantized_consumers(path: Path) -> set[str]:
        """Op types that read a DequantizeLinear output: the ops that run in INT8."""
        g = onnx.load(str(path)).graph
        dq = {n.output[0] for n in g.node if n.op_type == "DequantizeLinear"}
        return {n.op_type for n in g.node if n.op_type != "QuantizeLinear" and dq & set(n.input)}

    linear = {"Gemm", "MatMul"}
    assert "Conv" in quantized_consumers(conv) and not quantized_consumers(conv) & linear, quantized_consumers(conv)
    assert quantized_consumers(every) & linear, quantized_consumers(every)  # all ops: the classifier head too
    assert main(["quantize", str(tiny_onnx), "--op-types", "Conv", "--runtime", "openvino",
                 "--out", str(tmp_path / "x.xml")]) == 2
    assert "use --runtime onnxruntime" in capsys.readouterr().err
