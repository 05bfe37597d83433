"""PP-OCRv4 text detection distilled into a small plain-torch student: an edgekd custom task.

The teacher is ``ch_PP-OCRv4_det_infer.onnx`` from the ``rapidocr_onnxruntime`` wheel (a DB text
detector, Liao et al., "Real-time Scene Text Detection with Differentiable Binarization", AAAI 2020):
BGR image normalised to [-1, 1] in, per-pixel text probability out, same height and width. It is run
frozen by ONNX Runtime (``teacher.source: onnx`` in recipe.yaml); this file gives everything else:

- data: rendered text images (phrases of 1-3 words in 13 fonts, 14-40 px, on solid, gradient, noise and
  cluttered backgrounds), each word box known exactly from the rendered ink;
- the student: a 4-stage encoder of plain 3x3 convolutions with an FPN-lite decoder, probability map out,
  about 1/9 of the teacher's parameters;
- the task loss: binary cross-entropy plus dice against the DB "shrunk" text kernels of the ground-truth boxes;
- the metric: text-box F-score (hmean of precision and recall) at IoU >= 0.5, after DB's post-processing
  (binarise at 0.3, connected components, box score >= 0.5, unclip by area * ratio / perimeter).

``build(args, seed)`` is the factory the recipe names (``task: {kind: custom, factory: task.py:build}``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import nn
from torch.utils.data import Dataset

from edgekd.iospec import IOSpec, TensorSpec
from edgekd.runtime.predict import PredictFn, iterate_numpy
from edgekd.tasks.base import EvalResult, MetricSpec

MAX_BOXES = 8  # phrases per image at most (boxes are padded to this for batching)
SHRINK = 0.4  # DB's shrink ratio r of the probability-map kernel: D = A (1 - r^2) / L
BIN_THRESH, BOX_THRESH, UNCLIP = 0.3, 0.5, 1.6  # rapidocr's Det settings (config.yaml)

WORDS = """time year people way day man thing woman life child world school state family student group
country problem hand part place case week company system program question work government number night
point home water room mother area money story fact month lot right study book eye job word business issue
side kind head house service friend father power hour game line end member law car city community name
president team minute idea kid body information back parent face others level office door health person
art war history party result change morning reason research girl guy moment air teacher force education
open close exit entry sale price total cash card paid order ticket menu coffee tea bread milk fresh daily
north south east west street road avenue station platform gate floor level parking free new old big small
""".split()


def _fonts() -> list[Path]:
    """DejaVu, STIX and Computer Modern faces: shipped with matplotlib, so present wherever it is."""
    import matplotlib

    ttf = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"
    names = ["DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSerif", "DejaVuSerif-Bold",
             "DejaVuSerif-Italic", "DejaVuSansMono", "DejaVuSansMono-Bold", "STIXGeneral", "STIXGeneralBol",
             "STIXGeneralItalic", "cmss10", "cmr10"]
    return [ttf / f"{n}.ttf" for n in names if (ttf / f"{n}.ttf").is_file()]


def _phrase(rng: np.random.Generator) -> str:
    n = int(rng.choice([1, 1, 2, 2, 3]))
    words = [str(rng.choice(WORDS)) for _ in range(n)]
    style = rng.random()
    if style < 0.25:
        words = [w.upper() for w in words]
    elif style < 0.5:
        words = [w.capitalize() for w in words]
    if rng.random() < 0.15:
        words.append(str(int(rng.integers(1, 9999))))
    return " ".join(words)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """[size, size, 3] uint8: solid, a linear gradient, smooth noise, or coloured clutter (boxes, lines)."""
    kind = int(rng.integers(4))
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    if kind == 0:
        img = np.broadcast_to(c0, (size, size, 3)).astype(np.float64)
    elif kind == 1:
        t = np.linspace(0, 1, size)[:, None, None]
        img = c0 * (1 - t) + c1 * t
        img = np.broadcast_to(img, (size, size, 3)) if rng.random() < 0.5 else np.broadcast_to(
            img.transpose(1, 0, 2), (size, size, 3))
    elif kind == 2:
        low = rng.uniform(0, 255, (6, 6, 3)).astype(np.uint8)
        img = np.asarray(Image.fromarray(low).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64)
    else:
        im = Image.fromarray(np.broadcast_to(c0, (size, size, 3)).astype(np.uint8))
        d = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(3, 9))):
            x0, y0 = rng.integers(0, size, 2)
            w, h = rng.integers(8, size // 2, 2)
            col = tuple(int(v) for v in rng.integers(0, 256, 3))
            if rng.random() < 0.5:
                d.rectangle([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=col)
            else:
                d.line([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=col, width=int(rng.integers(1, 4)))
        img = np.asarray(im, dtype=np.float64)
    img = img + rng.normal(0, rng.uniform(0, 8), (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _text_colour(rng: np.random.Generator, region: np.ndarray) -> tuple[int, int, int]:
    """A colour whose luma differs from the region's mean by at least 90 (readable text)."""
    luma = float((region.reshape(-1, 3) @ np.array([0.299, 0.587, 0.114])).mean())
    for _ in range(20):
        c = rng.integers(0, 256, 3)
        if abs(float(c @ np.array([0.299, 0.587, 0.114])) - luma) >= 90:
            return (int(c[0]), int(c[1]), int(c[2]))
    return (0, 0, 0) if luma > 127 else (255, 255, 255)


