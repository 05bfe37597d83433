"""Real-dataset readers on tiny fixture folders written in each dataset's official layout."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgekd.errors import ConfigError
from edgekd.tasks.segmentation import loaders
from edgekd.tasks.segmentation.config import SegmentationTaskConfig
from edgekd.tasks.segmentation.task import SegmentationTask


def _rgb(path: Path, h: int = 16, w: int = 32, value: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path)


def _gray(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8), mode="L").save(path)


def test_cityscapes_label_ids_to_train_ids(tmp_path: Path) -> None:
    lab = np.zeros((16, 32), np.uint8)
    lab[:, :8] = 7  # road -> 0
    lab[:, 8:16] = 26  # car -> 13
    lab[:, 16:24] = 33  # bicycle -> 18
    lab[:, 24:] = 1  # ego vehicle -> ignore
    for split, city in (("train", "aachen"), ("val", "frankfurt")):
        for k in range(2):
            stem = f"{city}_000000_00001{k}"
            _rgb(tmp_path / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
            _gray(tmp_path / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", lab)
    arr = loaders.load("cityscapes", tmp_path, "train", 8, 16)
    assert arr.images.shape == (2, 3, 8, 16) and arr.labels.shape == (2, 8, 16)
    np.testing.assert_array_equal(arr.labels[0, 0], [0] * 4 + [13] * 4 + [18] * 4 + [255] * 4)
    lut = loaders.cityscapes_lut()
    assert (lut != 255).sum() == 19 and sorted(lut[lut != 255].tolist()) == list(range(19))
    # the task splits the official val into val (first val_size) and test (the next ones)
    task = SegmentationTask(SegmentationTaskConfig(source="cityscapes", root=tmp_path, height=16, width=32,
                                                   val_size=1, test_size=1, shifts=["fog"]))
    assert task.num_classes == 19 and len(task.dataset("val")) == 1 and len(task.dataset("test_fog")) == 1


def test_cityscapes_missing_label_names_the_file(tmp_path: Path) -> None:
    _rgb(tmp_path / "leftImg8bit" / "train" / "ulm" / "ulm_000000_000001_leftImg8bit.png")
    with pytest.raises(ConfigError, match="gtFine_labelIds"):
        loaders.load("cityscapes", tmp_path, "train", 8, 16)


def test_voc_palette_pngs_and_imagesets(tmp_path: Path) -> None:
    base = tmp_path / "VOCdevkit" / "VOC2012"
    idx = np.zeros((16, 32), np.uint8)
    idx[:, 16:] = 15  # person
    idx[0, :] = 255  # border
    pal = loaders.voc_palette()
    for name in ("2007_000032", "2007_000039"):
        _rgb(base / "JPEGImages" / f"{name}.jpg")
        im = Image.fromarray(idx, mode="P")
        im.putpalette(pal.reshape(-1).tolist())
        (base / "SegmentationClass").mkdir(parents=True, exist_ok=True)
        im.save(base / "SegmentationClass" / f"{name}.png")
    (base / "ImageSets" / "Segmentation").mkdir(parents=True)
    (base / "ImageSets" / "Segmentation" / "train.txt").write_text("2007_000032\n2007_000039\n")
    # an RGB-converted copy decodes to the same indices through the palette
    Image.open(base / "SegmentationClass" / "2007_000039.png").convert("RGB").save(
        base / "SegmentationClass" / "2007_000039.png")
    arr = loaders.load("voc", tmp_path, "train", 16, 32)
    assert arr.labels.shape == (2, 16, 32)
    for k in range(2):
        np.testing.assert_array_equal(arr.labels[k], idx)
    assert tuple(pal[15]) == (192, 128, 128) and tuple(pal[1]) == (128, 0, 0)


def test_ade20k_zero_is_ignored_and_classes_shift_down(tmp_path: Path) -> None:
    base = tmp_path / "ADEChallengeData2016"
    lab = np.zeros((16, 32), np.uint8)
    lab[:, 8:] = 1
    lab[:, 24:] = 150
    for split in ("training", "validation"):
        _rgb(base / "images" / split / f"ADE_{split[:5]}_00000001.jpg")
        _gray(base / "annotations" / split / f"ADE_{split[:5]}_00000001.png", lab)
    arr = loaders.load("ade20k", tmp_path, "val", 16, 32)
    np.testing.assert_array_equal(arr.labels[0, 0], [255] * 8 + [0] * 16 + [149] * 8)
    with pytest.raises(ConfigError, match="ade20k"):
        loaders.load("ade20k", tmp_path / "nowhere", "train", 16, 32)
