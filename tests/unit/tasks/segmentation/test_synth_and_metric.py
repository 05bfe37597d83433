"""Mini-city generator (determinism, classes, ignore borders), shifted domains, and the mIoU metric."""

import numpy as np
import pytest

from edgekd.errors import UnknownNameError
from edgekd.tasks.segmentation import synth
from edgekd.tasks.segmentation.metric import (
    confusion_matrix,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
    to_label_map,
)


def test_same_seed_same_scene_other_seed_differs() -> None:
    a = synth.generate(32, 64, 3, seed=5, stream=1)
    b = synth.generate(32, 64, 3, seed=5, stream=1)
    c = synth.generate(32, 64, 3, seed=6, stream=1)
    assert a.images.shape == (3, 3, 32, 64) and a.images.dtype == np.uint8
    assert a.labels.shape == (3, 32, 64) and a.labels.dtype == np.uint8
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert np.abs(a.images.astype(int) - c.images.astype(int)).mean() > 5
    # an image depends on its index only, not on how many were generated before it
    d = synth.generate(32, 64, 1, seed=5, stream=1, start=2)
    np.testing.assert_array_equal(d.images[0], a.images[2])


def test_classes_layout_and_ignore_on_borders() -> None:
    arr = synth.generate(48, 96, 12, seed=0, stream=3)
    lab = arr.labels
    present = set(np.unique(lab).tolist())
    assert present <= set(range(len(synth.CLASSES))) | {synth.IGNORE}
    # every class appears somewhere in a dozen scenes; sky on top rows, road at the bottom centre
    assert set(range(len(synth.CLASSES))) <= present
    assert (lab[:, 0] == synth.SKY).mean() > 0.5
    assert (lab[:, -1, 40:56] == synth.ROAD).mean() > 0.5
    ign = lab == synth.IGNORE
    assert 0.005 < ign.mean() < 0.2
    # ignored pixels sit on class borders: a 4-neighbour carries a different valid class or 255
    pad = np.pad(lab, ((0, 0), (1, 1), (1, 1)), mode="edge")
    centre = pad[:, 1:-1, 1:-1]
    neigh = np.stack([pad[:, :-2, 1:-1], pad[:, 2:, 1:-1], pad[:, 1:-1, :-2], pad[:, 1:-1, 2:]])
    differs = (neigh != centre[None]).any(0)
    assert differs[ign].mean() > 0.95


@pytest.mark.parametrize("kind", ["fog", "night", "rain"])
def test_shifts_change_images_deterministically(kind: str) -> None:
    arr = synth.generate(32, 64, 2, seed=0, stream=3)
    a = synth.apply_shift(arr.images, kind, seed=1)
    b = synth.apply_shift(arr.images, kind, seed=1)
    assert a.shape == arr.images.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - arr.images.astype(int)).mean() > 8
    if kind == "night":
        assert a.mean() < 0.6 * arr.images.mean()
    if kind == "fog":  # fog lowers contrast
        assert a.astype(float).std() < arr.images.astype(float).std()


def test_unknown_shift_names_the_allowed_ones() -> None:
    with pytest.raises(UnknownNameError, match="fog"):
        synth.apply_shift(np.zeros((1, 3, 8, 8), np.uint8), "snow", 0)


def test_confusion_matrix_ignores_255_and_golden_iou() -> None:
    label = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 0, 1]])
    cm = confusion_matrix(pred, label, 4)
    assert cm.sum() == 7  # the 255 pixel is not counted, whatever was predicted there
    np.testing.assert_array_equal(cm[:3, :3], [[1, 1, 0], [0, 3, 0], [1, 0, 1]])
    iou = iou_per_class(cm)
    # class 0: TP 1, FP 1, FN 1 -> 1/3; class 1: TP 3, FP 1 -> 3/4; class 2: TP 1, FN 1 -> 1/2; class 3 absent
    np.testing.assert_allclose(iou[:3], [1 / 3, 3 / 4, 1 / 2])
    assert np.isnan(iou[3])
    assert mean_iou(cm) == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert pixel_accuracy(cm) == pytest.approx(5 / 7)


def test_metric_is_dataset_level_not_per_image_mean() -> None:
    # image 1: class 0 right everywhere (4 px); image 2: class 1 wrong on 1 of 1 px (predicted 0)
    cm = confusion_matrix(np.array([0, 0, 0, 0]), np.array([0, 0, 0, 0]), 2) + \
        confusion_matrix(np.array([0]), np.array([1]), 2)
    assert mean_iou(cm) == pytest.approx((4 / 5 + 0.0) / 2)


def test_bad_labels_and_outputs_raise() -> None:
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([0]), np.array([7]), 3)
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([5]), np.array([0]), 3)
    with pytest.raises(ValueError, match="expected logits"):
        to_label_map(np.zeros((2, 3), np.float32))
    logits = np.zeros((1, 3, 2, 2), np.float32)
    logits[0, 2, 0, 1] = 1.0
    np.testing.assert_array_equal(to_label_map(logits), [[[0, 2], [0, 0]]])
