"""`edgekd personalize` as users call it: writes adapted weights + ONNX, exit 2 with a clear message on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.cli import main
from edgekd.tasks.gaze import models


@pytest.fixture()
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    from PIL import Image

    from edgekd.weights import save_module_weights

    torch.manual_seed(0)
    net = models.GazeNet((8, 8, 16, 16), (1, 1, 1, 1), kernel_size=3, stem_stride=4).eval()
    ckpt = save_module_weights(net, tmp_path / "student_kd.safetensors")
    d = tmp_path / "wearer"
    d.mkdir()
    rng = np.random.default_rng(0)
    rows = ["file,yaw_deg,pitch_deg"]
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (32, 48), dtype=np.uint8)).save(d / f"{i}.png")
        rows.append(f"{i}.png,{3.0 + i},{1.0 - i}")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return ckpt, d, labels


def test_personalize_writes_weights_onnx_and_summary(setup: tuple[Path, Path, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    ort = pytest.importorskip("onnxruntime")
    ckpt, d, labels = setup
    out = tmp_path / "out"
    rc = main(["personalize", str(ckpt), "--images", str(d), "--labels", str(labels), "--out", str(out),
               "--steps", "20", "--lr", "0.01", "--exporter", "torchscript"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "personalised on 5 image(s)" in printed and "next: edgekd profile" in printed
    summary = json.loads((out / "personalize.json").read_text())
    assert summary["support_error_after_deg"] < summary["support_error_before_deg"]
    assert set(summary["artifacts"]) == {"personalized.safetensors", "personalized.onnx"}
    sess = ort.InferenceSession(str(out / "personalized.onnx"), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"image": np.random.default_rng(1).random((3, 1, 32, 48), dtype=np.float32)})[0]
    assert y.shape == (3, 2)
    # the adapted weights load back as a gaze network (can be personalised again)
    from edgekd.tasks.gaze.personalize import load_checkpoint

    net, _, _ = load_checkpoint(out / "personalized.safetensors")
    assert net.dims == (8, 8, 16, 16)


@pytest.mark.parametrize("case, match", [
    ("no_labels", "--labels"),
    ("bad_header", "header is"),
    ("unlabelled_image", "has no label row"),
    ("not_gaze", "not a gaze network"),
    ("bad_checkpoint", "neither an edgekd run folder"),
])
def test_bad_input_exits_2_with_message(setup: tuple[Path, Path, Path], tmp_path: Path, case: str, match: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image
    from safetensors.torch import save_file

    ckpt, d, labels = setup
    if case == "no_labels":
        labels = tmp_path / "missing.csv"
    elif case == "bad_header":
        labels.write_text("image,yaw,pitch\n0.png,1,2\n", encoding="utf-8")
    elif case == "unlabelled_image":
        Image.fromarray(np.zeros((32, 48), dtype=np.uint8)).save(d / "extra.png")
    elif case == "not_gaze":
        save_file({"weight": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
        ckpt = tmp_path / "other.safetensors"
    else:
        ckpt = tmp_path / "model.pt"
        ckpt.write_bytes(b"x")
    rc = main(["personalize", str(ckpt), "--images", str(d), "--labels", str(labels), "--out",
               str(tmp_path / "o"), "--steps", "2"])
    err = capsys.readouterr().err
    assert rc == 2 and match in err, err
    assert not (tmp_path / "o" / "personalized.safetensors").exists()
