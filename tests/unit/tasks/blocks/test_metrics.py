"""The ready metrics against hand-computed values and their limit cases."""

from __future__ import annotations

import numpy as np
import pytest

from edgekd.errors import UnknownNameError
from edgekd.tasks.blocks import metrics as M


def test_accuracy_from_scores_and_from_labels() -> None:
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    target = np.array([1, 0, 0, 1])
    assert M.accuracy(scores, target) == pytest.approx(0.5)
    assert M.accuracy(np.array([1, 0, 0, 1]), target) == 1.0
    with pytest.raises(ValueError, match="3 predictions but 4 targets"):
        M.accuracy(scores[:3], target)


def test_top_k_accuracy() -> None:
    scores = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3]])
    target = np.array([1, 0, 2])
    assert M.top_k_accuracy(scores, target, k=1) == 0.0
    # top-2 per row: {0, 1} holds 1; {2, 1} misses 0; {1, 2} holds 2
    assert M.top_k_accuracy(scores, target, k=2) == pytest.approx(2 / 3)
    assert M.top_k_accuracy(scores, target, k=3) == 1.0
    assert M.top_k_accuracy(scores, target, k=10) == 1.0  # k above K means every class


def test_mae() -> None:
    assert M.mae(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.5, 2.0], [2.0, 4.0]])) == pytest.approx(0.375)
    with pytest.raises(ValueError, match="shape"):
        M.mae(np.zeros((2, 2)), np.zeros(4))


def test_angular_error() -> None:
    a = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 1.0, 0.0]])
    b = np.array([[0.0, 1.0, 0.0], [0.0, 5.0, 0.0], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(M.angular_error_deg(a, b), [90.0, 0.0, 45.0], atol=1e-6)
    assert M.mean_angular_error_deg(a, b) == pytest.approx(45.0)
    assert M.angular_error_deg(a, -a).max() == pytest.approx(180.0)


def test_miou_matches_the_confusion_matrix_by_hand() -> None:
    target = np.array([[[0, 0], [1, 255]]])
    pred = np.array([[[0, 1], [1, 0]]])  # the ignored pixel's prediction counts nowhere
    # class 0: TP 1, FP 0, FN 1 -> 1/2; class 1: TP 1, FP 1, FN 0 -> 1/2
    assert M.miou(pred, target, num_classes=2) == pytest.approx(0.5)
    scores = np.stack([pred == 0, pred == 1], axis=1).astype(np.float32)  # [N, K, H, W]
    assert M.miou(scores, target, num_classes=2) == pytest.approx(0.5)


def test_binary_iou_and_f_score() -> None:
    pred = np.array([[1, 1, 0, 0]], dtype=float)
    target = np.array([[1, 0, 1, 0]], dtype=float)
    assert M.binary_iou(pred, target) == pytest.approx(1 / 3)
    # precision 1/2, recall 1/2 -> F1 1/2; F2 = 5 PR / (4P + R) = 1/2 too (P = R)
    assert M.binary_f_score(pred, target) == pytest.approx(0.5)
    pred2 = np.array([[1, 0, 0, 0]], dtype=float)  # precision 1, recall 1/2
    assert M.binary_f_score(pred2, target) == pytest.approx(2 / 3)
    assert M.binary_f_score(pred2, target, beta=2.0) == pytest.approx(5 * 0.5 / (4 + 0.5))
    empty = np.zeros((1, 4))
    assert M.binary_iou(empty, empty) == 1.0 and M.binary_f_score(empty, empty) == 1.0
    assert M.binary_f_score(empty, target) == 0.0


def test_ready_metrics_have_a_direction() -> None:
    for name in M.METRIC_NAMES:
        m = M.ready_metric(name, num_classes=3)
        assert m.spec.name == name
        assert m.spec.lower_is_better == (name in ("mae", "angular_error_deg"))
    logits = np.array([[[[5.0, -5.0]]]])  # one-channel map: sigmoid > 0.5 on the first pixel
    assert M.ready_metric("iou").fn(logits, np.array([[[1, 0]]])) == 1.0
    with pytest.raises(UnknownNameError, match="Did you mean 'accuracy'"):
        M.ready_metric("acuracy")
