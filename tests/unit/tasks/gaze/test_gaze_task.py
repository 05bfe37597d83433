"""Gaze task: generator determinism and labels, split disjointness, models, metric, recipe, ONNX."""

from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.tasks.gaze import GazeTaskConfig, models, synth
from edgekd.tasks.gaze.config import GazeModelConfig
from edgekd.tasks.gaze.metric import angles_to_vector, angular_error_deg, vector_to_angles
from edgekd.tasks.gaze.task import GazeTask, balanced_gaze

SMALL = GazeTaskConfig(train_size=32, val_size=8, test_size=12, train_wearers=4, val_wearers=2, test_wearers=3)


def _pupil_centre(img: np.ndarray) -> np.ndarray:
    """Centroid of the darkest pixels (the pupil), (x, y)."""
    thr = np.percentile(img, 1.5)
    ys, xs = np.nonzero(img <= thr)
    return np.array([xs.mean(), ys.mean()])


def test_same_seed_same_images_and_other_seed_differs() -> None:
    ids = np.array([0, 1, 2, 0])
    a = synth.generate(SMALL, ids, seed=3, stream=1)
    b = synth.generate(SMALL, ids, seed=3, stream=1)
    c = synth.generate(SMALL, ids, seed=4, stream=1)
    assert a.images.shape == (4, 1, 64, 96) and a.images.dtype == np.uint8
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.gaze, b.gaze)
    assert np.abs(a.images.astype(int) - c.images.astype(int)).mean() > 5


def test_pupil_moves_with_yaw_and_pitch() -> None:
    clean = SMALL.model_copy(update={"noise": 0.0})
    gaze = np.array([[0.0, 0.0], [20.0, 0.0], [-20.0, 0.0], [0.0, 15.0], [0.0, -15.0]])
    a = synth.generate(clean, np.zeros(5, dtype=np.int64), seed=0, stream=9, gaze_deg=gaze)
    c = [_pupil_centre(a.images[i, 0].astype(float)) for i in range(5)]
    # edgekd convention: +yaw -> image left (x decreases); +pitch -> up (y decreases)
    assert c[1][0] < c[0][0] - 3 and c[2][0] > c[0][0] + 3
    assert c[3][1] < c[0][1] - 2 and c[4][1] > c[0][1] + 2
    # the label is the visual axis; the image shows the optical axis = visual - kappa
    kap = synth.wearer_params(np.array([0]), clean, 0)
    np.testing.assert_allclose(a.optical, gaze - np.array([kap["kappa_h"][0], kap["kappa_v"][0]]), atol=1e-4)


def test_kappa_statistics_over_wearers() -> None:
    p = synth.wearer_params(np.arange(400), GazeTaskConfig(), 0)
    assert abs(p["kappa_h"].mean() - 5.0) < 0.5 and abs(p["kappa_v"].mean() - 1.5) < 0.3
    assert 1.5 < p["kappa_h"].std() < 3.5


def test_splits_disjoint_wearers_and_images() -> None:
    task = GazeTask(SMALL, seed=0)
    w = {s: set(task.arrays(s).wearer.tolist()) for s in ("train", "val", "test")}
    assert not (w["train"] & w["val"]) and not (w["train"] & w["test"]) and not (w["val"] & w["test"])
    assert len(w["train"]) == 4 and len(w["test"]) == 3
    tr, te = task.arrays("train").images, task.arrays("test").images
    assert not any((tr == x).all(axis=(1, 2, 3)).any() for x in te)
    one = task.dataset("test_wearer_1")
    assert len(one) == 4 and set(one.arrays.wearer.tolist()) == {synth.WEARER_BASE["test"] + 1}
    item = task.dataset("train")[0]
    assert item["image"].shape == (1, 64, 96) and item["image"].dtype == torch.float32
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0


def test_unknown_split_suggests() -> None:
    from edgekd.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="Did you mean 'test'"):
        GazeTask(SMALL).dataset("tset")


def test_balanced_gaze_is_balanced_over_clusters() -> None:
    from edgekd.tasks.gaze.task import kmeans

    g = balanced_gaze(GazeTaskConfig(), 600, 15, seed=0)
    assert g.shape == (600, 2)
    nat = synth.sample_gaze(np.random.default_rng(0), 600, GazeTaskConfig())
    # balancing spreads the samples: more mass away from the centre than the natural distribution
    assert np.abs(g).mean() > np.abs(nat).mean()
    _, lab = kmeans(g, 15, 0)
    assert np.bincount(lab, minlength=15).min() > 0


