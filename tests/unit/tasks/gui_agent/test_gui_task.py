"""GUI-agent task: splits, labels and masks, loss, metric, models, lexicon, ONNX with two inputs."""

import numpy as np
import pytest
import torch

from edgekd.errors import ConfigError, UnknownNameError
from edgekd.tasks import TASKS, build_task
from edgekd.tasks.gui_agent import models
from edgekd.tasks.gui_agent import tokens as T
from edgekd.tasks.gui_agent.config import GuiAgentTaskConfig
from edgekd.tasks.gui_agent.metric import click_correct, summarize
from edgekd.tasks.gui_agent.render import ICON, NONE, TEXT
from edgekd.tasks.gui_agent.task import GuiAgentTask


def test_registered_and_io_spec(tiny_cfg: GuiAgentTaskConfig) -> None:
    task = build_task(tiny_cfg, seed=0)
    assert isinstance(task, GuiAgentTask) and callable(TASKS.get(tiny_cfg))  # get raises on a miss
    spec = task.io_spec()
    assert list(spec.input_names) == ["image", "tokens"] and list(spec.output_names) == ["logits"]
    assert task.eval_splits() == ["test_paraphrase", "test_clutter"]
    assert task.metric.name == "click_accuracy" and not task.metric.lower_is_better


def test_items_labels_and_unlabelled_share(tiny_cfg: GuiAgentTaskConfig) -> None:
    task = GuiAgentTask(tiny_cfg.model_copy(update={"train_size": 40}), seed=2)
    ds = task.dataset("train")
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert item["tokens"].shape == (8,) and item["target"].shape == (3,)
    lab = task.arrays("train").labelled
    assert lab.sum() == 28  # 30% of 40 unlabelled
    for i in range(len(ds)):
        it = ds[i]
        if lab[i]:
            assert int(it["target"][0]) == int(it["truth"][0])
        else:
            assert (it["target"] == T.IGNORE).all() and int(it["truth"][0]) in range(4)
    # unlabelled screens carry paraphrased instructions; labelled ones canonical
    paras = set(T.TEXT_LABELS.values()) | set(T.ICONS.values()) | {"press", "select", "choose", "enter", "write",
                                                                       "flip", "turn", "navigate", "previous"}
    arr = task.arrays("train")
    for i, text in enumerate(arr.instructions):
        has_para = bool(set(text.split()) & paras)
        assert has_para == (not lab[i]), text
    assert len(task.arrays("unlabelled")) == 12


def test_splits_deterministic_and_distinct(tiny_cfg: GuiAgentTaskConfig) -> None:
    a, b = GuiAgentTask(tiny_cfg, 0), GuiAgentTask(tiny_cfg, 0)
    np.testing.assert_array_equal(a.arrays("test").images, b.arrays("test").images)
    te, para = a.arrays("test"), a.arrays("test_paraphrase")
    assert not np.array_equal(te.images, para.images)
    other = GuiAgentTask(tiny_cfg, 1).arrays("test")
    assert np.abs(other.images.astype(int) - te.images.astype(int)).mean() > 3
    with pytest.raises(UnknownNameError, match="test_paraphrse"):
        a.arrays("test_paraphrse")


def test_metric_point_in_box_and_split_by_type() -> None:
    truth = np.array([[0, 5, 5], [0, 5, 5], [3, T.IGNORE, T.IGNORE], [1, 2, 2]])
    boxes = np.array([[18, 18, 26, 26], [18, 18, 26, 26], [0, 0, 0, 0], [0, 0, 4, 4]], dtype=np.float32)
    # bins of 4 px at 128 px / 32 bins: bin 5 -> centre 22; bin 7 -> 30 (outside); BACK needs the action only
    pred = np.array([[0, 5, 5], [0, 7, 5], [3, 0, 0], [0, 0, 0]])
    ok = click_correct(pred, truth, boxes, 128, 32)
    assert ok.tolist() == [True, False, True, False]  # last: right point, wrong action (CLICK for TYPE)
    s = summarize(ok, np.array([TEXT, ICON, NONE, TEXT]), pred, truth)
    assert s["click_accuracy"] == pytest.approx(0.5) and s["text_accuracy"] == pytest.approx(0.5)
    assert s["icon_accuracy"] == 0.0 and s["back_accuracy"] == 1.0 and s["action_accuracy"] == pytest.approx(0.75)


def test_task_loss_ignores_unlabelled_and_back_coordinates(tiny_cfg: GuiAgentTaskConfig) -> None:
    task = GuiAgentTask(tiny_cfg.model_copy(update={"label_smoothing": 0.0}), 0)
    V = T.vocab_size(16)
    z = torch.randn(3, 3, V, generator=torch.Generator().manual_seed(0), requires_grad=True)
    target = torch.tensor([[1, 3, 4], [3, T.IGNORE, T.IGNORE], [T.IGNORE] * 3])
    loss = task.task_loss([z], {"target": target})
    ref = (torch.nn.functional.cross_entropy(z[0, 0, :4], target[0, 0], reduction="sum")
           + torch.nn.functional.cross_entropy(z[0, 1:, :16], target[0, 1:], reduction="sum")
           + torch.nn.functional.cross_entropy(z[1, 0, :4], target[1, 0], reduction="sum")) / 4
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    loss.backward()
    assert z.grad[2].abs().sum() == 0 and z.grad[1, 1:].abs().sum() == 0
    none = task.task_loss([z], {"target": torch.full((3, 3), T.IGNORE)})
    assert none.item() == 0.0 and none.requires_grad


