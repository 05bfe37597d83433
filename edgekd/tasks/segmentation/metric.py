"""Dataset-level segmentation metrics from one confusion matrix.

IoU_c = TP_c / (TP_c + FP_c + FN_c) per class, accumulated over the whole dataset (not
averaged per image, which over-weights small images and absent classes), and
mIoU = mean of IoU_c over the classes that occur in the ground truth or the prediction
(a class with an empty union is undefined, not 0). Pixels labelled ``ignore_index`` (255)
count nowhere. Pixel accuracy = trace / total counted pixels.
"""

from __future__ import annotations

import numpy as np

IGNORE = 255


def confusion_matrix(pred: np.ndarray, label: np.ndarray, num_classes: int,
                     ignore_index: int = IGNORE) -> np.ndarray:
    """[K, K] int64 counts, rows = ground truth, columns = prediction, ignored pixels skipped.

    A predicted class outside 0..K-1 on a counted pixel is an error, not silently dropped."""
    pred = np.asarray(pred).reshape(-1).astype(np.int64)
    label = np.asarray(label).reshape(-1).astype(np.int64)
    if pred.shape != label.shape:
        raise ValueError(f"prediction has {pred.size} pixels but the label has {label.size}")
    keep = label != ignore_index
    if np.any((label[keep] < 0) | (label[keep] >= num_classes)):
        bad = np.unique(label[keep][(label[keep] < 0) | (label[keep] >= num_classes)])[:5]
        raise ValueError(f"labels {bad.tolist()} are outside 0..{num_classes - 1} and not {ignore_index}")
    p, t = pred[keep], label[keep]
    if np.any((p < 0) | (p >= num_classes)):
        raise ValueError(f"predicted classes outside 0..{num_classes - 1}: {np.unique(p[(p < 0) | (p >= num_classes)])[:5]}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """IoU of each class (NaN where the class is neither in the labels nor in the predictions)."""
    cm = cm.astype(np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def mean_iou(cm: np.ndarray) -> float:
    iou = iou_per_class(cm)
    return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else 0.0


def pixel_accuracy(cm: np.ndarray) -> float:
    total = cm.sum()
    return float(np.trace(cm) / total) if total else 0.0


def to_label_map(output: np.ndarray) -> np.ndarray:
    """A model output -> [B, H, W] class map: argmax over axis 1 of logits [B, K, H, W], or a map as is."""
    out = np.asarray(output)
    if out.ndim == 4:
        return out.argmax(1)
    if out.ndim == 3 and not np.issubdtype(out.dtype, np.floating):
        return out
    raise ValueError(f"segmentation output has shape {out.shape} ({out.dtype}); expected logits [B, K, H, W] "
                     "or an integer class map [B, H, W]")
