"""Readers for real segmentation datasets in their official on-disk layouts.

- Cityscapes (``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` and
  ``gtFine/<split>/<city>/<name>_gtFine_labelIds.png``): labelIds are mapped to the 19
  trainIds of the benchmark; every other id (void, license plate, ...) becomes 255.
- Pascal VOC 2012 (``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png`` palette PNGs,
  ``ImageSets/Segmentation/<split>.txt``): palette indices 0..20 are the classes
  (0 = background), 255 marks object borders. ``root`` may be ``VOC2012`` or a folder holding
  ``VOCdevkit/VOC2012``.
- ADE20K SceneParsing (``ADEChallengeData2016/images/{training,validation}/*.jpg`` and
  ``annotations/...png``): 0 is "other" (ignored -> 255), 1..150 become 0..149.

Images are resized (bilinear) and labels (nearest) to the task's input size and held in
memory as uint8, like the synthetic splits.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgekd.errors import ConfigError, UnknownNameError
from edgekd.tasks.segmentation.synth import SegArrays

IGNORE = 255
# Cityscapes labelId -> trainId (the 19 evaluated classes); everything else is ignored.
CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
                        25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
                      "motorcycle", "bicycle")
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
NUM_CLASSES = {"cityscapes": 19, "voc": 21, "ade20k": 150}


def cityscapes_lut() -> np.ndarray:
    lut = np.full(256, IGNORE, np.uint8)
    for label_id, train_id in CITYSCAPES_TRAIN_IDS.items():
        lut[label_id] = train_id
    return lut


def voc_palette() -> np.ndarray:
    """The VOC colour map [256, 3]: class bits spread over the high bits of R, G, B."""
    pal = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


def ade20k_lut() -> np.ndarray:
    lut = np.full(256, IGNORE, np.uint8)
    lut[1:151] = np.arange(150, dtype=np.uint8)
    return lut


def _missing(dataset: str, path: Path, layout: str) -> ConfigError:
    return ConfigError(f"task.root: {dataset} file or folder {path} does not exist",
                       hint=f"point task.root at the {dataset} folder laid out as {layout}")


def cityscapes_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    if split not in ("train", "val", "test"):
        raise UnknownNameError("cityscapes split", split, ("train", "val", "test"))
    img_dir = root / "leftImg8bit" / split
    if not img_dir.is_dir():
        raise _missing("cityscapes", img_dir, "leftImg8bit/<split>/<city>/*_leftImg8bit.png + gtFine/...")
    pairs = []
    for img in sorted(img_dir.glob("*/*_leftImg8bit.png")):
        lab = root / "gtFine" / split / img.parent.name / img.name.replace("_leftImg8bit.png", "_gtFine_labelIds.png")
        if not lab.is_file():
            raise _missing("cityscapes", lab, "gtFine/<split>/<city>/*_gtFine_labelIds.png")
        pairs.append((img, lab))
    return pairs


def _voc_root(root: Path) -> Path:
    return root / "VOCdevkit" / "VOC2012" if (root / "VOCdevkit" / "VOC2012").is_dir() else root


def voc_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    base = _voc_root(root)
    lst = base / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not lst.is_file():
        raise _missing("voc", lst, "VOC2012/{JPEGImages,SegmentationClass,ImageSets/Segmentation/<split>.txt}")
    ids = [line.strip() for line in lst.read_text().splitlines() if line.strip()]
    pairs = [(base / "JPEGImages" / f"{i}.jpg", base / "SegmentationClass" / f"{i}.png") for i in ids]
    for p in pairs[0] if pairs else ():
        if not p.is_file():
            raise _missing("voc", p, "VOC2012/JPEGImages/<id>.jpg and SegmentationClass/<id>.png")
    return pairs


def ade20k_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    folder = {"train": "training", "val": "validation"}.get(split)
    if folder is None:
        raise UnknownNameError("ade20k split", split, ("train", "val"))
    base = root / "ADEChallengeData2016" if (root / "ADEChallengeData2016").is_dir() else root
    img_dir = base / "images" / folder
    if not img_dir.is_dir():
        raise _missing("ade20k", img_dir, "ADEChallengeData2016/{images,annotations}/{training,validation}")
    pairs = []
    for img in sorted(img_dir.glob("*.jpg")):
        lab = base / "annotations" / folder / (img.stem + ".png")
        if not lab.is_file():
            raise _missing("ade20k", lab, "annotations/<split>/<name>.png next to images/<split>/<name>.jpg")
        pairs.append((img, lab))
    return pairs


def _read_label_voc(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("P", "L"):
            return np.asarray(im, dtype=np.uint8)
        # an RGB-converted annotation: map colours back through the palette
        rgb = np.asarray(im.convert("RGB"), dtype=np.int64)
    pal = voc_palette().astype(np.int64)
    key = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
    lut = {int(k): i for i, k in enumerate(key[:21])}
    lut[int(key[255])] = IGNORE
    flat = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    out = np.full(flat.shape, IGNORE, np.uint8)
    for k, i in lut.items():
        out[flat == k] = i
    return out


def _read_label_lut(lut: np.ndarray) -> Callable[[Path], np.ndarray]:
    def read(path: Path) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as im:
            return lut[np.asarray(im, dtype=np.uint8)]

    return read


def read_pairs(pairs: list[tuple[Path, Path]], read_label: Callable[[Path], np.ndarray], height: int,
               width: int) -> SegArrays:
    """Load, resize (image bilinear, label nearest) and stack image/label pairs."""
    from PIL import Image

    images = np.empty((len(pairs), 3, height, width), np.uint8)
    labels = np.empty((len(pairs), height, width), np.uint8)
    for i, (ip, lp) in enumerate(pairs):
        with Image.open(ip) as im:
            images[i] = np.asarray(im.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)).transpose(2, 0, 1)
        lab = read_label(lp)
        labels[i] = np.asarray(Image.fromarray(lab).resize((width, height), Image.Resampling.NEAREST))
    return SegArrays(images, labels)


def load(source: str, root: Path, split: str, height: int, width: int, limit: int | None = None,
         skip: int = 0) -> SegArrays:
    """Pairs ``skip .. skip+limit`` of an official split of a real dataset, resized and mapped."""
    if source == "cityscapes":
        pairs, reader = cityscapes_pairs(root, split), _read_label_lut(cityscapes_lut())
    elif source == "voc":
        pairs, reader = voc_pairs(root, split), _read_label_voc
    elif source == "ade20k":
        pairs, reader = ade20k_pairs(root, split), _read_label_lut(ade20k_lut())
    else:
        raise UnknownNameError("segmentation source", source, ("cityscapes", "voc", "ade20k"))
    pairs = pairs[skip:] if limit is None else pairs[skip:skip + limit]
    if not pairs:
        raise ConfigError(f"task.root={root}: no {source} images in split {split!r} (after skipping {skip})",
                          hint="check the dataset folder, or lower task.val_size/test_size")
    return read_pairs(pairs, reader, height, width)
