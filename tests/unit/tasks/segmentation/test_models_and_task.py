"""Segmentation models (shapes, output stride, taps, LAD paths), task splits and items, metric plumbing,
config validation, GKD two-stage freezing, and ONNX export of the student."""

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from edgekd.config.recipe import TrainConfig
from edgekd.errors import UnknownNameError
from edgekd.tasks.segmentation import SegmentationTaskConfig
from edgekd.tasks.segmentation.config import SegModelConfig
from edgekd.tasks.segmentation.lad import LADTeacher
from edgekd.tasks.segmentation.models import DeepLabTeacher, MobileNetV2Student, macs, param_count
from edgekd.tasks.segmentation.task import SegmentationTask, make_hint

TINY = SegModelConfig(teacher_widths=(8, 8, 16, 16), teacher_aspp=16, student_aspp=8, student_width=0.5)
SMALL = SegmentationTaskConfig(height=32, width=64, train_size=6, val_size=2, test_size=3, model=TINY)


def test_default_models_shapes_sizes_and_output_stride() -> None:
    cfg = SegModelConfig()
    t, s = DeepLabTeacher(8, cfg).eval(), MobileNetV2Student(8, cfg).eval()
    x = torch.rand(2, 3, 48, 96)
    feats: dict[str, torch.Size] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, o, k=k: feats.__setitem__(k, o.shape))
             for k, m in (("t_aspp", t.aspp), ("t_cls", t.classifier), ("s_aspp", s.aspp), ("s_cls", s.classifier))]
    with torch.no_grad():
        assert t(x).shape == (2, 8, 48, 96) and s(x).shape == (2, 8, 48, 96)
    for h in hooks:
        h.remove()
    # output stride 8 in both, so stride-8 logits/ASPP features line up for CWD/ACAM
    assert feats["t_cls"] == feats["s_cls"] == (2, 8, 6, 12)
    assert feats["t_aspp"][2:] == feats["s_aspp"][2:] == (6, 12)
    assert param_count(t) > 10 * param_count(s)
    assert macs(t, 48, 96) > 8 * macs(s, 48, 96)


def test_teacher_hint_channel_and_lad_dual_path() -> None:
    torch.manual_seed(0)
    net = DeepLabTeacher(8, TINY).eval()
    x = torch.rand(2, 3, 32, 64)
    with torch.no_grad():
        zero = net(x)
        np.testing.assert_allclose(net(x, torch.zeros(2, 1, 32, 64)).numpy(), zero.numpy(), atol=1e-6)
        assert (net(x, torch.ones(2, 1, 32, 64)) - zero).abs().max() > 1e-4
    lad = LADTeacher(net, dual_path=True).train()
    out = lad(x, torch.ones(2, 1, 32, 64))
    assert isinstance(out, tuple) and len(out) == 2 and out[0].shape == out[1].shape == (2, 8, 32, 64)
    lad.eval()
    assert isinstance(lad(x), torch.Tensor)


def test_make_hint_encodes_classes_noise_and_ignore() -> None:
    torch.manual_seed(0)
    lab = torch.full((40, 40), 3, dtype=torch.long)
    lab[0] = 255
    h = make_hint(lab, 8, noise=0.0)
    assert h.shape == (1, 40, 40)
    assert torch.all(h[0, 0] == 0) and torch.allclose(h[0, 1:], torch.full((39, 40), 4 / 8))
    noisy = make_hint(lab, 8, noise=0.5)
    changed = (noisy[0, 1:] != 4 / 8).float().mean().item()
    assert 0.35 < changed < 0.5  # half re-drawn, 1/8 of those land on the same class


def test_task_items_splits_and_perfect_predictor() -> None:
    task = SegmentationTask(SMALL, seed=0)
    assert task.splits() == ["train", "val", "test", "test_fog", "test_night", "test_rain"]
    assert task.eval_splits() == ["test_fog", "test_night", "test_rain"]
    item = task.dataset("train")[0]
    assert set(item) == {"image", "label", "valid"}
    assert item["image"].shape == (3, 32, 64) and item["image"].dtype == torch.float32
    assert item["label"].dtype == torch.int64
    torch.testing.assert_close(item["valid"], (item["label"] != 255).float())
    np.testing.assert_array_equal(task.arrays("test_night").labels, task.arrays("test").labels)
    assert not np.array_equal(task.arrays("test_night").images, task.arrays("test").images)
    # train, val and test are different scenes
    assert not np.array_equal(task.arrays("train").images[0], task.arrays("test").images[0])
    with pytest.raises(UnknownNameError, match="test_snow"):
        task.dataset("test_snow")

    labels = task.arrays("test").labels

    def perfect(feeds: dict) -> list[np.ndarray]:
        n = len(feeds["image"])
        lab = labels[perfect.i: perfect.i + n].astype(np.int64)  # type: ignore[attr-defined]
        perfect.i += n  # type: ignore[attr-defined]
        logits = np.zeros((n, 8, 32, 64), np.float32)
        np.put_along_axis(logits, np.where(lab == 255, 0, lab)[:, None], 1.0, axis=1)
        return [logits]

    perfect.i = 0  # type: ignore[attr-defined]
    res = task.evaluate(perfect, "test", batch_size=2)
    assert res.metric == pytest.approx(1.0)
    assert res.extras["pixel_accuracy"] == pytest.approx(1.0)
    assert set(res.extras["per_class_iou"]) == {"road", "sidewalk", "building", "vegetation", "sky", "car",
                                                "person", "pole"}