def test_parameter_counts() -> None:
    cfg = GazeModelConfig()
    t = models.build_teacher(cfg)
    s = models.build_student(cfg, t)
    print("teacher", models.param_count(t), "student", models.param_count(s))
    assert models.param_count(t) == 3_577_182
    assert models.param_count(s) == 279_732
    assert 9 < models.param_count(t) / models.param_count(s) < 15
    for a, b in zip(t.stages[0].state_dict().values(), s.stages[0].state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_adapters_start_as_identity() -> None:
    torch.manual_seed(0)
    with_a = models.GazeNet((8, 8, 8, 8), (1, 1, 1, 1), adapters=True).eval()
    without = models.GazeNet((8, 8, 8, 8), (1, 1, 1, 1), adapters=False).eval()
    without.load_state_dict({k: v for k, v in with_a.state_dict().items() if ".adapter." not in k})
    x = torch.rand(2, 1, 64, 96)
    torch.testing.assert_close(with_a(x), without(x))


def test_metric_on_known_vectors() -> None:
    assert angular_error_deg(np.array([0.0, 0.0]), np.array([10.0, 0.0])) == pytest.approx(10.0, abs=1e-9)
    assert angular_error_deg(np.array([0.0, 0.0]), np.array([0.0, -7.0])) == pytest.approx(7.0, abs=1e-9)
    np.testing.assert_allclose(angles_to_vector(np.array([0.0, 0.0])), [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(angles_to_vector(np.array([90.0, 0.0])), [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(angles_to_vector(np.array([0.0, 90.0])), [0, -1, 0], atol=1e-12)
    ang = np.random.default_rng(0).uniform(-40, 40, (50, 2))
    np.testing.assert_allclose(vector_to_angles(angles_to_vector(ang)), ang, atol=1e-9)
    # 3-4-5: yaw 0, pitch p vs yaw y, pitch 0 is acos(cos p cos y)
    e = angular_error_deg(np.array([20.0, 0.0]), np.array([0.0, 20.0]))
    assert e == pytest.approx(np.rad2deg(np.arccos(np.cos(np.deg2rad(20)) ** 2)), abs=1e-9)


def test_task_evaluate_and_loss() -> None:
    task = GazeTask(SMALL, seed=0)
    truth = task.arrays("test").gaze

    def perfect(feeds: dict) -> list:  # a predict function that returns the labels in order
        perfect.i += len(feeds["image"])  # type: ignore[attr-defined]
        return [truth[perfect.i - len(feeds["image"]):perfect.i]]  # type: ignore[attr-defined]

    perfect.i = 0  # type: ignore[attr-defined]
    res = task.evaluate(perfect, "test", batch_size=5)
    assert res.metric == pytest.approx(0.0, abs=1e-6) and res.extras["n"] == 12
    assert len(res.extras["per_wearer_deg"]) == 3
    batch = {"gaze": torch.tensor([[10.0, 0.0]])}
    assert float(task.task_loss([torch.tensor([[10.0, 0.0]])], batch)) == pytest.approx(0.0)
    assert float(task.task_loss([torch.tensor([[20.0, 0.0]])], batch)) > 0.4


def test_recipe_loads_with_gaze_task() -> None:
    from edgekd.tasks.recipe import load_recipe

    r = load_recipe(Path(__file__).resolve().parents[4] / "recipes" / "gaze.yaml")
    assert r.task.kind == "gaze" and r.preset == "quick"
    assert r.task.train_size == 3000
    kinds = [lc.kind for lc in r.distill.losses]
    assert "regression" in kinds and "mae_feature" in kinds


def test_student_onnx_export_runs_in_onnxruntime(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    cfg = GazeModelConfig()
    s = models.build_student(cfg).eval()
    for m in s.modules():  # non-trivial adapters and GRN so their export is exercised
        if isinstance(m, models.Adapter):
            torch.nn.init.normal_(m.up.weight, std=0.05)
        if isinstance(m, models.GRN):
            torch.nn.init.normal_(m.gamma, std=0.1)
    x = torch.rand(3, 1, 64, 96)
    path = tmp_path / "student.onnx"
    torch.onnx.export(s, (x,), str(path), input_names=["image"], output_names=["gaze"], opset_version=17,
                      dynamic_axes={"image": {0: "batch"}, "gaze": {0: "batch"}}, dynamo=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        ref = s(x).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-3)


def test_label_fraction_marks_a_seeded_share_and_masks_the_task_loss() -> None:
    task = GazeTask(SMALL.model_copy(update={"label_fraction": 0.25}), seed=0)
    ds = task.dataset("train")
    labelled = torch.stack([ds[i]["labelled"] for i in range(len(ds))])
    assert int(labelled.sum()) == 8 and len(ds) == 32
    again = GazeTask(SMALL.model_copy(update={"label_fraction": 0.25}), seed=0).dataset("train")
    assert torch.equal(labelled, torch.stack([again[i]["labelled"] for i in range(len(again))]))
    assert all(float(task.dataset("val")[i]["labelled"]) == 1.0 for i in range(4)), "eval splits are labelled"
    batch = {"gaze": torch.tensor([[10.0, 0.0], [0.0, 0.0]]), "labelled": torch.tensor([1.0, 0.0])}
    wrong_on_unlabelled = [torch.tensor([[10.0, 0.0], [50.0, 50.0]])]
    assert float(task.task_loss(wrong_on_unlabelled, batch)) == pytest.approx(0.0, abs=1e-7)
    wrong_on_labelled = [torch.tensor([[20.0, 0.0], [0.0, 0.0]])]
    full = GazeTask(SMALL, seed=0).task_loss(wrong_on_labelled, {"gaze": batch["gaze"][:1]})
    assert float(task.task_loss(wrong_on_labelled, batch)) == pytest.approx(float(full) * 1.0, rel=1e-6)
    none = {"gaze": batch["gaze"], "labelled": torch.zeros(2)}
    assert float(task.task_loss(wrong_on_labelled, none)) == 0.0
