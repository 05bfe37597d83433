"""Ready metrics for a task of your own, as plain numpy functions of whole-split arrays.

Each takes predictions and targets (numpy, any batch of items stacked on axis 0) and returns one
float. :data:`METRICS` names the ready ones for the generic tasks (``metric="accuracy"``), each
with its direction, so edgekd knows whether a larger value is better.

Formulas:
- accuracy = mean(argmax(scores) == label); top-k accuracy = mean(label in the k highest scores)
- MAE = mean |pred - target| over every element
- angular error = acos(clip(<p/|p|, t/|t|>, -1, 1)) in degrees, per direction vector
- IoU_c = TP_c / (TP_c + FP_c + FN_c) from one dataset-level confusion matrix; mIoU = the mean over
  classes present in labels or predictions (``edgekd.tasks.segmentation.metric``); label 255 ignored
- binary maps: IoU = |P and T| / |P or T|, F_beta = (1 + b^2) PR / (b^2 P + R) with precision
  P = |P and T| / |P| and recall R = |P and T| / |T|, pixels pooled over the split
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgekd.tasks.base import MetricSpec
from edgekd.tasks.segmentation.metric import IGNORE, confusion_matrix, mean_iou


def _same_len(pred: np.ndarray, target: np.ndarray) -> None:
    if len(pred) != len(target):
        raise ValueError(f"{len(pred)} predictions but {len(target)} targets")


def accuracy(scores_or_labels: np.ndarray, target: np.ndarray) -> float:
    """Share of correct classes; ``scores_or_labels`` is [N, K] scores (argmax taken) or [N] labels."""
    p = np.asarray(scores_or_labels)
    t = np.asarray(target).reshape(-1)
    labels = p.argmax(-1) if p.ndim == 2 else p.reshape(-1)
    _same_len(labels, t)
    return float(np.mean(labels == t)) if len(t) else 0.0


def top_k_accuracy(scores: np.ndarray, target: np.ndarray, k: int = 5) -> float:
    """Share of items whose label is among the ``k`` highest scores ([N, K] scores, [N] labels)."""
    s = np.asarray(scores)
    t = np.asarray(target).reshape(-1)
    if s.ndim != 2:
        raise ValueError(f"top-k accuracy needs scores [N, K], got shape {s.shape}")
    _same_len(s, t)
    k = min(k, s.shape[1])
    top = np.argpartition(-s, k - 1, axis=1)[:, :k]
    return float(np.mean((top == t[:, None]).any(axis=1))) if len(t) else 0.0


def mae(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error over every element."""
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} differs from target shape {t.shape}")
    return float(np.abs(p - t).mean()) if p.size else 0.0


def angular_error_deg(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-item angle in degrees between direction vectors [..., D] (any length > 0)."""
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} differs from target shape {t.shape}")
    p = p / np.linalg.norm(p, axis=-1, keepdims=True).clip(1e-12)
    t = t / np.linalg.norm(t, axis=-1, keepdims=True).clip(1e-12)
    return np.rad2deg(np.arccos(np.clip((p * t).sum(-1), -1.0, 1.0)))


def mean_angular_error_deg(pred: np.ndarray, target: np.ndarray) -> float:
    err = angular_error_deg(pred, target)
    return float(err.mean()) if err.size else 0.0


def miou(scores_or_labels: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int = IGNORE) -> float:
    """Dataset-level mean IoU; ``scores_or_labels`` is [N, K, H, W] scores (argmax over K) or [N, H, W]
    class maps; ``target`` [N, H, W] labels (``ignore_index`` pixels count nowhere)."""
    p = np.asarray(scores_or_labels)
    labels = p.argmax(1) if p.ndim == 4 else p
    return mean_iou(confusion_matrix(labels, np.asarray(target), num_classes, ignore_index))


def _binary(x: np.ndarray, threshold: float) -> np.ndarray:
    a = np.asarray(x)
    return a.astype(bool) if a.dtype == bool else a > threshold


def binary_iou(pred: np.ndarray, target: np.ndarray, threshold: float = 0.5) -> float:
    """IoU of two binary maps pooled over the split (values above ``threshold`` are foreground).
    Both empty: 1.0 (nothing to find, nothing found)."""
    p, t = _binary(pred, threshold), _binary(target, 0.5)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} differs from target shape {t.shape}")
    union = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / union) if union else 1.0


def binary_f_score(pred: np.ndarray, target: np.ndarray, threshold: float = 0.5, beta: float = 1.0) -> float:
    """F_beta of two binary maps pooled over the split (precision and recall of foreground pixels).
    Both empty: 1.0; one empty: 0.0."""
    p, t = _binary(pred, threshold), _binary(target, 0.5)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} differs from target shape {t.shape}")
    tp, n_p, n_t = np.logical_and(p, t).sum(), p.sum(), t.sum()
    if n_p == 0 and n_t == 0:
        return 1.0
    if tp == 0:
        return 0.0
    precision, recall = tp / n_p, tp / n_t
    b2 = beta * beta
    return float((1 + b2) * precision * recall / (b2 * precision + recall))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(x, np.float64))))


@dataclass(frozen=True)
class Metric:
    """A metric for the generic tasks: its spec (name, direction, unit) and ``fn(outputs, targets)``,
    where ``outputs`` is the model's first output over the split and ``targets`` the target key's values."""

    spec: MetricSpec
    fn: Callable[[np.ndarray, np.ndarray], float]


def ready_metric(name: str, num_classes: int | None = None) -> Metric:
    """A ready metric by name (see :data:`METRIC_NAMES`); ``num_classes`` for 'miou'."""
    from edgekd.errors import UnknownNameError

    if name == "accuracy":
        return Metric(MetricSpec("accuracy", lower_is_better=False, unit="fraction"), accuracy)
    if name == "top5_accuracy":
        return Metric(MetricSpec("top5_accuracy", lower_is_better=False, unit="fraction"),
                      lambda s, t: top_k_accuracy(s, t, 5))
    if name == "mae":
        return Metric(MetricSpec("mae", lower_is_better=True), mae)
    if name == "angular_error_deg":
        return Metric(MetricSpec("angular_error_deg", lower_is_better=True, unit="deg"), mean_angular_error_deg)
    if name == "miou":
        if num_classes is None:
            raise ValueError("metric 'miou' needs num_classes")
        k = num_classes
        return Metric(MetricSpec("miou", lower_is_better=False, unit="fraction"), lambda s, t: miou(s, t, k))
    if name in ("iou", "f_score"):
        # a binary map's output is one logit channel [N, 1, H, W]: foreground where sigmoid > 0.5
        fn = binary_iou if name == "iou" else binary_f_score
        return Metric(MetricSpec(name, lower_is_better=False, unit="fraction"),
                      lambda s, t: fn(_sigmoid(s).reshape(np.shape(t)), t))
    raise UnknownNameError("metric", name, METRIC_NAMES, hint="or pass a Metric(spec, fn) of your own")


METRIC_NAMES = ("accuracy", "top5_accuracy", "mae", "angular_error_deg", "miou", "iou", "f_score")

__all__ = ["METRIC_NAMES", "Metric", "accuracy", "angular_error_deg", "binary_f_score", "binary_iou", "mae",
           "mean_angular_error_deg", "miou", "ready_metric", "top_k_accuracy"]