def test_task_loss_ignores_255_and_lad_items() -> None:
    task = SegmentationTask(SMALL.model_copy(update={"lad": SMALL.lad.model_copy(update={"enabled": True})}), 0)
    item = task.dataset("train")[0]
    assert item["hint"].shape == (1, 32, 64)
    assert "hint" not in task.dataset("test")[0]
    assert task.teacher_input_names == ("image", "hint")
    assert isinstance(task.build_teacher(), LADTeacher)
    logits = torch.zeros(1, 8, 2, 2, requires_grad=True)
    batch = {"label": torch.tensor([[[0, 255], [255, 255]]])}
    loss = task.task_loss((logits,), batch)
    assert loss.item() == pytest.approx(np.log(8), rel=1e-5)  # one counted pixel, uniform logits
    two = task.teacher_task_loss((logits, logits * 0), batch)
    assert two.item() == pytest.approx(np.log(8), rel=1e-5)  # equal paths: no consistency penalty
    other = torch.zeros(1, 8, 2, 2)
    other[:, 0] = 100.0  # a confident second path: CE 0 on the counted pixel, probabilities far apart
    p = torch.full((8,), 1 / 8)
    q = torch.zeros(8)
    q[0] = 1.0
    expected = 0.5 * np.log(8) + 1.0 * float(((p - q) ** 2).sum())
    assert task.teacher_task_loss((logits, other), batch).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("update, field", [({"height": 30}, "task.height=30"),
                                          ({"source": "cityscapes"}, "task.root"),
                                          ({"shifts": ["fog", "fog"]}, "task.shifts")])
def test_config_errors_name_the_field(update: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field.replace(".", r"\.").replace("[", r"\[")):
        SegmentationTaskConfig(**{**SMALL.model_dump(), **update})


def test_gkd_two_stage_freezes_the_encoder_in_stage_two() -> None:
    from edgekd.tasks.segmentation.gkd import two_stage_fit

    task = SegmentationTask(SMALL, seed=0)
    teacher = task.build_teacher().eval()
    before = task.build_student().state_dict()
    cfg = TrainConfig(epochs=2, batch_size=3, lr=1e-2, max_steps_per_epoch=1)
    student = two_stage_fit(task, teacher, cfg, seed=0)
    after = student.state_dict()
    changed = {k for k in before if k.startswith(("features", "aspp", "classifier")) and
               before[k].dtype.is_floating_point and not torch.equal(before[k], after[k])}
    # stage 1 (features) moved the encoder; stage 2 trained the head; every parameter is trainable again
    assert any(k.startswith("features") for k in changed)
    assert any(k.startswith("classifier") for k in changed)
    assert all(p.requires_grad for p in student.parameters())


@pytest.mark.slow
def test_student_exports_to_onnx_with_argmax_parity(tmp_path: Path) -> None:
    from edgekd.export.onnx import export_onnx
    from edgekd.export.parity import check_parity
    from edgekd.runtime import SessionOptions, get_runtime
    from edgekd.runtime.predict import session_predict
    from edgekd.tasks.base import torch_predict

    task = SegmentationTask(SMALL, seed=0)
    student = task.build_student().eval()
    path = tmp_path / "s.onnx"
    export_onnx(student, task.io_spec(), path)
    feeds = [{"image": task.arrays("test").images[:2].astype(np.float32) / 255}]
    rep = check_parity(torch_predict(student, task.io_spec()),
                       session_predict(get_runtime("onnxruntime").load(path, SessionOptions(threads=1))), feeds,
                       output_names=["logits"], compare="argmax", min_agreement=0.999)
    assert rep.passed


def test_lad_teacher_trains_dual_path_and_distils_with_the_hint() -> None:
    from edgekd.distill.loop import fit
    from edgekd.distill.losses.lad import LADLossConfig

    cfg = SMALL.model_copy(update={"lad": SMALL.lad.model_copy(update={"enabled": True})})
    task = SegmentationTask(cfg, seed=0)
    train = TrainConfig(epochs=1, batch_size=3, lr=1e-2, max_steps_per_epoch=2)
    teacher = fit(task.build_teacher(), train_set=task.dataset("train"), input_names=task.teacher_input_names,
                  cfg=train, task_loss=task.teacher_task_loss, progress=False).student
    calls: list[int] = []
    teacher.register_forward_hook(lambda _m, inputs, _o: calls.append(len(inputs)))
    res = fit(task.build_student(), train_set=task.dataset("train"), input_names=("image",), cfg=train,
              task_loss=task.task_loss, teacher=teacher, losses=[LADLossConfig()], progress=False)
    assert np.isfinite(res.history[-1]["train_lad"])
    # the 2 training steps ran the teacher with (image, hint); only the shape probes before them used the image alone
    assert calls[-2:] == [2, 2] and calls.count(2) == 2


@pytest.mark.slow
def test_dynamic_size_export_runs_at_other_sizes(tmp_path: Path) -> None:
    from edgekd.export.onnx import export_onnx
    from edgekd.runtime import SessionOptions, get_runtime

    task = SegmentationTask(SMALL.model_copy(update={"dynamic_size": True}), seed=0)
    spec = task.io_spec()
    assert spec.inputs[0].shape == ("batch", 3, "height", "width")
    student = task.build_student().eval()
    path = tmp_path / "dyn.onnx"
    export_onnx(student, spec, path, exporter="torchscript")
    sess = get_runtime("onnxruntime").load(path, SessionOptions(threads=1))
    for h, w in ((32, 64), (48, 80)):
        x = np.random.default_rng(0).uniform(0, 1, (1, 3, h, w)).astype(np.float32)
        out = sess.run({"image": x})[0]
        with torch.no_grad():
            ref = student(torch.from_numpy(x)).numpy()
        assert out.shape == (1, 8, h, w)
        np.testing.assert_allclose(out, ref, atol=1e-4, rtol=1e-3)
