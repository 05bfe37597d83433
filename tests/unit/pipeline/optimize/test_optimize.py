"""`edgekd optimize` as users call it, on a tiny CNN built here and on the PP-OCR direction classifier.

Behaviour only (which candidates, their fate and reasons, the pick rule, the files written); the timings
of a few iterations on a shared machine are not checked for speed.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.cli import main

pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install 'edgekd[openvino]')")
FEW = ["--sessions", "2", "--iterations", "3"]


class _TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("opt")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_TinyCNN().eval(), (torch.rand(1, 3, 12, 12),), str(d / "tiny.onnx"), input_names=["x"],
                          output_names=["logits"], dynamic_axes={"x": {0: "b"}}, opset_version=17, dynamo=False)
    data = d / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        np.save(data / f"{i:02d}.npy", rng.uniform(0, 1, (4, 3, 12, 12)).astype(np.float32))
    return d / "tiny.onnx", data


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    cap = capsys.readouterr()
    return code, cap.out + cap.err


def test_tiny_cnn_every_candidate_has_a_fate(tiny: tuple[Path, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    model, data = tiny
    out = tmp_path / "o"
    code, text = _run(["optimize", str(model), "--calib", str(data), "--out", str(out), "--max-drop", "0.5",
                       "--candidate", "ov-fp32", "--candidate", "ov-default", "--candidate", "ort-int8-U8S8-pc",
                       "--candidate", "ort-int8-dynamic", "--candidate", "ov-int8-nncf", "--candidate", "ov-int8-nncf-ac",
                       "--candidate", "trt",
                       *FEW], capsys)
    assert code == 0, text
    rep = json.loads((out / "optimize.json").read_text())
    assert (out / "optimize.md").is_file() and (out / "optimize.png").stat().st_size > 1000
    assert "split the 10 inputs automatically" in rep["data"] and rep["metrics"] == {"logits": "argmax"}
    by = {c["name"]: c for c in rep["candidates"]}
    assert {"ort-fp32", "ov-fp32", "ort-int8-U8S8-pc-all", "ort-int8-U8S8-pc-conv-matmul", "ort-int8-dynamic",
            "ov-int8-nncf", "ov-int8-nncf-ac", "trt-fp16"} <= set(by)
    assert any(n.startswith("ov-default(") for n in by)
    assert by["trt-fp16"]["status"] == "skipped" and "GPU" in by["trt-fp16"]["why"]
    assert by["ort-int8-dynamic"]["status"] == "skipped" and "CNN" in by["ort-int8-dynamic"]["why"]
    assert by["ov-fp32"]["runtime_settings"]["inference_precision"] == "f32"
    assert by["ov-fp32"]["runtime_settings"]["threads"] == 1
    measured = [c for c in rep["candidates"] if c["latency_p50_ms"] is not None]
    ok = [c for c in measured if c["within_budget"]]
    pick = min(ok, key=lambda c: c["latency_p50_ms"])
    assert rep["picked"] == pick["name"] and by[pick["name"]]["status"] == "picked"
    for c in rep["candidates"]:
        assert c["status"] and (c["status"] == "picked" or c["why"]), c
        if c["status"] == "too slow":
            assert c["latency_p50_ms"] >= pick["latency_p50_ms"] and "x the pick" in c["why"]
    assert by["ort-fp32"]["ratio_to_ort_fp32"] == pytest.approx(1.0)
    assert any(c["pareto"] for c in measured)


def test_impossible_budget_exits_1(tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, data = tiny
    # --metric sqnr with a 100 dB floor: only a bit-exact candidate passes; FP32 itself scores the 100 dB cap.
    code, text = _run(["optimize", str(model), "--calib", str(data), "--out", str(tmp_path / "o"), "--metric",
                       "sqnr", "--min-sqnr", "101", "--candidate", "ort-fp32", *FEW], capsys)
    assert code == 1 and "no candidate met" in text
    rep = json.loads((tmp_path / "o" / "optimize.json").read_text())
    assert rep["picked"] is None and rep["candidates"][0]["status"] == "outside the budget"


@pytest.mark.parametrize(("args", "needle"), [
    (["--max-drop", "1.5"], "--max-drop"), (["--metric", "top5"], "--metric"), (["--threads", "0"], "--threads"),
])
def test_bad_input_exits_2(tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           args: list[str], needle: str) -> None:
    model, data = tiny
    code, text = _run(["optimize", str(model), "--calib", str(data), "--out", str(tmp_path / "o"), *args, *FEW],
                      capsys)
    assert code == 2 and needle in text


def _ppocr_cls() -> Path:
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("rapidocr-onnxruntime is not installed (pip install rapidocr-onnxruntime)")
    found = glob.glob(str(Path(spec.submodule_search_locations[0]) / "models" / "ch_ppocr_mobile_v2.0_cls_infer.onnx"))
    if not found:
        pytest.skip("ch_ppocr_mobile_v2.0_cls_infer.onnx is not inside rapidocr-onnxruntime")
    return Path(found[0])


def test_ppocr_classifier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _ppocr_cls()
    rng = np.random.default_rng(0)
    for name, n in (("calib", 6), ("eval", 4)):
        (tmp_path / name).mkdir()
        for i in range(n):  # text-line-like crops: dark strokes on a light background, normalised like PP-OCR
            img = np.full((1, 3, 48, 192), 0.9, np.float32)
            img[..., 16:32, 10 + 10 * i:150] = rng.uniform(0, 0.3, (1, 3, 16, 140 - 10 * i))
            np.save(tmp_path / name / f"{i}.npy", ((img - 0.5) / 0.5).astype(np.float32))
    out = tmp_path / "o"
    code, text = _run(["optimize", str(model), "--calib", str(tmp_path / "calib"), "--eval", str(tmp_path / "eval"),
                       "--out", str(out), "--max-drop", "0.5", "--candidate", "ov-fp32",
                       "--candidate", "ort-int8-U8S8-pc-conv", *FEW], capsys)
    assert code == 0, text
    rep = json.loads((out / "optimize.json").read_text())
    assert rep["metrics"] == {"save_infer_model/scale_0.tmp_1": "argmax"} and "--eval" in rep["data"]
    by = {c["name"]: c for c in rep["candidates"]}
    assert by["ort-fp32"]["accuracy"] == pytest.approx(1.0)
    assert by["ov-fp32"]["accuracy"] == pytest.approx(1.0)  # f32 OpenVINO agrees with ORT FP32 on the argmax
    assert by["ov-fp32"]["runtime_settings"]["asked"]["static_input_shapes"] == {"x": [1, 3, 48, 192]}
    assert by["ort-int8-U8S8-pc-conv-matmul"]["status"] in ("picked", "too slow", "outside the budget")


def test_a_full_candidate_name_selects_that_candidate_alone() -> None:
    """--candidate ov-int8-nncf is plain NNCF only (accuracy control can take many minutes); a prefix such as
    ov-int8 still selects every OpenVINO INT8 candidate; ORT FP32 (the reference) is always kept."""
    from edgekd.pipeline.optimize.search import _wanted
    from edgekd.quantize.candidates import CandidateSpec

    def spec(name: str) -> CandidateSpec:
        return CandidateSpec(name, "openvino", "int8", "nncf")

    assert _wanted(spec("ov-int8-nncf"), ["ov-int8-nncf"])
    assert not _wanted(spec("ov-int8-nncf-ac"), ["ov-int8-nncf"])
    assert _wanted(spec("ov-int8-nncf-ac"), ["ov-int8"]) and _wanted(spec("ov-int8-nncf"), ["ov-int8"])
    assert _wanted(spec("ort-fp32"), ["ov-int8"])
    assert not _wanted(spec("ort-int8-dynamic"), ["ov-int8"])
