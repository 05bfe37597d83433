"""The PP-OCR check of issue 4: the detection model shipped in rapidocr-onnxruntime (weights in
Constant nodes, dynamic H/W) quantized with ONNX Runtime and with OpenVINO/NNCF, its map compared
with FP32 on rendered text images (IoU of the maps thresholded at 0.5)."""

from __future__ import annotations

import glob
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from edgekd.quantize.compare import compare_outputs
from edgekd.runtime.predict import onnx_predict

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
WORDS = ["invoice", "TOTAL 42.50", "edge device", "Quantize me", "2026-11-24", "hello world", "OpenVINO",
         "latency 3.1 ms", "PP-OCR det", "Kd student", "QDQ U8S8", "batch=1"]


def ppocr_det_model() -> Path:
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("rapidocr-onnxruntime is not installed (pip install rapidocr-onnxruntime)")
    found = sorted(glob.glob(str(Path(spec.submodule_search_locations[0]) / "models" / "*det*.onnx")))
    if not found:
        pytest.skip("no detection model inside rapidocr-onnxruntime")
    return Path(found[0])


def render_text_images(n: int, size: tuple[int, int] = (320, 320), seed: int = 0) -> list[np.ndarray]:
    """Real-looking documents: lines of dark text of varied size on light, slightly noisy paper."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        h, w = size
        bg = int(rng.integers(200, 256))
        im = Image.new("RGB", (w, h), (bg, bg, int(rng.integers(190, bg + 1))))
        draw = ImageDraw.Draw(im)
        y = int(rng.integers(5, 20))
        while y < h - 30:
            font = ImageFont.load_default(size=int(rng.integers(16, 30)))
            ink = tuple(int(v) for v in rng.integers(0, 80, 3))
            text = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 3))))
            draw.text((int(rng.integers(5, 60)), y), text, fill=ink, font=font)
            y += int(rng.integers(30, 55))
        arr = np.asarray(im, np.float32) + rng.normal(0, 4, (h, w, 3)).astype(np.float32)
        images.append(np.clip(arr, 0, 255).astype(np.uint8))
    return images


def det_feeds(images: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    return [{"x": (((im.astype(np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1)[None]).astype(np.float32)}
            for im in images]


@pytest.fixture(scope="module")
def ppocr(tmp_path_factory: pytest.TempPathFactory) -> dict:
    model = ppocr_det_model()
    calib = det_feeds(render_text_images(8, seed=1))
    test = det_feeds(render_text_images(4, seed=2))
    return {"model": model, "calib": calib, "test": test, "tmp": tmp_path_factory.mktemp("ppocr")}


def test_ppocr_det_ort_int8(ppocr: dict) -> None:
    from edgekd.quantize.ort_static import quantize_onnx_static

    res = quantize_onnx_static(ppocr["model"], ppocr["tmp"] / "det_int8.onnx", ppocr["calib"])
    assert any(s.startswith("constants_to_initializers") for s in res.prepare_steps)
    assert sum(n.startswith("Conv") or "conv" in n.lower() for n in res.nodes_quantized) >= 50
    ref = onnx_predict(str(ppocr["model"]))
    (row,) = compare_outputs(ref, onnx_predict(str(res.path)), ppocr["test"], ["map"])
    print(f"PP-OCR det ORT INT8: IoU@0.5 {row.map_iou:.3f}, SQNR {row.sqnr_db:.1f} dB, {res.seconds:.1f} s")
    assert row.map_iou is not None and row.map_iou > 0.8
    # The map found text: the check is not vacuous.
    assert float(np.mean(ref(ppocr["test"][0])[0] > 0.5)) > 0.01


@pytest.mark.openvino
def test_ppocr_det_nncf_int8(ppocr: dict) -> None:
    pytest.importorskip("nncf", reason="the openvino extra is not installed")
    from edgekd.quantize.nncf_ov import compile_f32, compiled_predict, quantize_openvino, read_model

    res = quantize_openvino(ppocr["model"], ppocr["tmp"] / "det_int8.xml", ppocr["calib"])
    assert len(res.nodes_quantized) >= 50
    (row,) = compare_outputs(onnx_predict(str(ppocr["model"])), compiled_predict(compile_f32(read_model(res.path))),
                             ppocr["test"], ["map"])
    print(f"PP-OCR det NNCF INT8: IoU@0.5 {row.map_iou:.3f}, SQNR {row.sqnr_db:.1f} dB, {res.seconds:.1f} s")
    assert row.map_iou is not None and row.map_iou > 0.8