def test_models_shapes_switch_entry_and_filler(tiny_cfg: GuiAgentTaskConfig) -> None:
    task = GuiAgentTask(tiny_cfg, 0)
    teacher, student = task.build_teacher().eval(), task.build_student().eval()
    x = torch.rand(2, 3, 64, 64)
    tok = torch.from_numpy(np.stack([T.tokenize("click settings", 8), T.tokenize("go back", 8)]))
    for m in (teacher, student):
        z = m(x, tok)
        assert z.shape == (2, 3, 16)
        torch.testing.assert_close(m.forward_from_visual(m.vision(x), x, tok), z)
        # filler entries sit 10 below the smallest action logit
        torch.testing.assert_close(z[:, 0, 4:], (z[:, 0, :4].min(1).values - 10.0)[:, None].expand(-1, 12))
    assert dict(teacher.named_modules())["vision"](x).shape[2:] == (8, 8)
    # the teacher's word vectors are frozen buffers, the student's a trainable embedding
    assert "text.lexicon" in dict(teacher.named_buffers())
    assert student.text.embed is not None and student.text.embed.weight.requires_grad


def test_default_sizes_teacher_larger_than_student() -> None:
    cfg = GuiAgentTaskConfig()
    t = models.build_teacher(cfg.model, 128, 32, models.synthetic_lexicon())
    s = models.build_student(cfg.model, 128, 32)
    assert 1_000_000 < models.param_count(t) < 5_000_000
    assert 150_000 < models.param_count(s) < 600_000


def test_synthetic_lexicon_puts_synonyms_together() -> None:
    lex = models.synthetic_lexicon()
    cos = lambda a, b: float(lex[T.WORD_ID[a]] @ lex[T.WORD_ID[b]])  # noqa: E731 (unit vectors)
    assert cos("settings", "preferences") > 0.9 and cos("gear", "cog") > 0.9 and cos("click", "press") > 0.9
    assert abs(cos("settings", "delete")) < 0.6
    assert np.allclose(lex[T.PAD], 0)


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="image_size=100"):
        GuiAgentTaskConfig(image_size=100)
    with pytest.raises(ValueError, match="n_bins=24"):
        GuiAgentTaskConfig(n_bins=24)
    with pytest.raises(ValueError, match="clutter_elements"):
        GuiAgentTaskConfig(clutter_elements=(9, 3))


def test_evaluate_with_an_oracle_and_bad_output(tiny_cfg: GuiAgentTaskConfig) -> None:
    task = GuiAgentTask(tiny_cfg, 0)
    arr = task.arrays("test")
    V = T.vocab_size(16)
    seen = {"i": 0}

    def oracle(feeds):
        n = len(feeds["image"])
        i0 = seen["i"]
        seen["i"] += n
        z = np.zeros((n, 3, V), dtype=np.float32)
        for k in range(n):
            t = arr.truth[i0 + k]
            z[k, 0, t[0]] = 5
            if t[0] != T.BACK:
                z[k, 1, t[1]] = 5
                z[k, 2, t[2]] = 5
        return [z]

    res = task.evaluate(oracle, "test", batch_size=4)
    assert res.metric == pytest.approx(1.0) and res.extras["n"] == 10
    with pytest.raises(ConfigError, match="expected \\[batch, 3"):
        task.evaluate(lambda feeds: [np.zeros((len(feeds["image"]), 5))], "test")


def test_onnx_two_named_inputs_dynamic_batch_and_int8(tiny_cfg: GuiAgentTaskConfig, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    from edgekd.export.onnx import export_onnx
    from edgekd.quantize.ort_static import quantize_onnx_static
    from edgekd.runtime import SessionOptions, get_runtime

    task = GuiAgentTask(tiny_cfg, 0)
    student = task.build_student().eval()
    res = export_onnx(student, task.io_spec(), tmp_path / "s.onnx", exporter="torchscript", simplify=False)
    assert res.input_names == ["image", "tokens"]
    sess = get_runtime("onnxruntime").load(res.path, SessionOptions(threads=1))
    ds = task.dataset("test")
    for n in (1, 3):
        feeds = {"image": np.stack([ds[i]["image"].numpy() for i in range(n)]),
                 "tokens": np.stack([ds[i]["tokens"].numpy() for i in range(n)])}
        out = sess.run(feeds)[0]
        ref = student(torch.from_numpy(feeds["image"]), torch.from_numpy(feeds["tokens"])).detach().numpy()
        np.testing.assert_allclose(out, ref, atol=1e-4, rtol=1e-4)
    calib = [{"image": ds[i]["image"].numpy()[None], "tokens": ds[i]["tokens"].numpy()[None]} for i in range(4)]
    q = quantize_onnx_static(res.path, tmp_path / "s.int8.onnx", calib)
    qs = get_runtime("onnxruntime").load(q.path if hasattr(q, "path") else tmp_path / "s.int8.onnx",
                                         SessionOptions(threads=1))
    assert qs.run(calib[0])[0].shape == (1, 3, 16)