def render(rng: np.random.Generator, size: int, fonts: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """One image ([size, size, 3] uint8 RGB) and its phrase boxes ([n, 4] x0, y0, x1, y1 of the ink)."""
    img = _background(rng, size)
    boxes: list[tuple[int, int, int, int]] = []
    for _ in range(int(rng.integers(2, MAX_BOXES + 1))):
        font = ImageFont.truetype(str(fonts[int(rng.integers(len(fonts)))]), int(rng.integers(14, 41)))
        text = _phrase(rng)
        # the phrase's ink, drawn alone, gives its exact box
        left, top, right, bottom = font.getbbox(text)
        if right - left >= size - 8:
            continue
        mask = Image.new("L", (right - left + 4, bottom - top + 4), 0)
        ImageDraw.Draw(mask).text((2 - left, 2 - top), text, font=font, fill=255)
        m = np.asarray(mask)
        ys, xs = np.nonzero(m > 64)
        if len(xs) == 0:
            continue
        m = m[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        h, w = m.shape
        for _attempt in range(30):
            x0, y0 = int(rng.integers(2, size - w - 1)), int(rng.integers(2, max(3, size - h - 1)))
            box = (x0, y0, x0 + w, y0 + h)
            if y0 + h < size - 1 and all(_apart(box, o, 6) for o in boxes):
                break
        else:
            continue
        region = img[y0:y0 + h, x0:x0 + w]
        colour = np.array(_text_colour(rng, region), dtype=np.float64)
        alpha = (m.astype(np.float64) / 255.0)[..., None]
        img[y0:y0 + h, x0:x0 + w] = np.clip(region * (1 - alpha) + colour * alpha, 0, 255).astype(np.uint8)
        boxes.append(box)
    return img, np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def _apart(a: Sequence[int], b: Sequence[int], gap: int) -> bool:
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def shrunk_mask(boxes: np.ndarray, size: int) -> np.ndarray:
    """DB's probability target: each box inset by D = A (1 - r^2) / L (r = 0.4), filled with 1."""
    mask = np.zeros((size, size), dtype=np.float32)
    for x0, y0, x1, y1 in boxes:
        w, h = x1 - x0, y1 - y0
        d = w * h * (1 - SHRINK**2) / (2 * (w + h))
        # outward rounding: on thin text a pixel lost here is a third of the kernel's height
        a0, b0, a1, b1 = math.floor(x0 + d), math.floor(y0 + d), math.ceil(x1 - d), math.ceil(y1 - d)
        mask[b0:max(b0 + 1, b1), a0:max(a0 + 1, a1)] = 1.0
    return mask


@dataclass
class RenderedText(Dataset):  # type: ignore[type-arg]
    """Pre-rendered images (uint8, BGR as OpenCV gives them to PP-OCR) with padded boxes and kernels."""

    images: np.ndarray  # [N, 3, S, S] uint8 BGR
    boxes: np.ndarray  # [N, MAX_BOXES, 4] float32, -1 padded

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        img = torch.from_numpy(self.images[i]).float() / 127.5 - 1.0  # (x / 255 - 0.5) / 0.5, rapidocr's mean/std
        boxes = self.boxes[i]
        kernel = shrunk_mask(boxes[boxes[:, 0] >= 0], self.images.shape[-1])
        return {"image": img, "kernel": torch.from_numpy(kernel)[None], "boxes": torch.from_numpy(boxes)}

    def fingerprint(self) -> str:
        import hashlib

        return hashlib.sha256(self.images.tobytes() + self.boxes.tobytes()).hexdigest()


def render_split(n: int, size: int, seed: int) -> RenderedText:
    rng = np.random.default_rng(seed)
    fonts = _fonts()
    images = np.zeros((n, 3, size, size), dtype=np.uint8)
    boxes = np.full((n, MAX_BOXES, 4), -1.0, dtype=np.float32)
    for i in range(n):
        img, b = render(rng, size, fonts)
        images[i] = img[..., ::-1].transpose(2, 0, 1)  # RGB -> BGR, HWC -> CHW
        boxes[i, :len(b)] = b
    return RenderedText(images, boxes)


# ------------------------------------------------------------------------------------------- the student
def _cbr(cin: int, cout: int, stride: int) -> nn.Sequential:
    """3x3 convolution, BatchNorm, ReLU: dense convolutions train fastest on CPU and fuse into INT8 kernels."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class TinyDB(nn.Module):
    """Encoder at strides 4/8/16/32, FPN-lite top-down sum to stride 4, a DB-style head, sigmoid map out."""

    def __init__(self, widths: Sequence[int] = (16, 24, 32, 48, 64), fpn: int = 24) -> None:
        super().__init__()
        w = list(widths)
        self.stem = _cbr(3, w[0], 2)
        self.stages = nn.ModuleList(nn.Sequential(_cbr(w[i], w[i + 1], 2), _cbr(w[i + 1], w[i + 1], 1))
                                    for i in range(4))
        self.lateral = nn.ModuleList(nn.Conv2d(c, fpn, 1) for c in w[1:])
        self.head = nn.Sequential(_cbr(fpn, fpn, 1), nn.Conv2d(fpn, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        feats, x = [], self.stem(image)
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        top = self.lateral[3](feats[3])
        for i in (2, 1, 0):
            top = self.lateral[i](feats[i]) + F.interpolate(top, scale_factor=2.0, mode="nearest")
        logits = F.interpolate(self.head(top), size=image.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(logits)


def dice_loss(prob: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - 2|P.G| / (|P| + |G|) per image, averaged (Milletari et al. 2016): insensitive to how few pixels
    are text, which plain BCE is not (DB balances its BCE by hard-negative mining for the same reason)."""
    inter = (prob * target).flatten(1).sum(1)
    return (1 - (2 * inter + eps) / (prob.flatten(1).sum(1) + target.flatten(1).sum(1) + eps)).mean()


# --------------------------------------------------------------------------------------------- the metric
def boxes_from_map(prob: np.ndarray) -> list[tuple[float, float, float, float]]:
    """DB post-processing on one [H, W] probability map: boxes of the connected text kernels, unclipped."""
    from scipy import ndimage

    labels, n = ndimage.label(prob > BIN_THRESH)
    out = []
    h_img, w_img = prob.shape
    for sl in ndimage.find_objects(labels):
        if sl is None:
            continue
        y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
        w, h = x1 - x0, y1 - y0
        if min(w, h) < 2 or float(prob[y0:y1, x0:x1].mean()) < BOX_THRESH:
            continue
        d = w * h * UNCLIP / (2 * (w + h))  # DB's unclip distance D' = A' ratio / L'
        out.append((max(0.0, x0 - d), max(0.0, y0 - d), min(float(w_img), x1 + d), min(float(h_img), y1 + d)))
    return out


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_counts(det: Sequence[Sequence[float]], gt: Sequence[Sequence[float]], iou: float = 0.5) -> int:
    """Greedy one-to-one matching by IoU (highest first), as in the ICDAR 2015 protocol: true positives."""
    pairs = sorted(((_iou(d, g), i, j) for i, d in enumerate(det) for j, g in enumerate(gt)), reverse=True)
    used_d, used_g, tp = set(), set(), 0
    for v, i, j in pairs:
        if v < iou:
            break
        if i not in used_d and j not in used_g:
            used_d.add(i)
            used_g.add(j)
            tp += 1
    return tp


def binarised_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two probability maps binarised at DB's threshold (agreement of a student with its teacher)."""
    x, y = a > BIN_THRESH, b > BIN_THRESH
    union = np.logical_or(x, y).sum()
    return float(np.logical_and(x, y).sum() / union) if union else 1.0


# ----------------------------------------------------------------------------------------------- the task
class PPOCRDetTask:
    """The Task protocol for rendered-text detection with the PP-OCRv4 detector's input and output."""

    metric = MetricSpec("text_fscore", lower_is_better=False, unit="")

    def __init__(self, args: Mapping[str, Any], seed: int) -> None:
        self.size = int(args.get("size", 256))
        self.sizes = {"train": int(args.get("train_size", 1200)), "val": int(args.get("val_size", 100)),
                      "test": int(args.get("test_size", 200))}
        self.widths = tuple(int(v) for v in args.get("student_widths", (16, 24, 32, 48, 64)))
        self.fpn = int(args.get("student_fpn", 24))
        self.seed = seed
        self._data: dict[str, RenderedText] = {}

    def io_spec(self) -> IOSpec:
        s = self.size
        return IOSpec((TensorSpec("image", ("batch", 3, s, s), low=-1.0, high=1.0),),
                      (TensorSpec("prob", ("batch", 1, s, s)),))

    def dataset(self, split: str) -> RenderedText:
        if split not in self.sizes:
            raise KeyError(f"split {split!r}: this task has {sorted(self.sizes)}")
        if split not in self._data:
            # disjoint random streams per split: held-out images never share a render with training
            offset = {"train": 0, "val": 1, "test": 2}[split]
            self._data[split] = render_split(self.sizes[split], self.size, seed=1000 * self.seed + 17 + offset)
        return self._data[split]

    def build_teacher(self) -> nn.Module:
        raise NotImplementedError("the teacher is the PP-OCRv4 ONNX model: recipe.yaml sets teacher.source: onnx")

    def build_student(self, *, init: str = "teacher") -> nn.Module:
        """A fresh student (``init`` is accepted for the protocol: nothing is copied from an ONNX teacher)."""
        torch.manual_seed(self.seed + 1)
        return TinyDB(self.widths, self.fpn)

    def task_loss(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """BCE plus dice of the probability map against the shrunk ground-truth kernels (DB's L_s)."""
        prob, kernel = outputs[0], batch["kernel"]
        return F.binary_cross_entropy(prob.clamp(1e-6, 1 - 1e-6), kernel) + dice_loss(prob, kernel)

    def evaluate(self, predict: PredictFn, split: str = "test", batch_size: int = 64) -> EvalResult:
        tp = n_det = n_gt = 0
        for feeds, batch in iterate_numpy(self.dataset(split), ["image"], batch_size=min(batch_size, 16)):
            prob = predict(feeds)[0]
            for p, b in zip(prob[:, 0], batch["boxes"].numpy(), strict=True):
                gt = [tuple(map(float, x)) for x in b if x[0] >= 0]
                det = boxes_from_map(p)
                tp += match_counts(det, gt)
                n_det += len(det)
                n_gt += len(gt)
        precision = tp / n_det if n_det else 0.0
        recall = tp / n_gt if n_gt else 0.0
        f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return EvalResult(metric=f, extras={"precision": precision, "recall": recall, "detections": n_det,
                                            "ground_truth_boxes": n_gt, "iou_threshold": 0.5})

    def eval_splits(self) -> list[str]:
        return []

    # ---- the protocol's optional hooks, spelled out (edgekd.tasks.TaskBase gives the same defaults)
    parity_compare = "allclose"  # INT8 vs FP32 outputs: measured differences, judged by the metric
    parity_min_agreement = 0.99

    @property
    def teacher_input_names(self) -> Sequence[str]:
        return ("image",)

    def teacher_task_loss(self, outputs: Sequence[torch.Tensor], batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.task_loss(outputs, batch)

    def pretrain_teacher(self, teacher: nn.Module, *, progress: bool = False) -> dict[str, Any]:
        return {}  # the teacher is not trained here


def build(args: Mapping[str, Any], seed: int) -> PPOCRDetTask:
    """The recipe's factory: ``task: {kind: custom, factory: task.py:build, args: {...}}``."""
    return PPOCRDetTask(args or {}, seed)


def teacher_onnx_path() -> Path:
    """Where the rapidocr wheel keeps the detector (found without importing the package, which needs cv2)."""
    import importlib.util

    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("rapidocr_onnxruntime is not installed: pip install rapidocr-onnxruntime")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / "ch_PP-OCRv4_det_infer.onnx"


__all__ = ["PPOCRDetTask", "TinyDB", "binarised_iou", "boxes_from_map", "build", "render", "teacher_onnx_path"]
