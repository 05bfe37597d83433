"""ScreenSpot and ScreenSpot-Pro loaders on tiny fixture folders in the real on-disk layout."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgekd.errors import ConfigError
from edgekd.tasks.gui_agent import tokens as T
from edgekd.tasks.gui_agent.config import GuiAgentTaskConfig
from edgekd.tasks.gui_agent.loaders import load_screenspot, load_screenspot_pro
from edgekd.tasks.gui_agent.render import ICON, TEXT
from edgekd.tasks.gui_agent.task import GuiAgentTask


def _png(path: Path, w: int, h: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), (200, 200, 200)).save(path)


@pytest.fixture
def screenspot(tmp_path: Path) -> Path:
    root = tmp_path / "ScreenSpot"
    _png(root / "screenspot_imgs" / "mobile_0.png", 400, 800)
    _png(root / "screenspot_imgs" / "web_0.png", 800, 400)
    (root / "screenspot_mobile.json").write_text(json.dumps([
        {"img_filename": "mobile_0.png", "bbox": [100, 200, 50, 40], "instruction": "open settings",
         "data_type": "text", "data_source": "android"}]))
    (root / "screenspot_web.json").write_text(json.dumps([
        {"img_filename": "web_0.png", "bbox": [600, 100, 20, 20], "instruction": "click the star icon",
         "data_type": "icon", "data_source": "shop"}]))
    return root


@pytest.fixture
def screenspot_pro(tmp_path: Path) -> Path:
    root = tmp_path / "ScreenSpot-Pro"
    _png(root / "images" / "vscode_macos" / "s1.png", 1000, 500)
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "vscode_macos.json").write_text(json.dumps([
        {"img_filename": "vscode_macos/s1.png", "bbox": [100, 50, 300, 150], "instruction": "search files",
         "ui_type": "text", "img_size": [1000, 500], "application": "vscode"},
        {"img_filename": "vscode_macos/s1.png", "bbox": [900, 400, 950, 450], "instruction": "close panel",
         "ui_type": "icon", "img_size": [1000, 500], "application": "vscode"}]))
    return root


def test_screenspot_xywh_boxes_scaled_to_the_letterboxed_square(screenspot: Path) -> None:
    a = load_screenspot(screenspot, image_size=128, n_bins=32, max_tokens=8)
    assert a.images.shape == (2, 3, 128, 128) and len(a) == 2
    # mobile 400x800 -> side 800 -> scale 0.16; box x 100..150, y 200..240
    np.testing.assert_allclose(a.boxes[0], np.array([100, 200, 150, 240]) * 0.16, atol=1e-4)
    np.testing.assert_allclose(a.boxes[1], np.array([600, 100, 620, 120]) * 0.16, atol=1e-4)
    assert a.target_type.tolist() == [TEXT, ICON]
    assert (a.truth[:, 0] == T.CLICK).all()
    assert T.detokenize(a.tokens[0]) == "open settings"
    # the padded area of the letterboxed mobile screen is black, the screen itself grey
    assert a.images[0, :, 10, 10].tolist() == [200, 200, 200] and a.images[0, :, 10, 120].tolist() == [0, 0, 0]


def test_screenspot_pro_xyxy_boxes(screenspot_pro: Path) -> None:
    a = load_screenspot_pro(screenspot_pro, image_size=100, n_bins=20, max_tokens=8)
    np.testing.assert_allclose(a.boxes, np.array([[10, 5, 30, 15], [90, 40, 95, 45]], dtype=np.float32), atol=1e-4)
    assert a.target_type.tolist() == [TEXT, ICON]
    assert a.truth[0].tolist() == [T.CLICK, 4, 2]  # centre (20, 10) at 5 px per bin


def test_task_split_from_config(screenspot: Path, tiny_cfg: GuiAgentTaskConfig) -> None:
    task = GuiAgentTask(tiny_cfg.model_copy(update={"screenspot_dir": str(screenspot)}), 0)
    assert "screenspot" in task.eval_splits()
    res = task.evaluate(lambda feeds: [np.zeros((len(feeds["image"]), 3, 16), dtype=np.float32)], "screenspot")
    assert res.extras["n"] == 2 and 0.0 <= res.metric <= 1.0


def test_bad_layouts_name_the_problem(tmp_path: Path, screenspot: Path) -> None:
    with pytest.raises(ConfigError, match="screenspot_dir"):
        load_screenspot(tmp_path / "nothing", image_size=64, n_bins=16, max_tokens=8)
    with pytest.raises(ConfigError, match="annotations"):
        load_screenspot_pro(tmp_path, image_size=64, n_bins=16, max_tokens=8)
    (screenspot / "screenspot_web.json").write_text(json.dumps([{"img_filename": "web_0.png", "instruction": "x"}]))
    with pytest.raises(ConfigError, match="lacks key 'bbox'"):
        load_screenspot(screenspot, image_size=64, n_bins=16, max_tokens=8)
    (screenspot / "screenspot_web.json").write_text(json.dumps([
        {"img_filename": "missing.png", "bbox": [0, 0, 1, 1], "instruction": "x", "data_type": "icon"}]))
    with pytest.raises(ConfigError, match="missing.png"):
        load_screenspot(screenspot, image_size=64, n_bins=16, max_tokens=8)
    (screenspot / "screenspot_web.json").write_text(json.dumps([
        {"img_filename": "web_0.png", "bbox": [0, 0, -5, 1], "instruction": "x", "data_type": "icon"}]))
    with pytest.raises(ConfigError, match="negative size"):
        load_screenspot(screenspot, image_size=64, n_bins=16, max_tokens=8)
