"""The Task protocol: registration, datasets, the masked task loss, closed-loop evaluate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekd.errors import UnknownNameError
from edgekd.paths import recipes_dir
from edgekd.tasks import build_task
from edgekd.tasks.base import torch_predict
from edgekd.tasks.drone.config import DroneTaskConfig
from edgekd.tasks.drone.task import DroneTask
from edgekd.tasks.drone.teacher import IBVSTeacher, controller_predict
from edgekd.tasks.recipe import load_recipe


def test_recipe_builds_the_drone_task_with_every_preset() -> None:
    path = recipes_dir() / "drone.yaml"
    for preset in ("quick", "smoke", "full"):
        r = load_recipe(path, preset=preset)
        task = build_task(r.task, r.seed)
        assert isinstance(task, DroneTask) and r.teacher.source == "analytic"
    spec = task.io_spec()
    assert spec.input_names == ["image"] and spec.output_names == ["command"]
    assert spec.inputs[0].shape == ("batch", 3, 128, 128) and spec.outputs[0].shape == ("batch", 3)


def test_datasets_items_and_label_fraction(tiny: DroneTaskConfig) -> None:
    task = DroneTask(tiny.model_copy(update={"label_fraction": 0.25}), seed=0)
    train = task.dataset("train")
    assert len(train) == tiny.train_episodes * tiny.episode_steps
    item = train[0]
    assert set(item) == {"image", "command", "labelled"}
    assert item["image"].shape == (3, 48, 48) and item["image"].dtype == torch.float32
    labelled = torch.stack([train[i]["labelled"] for i in range(len(train))])
    assert int(labelled.sum()) == round(0.25 * len(train))
    test = task.dataset("test")
    assert len(test) == tiny.val_frames and all(float(test[i]["labelled"]) == 1.0 for i in range(len(test)))
    # test frames are unaugmented, and their labels are the teacher's commands for them
    imgs = torch.stack([test[i]["image"] for i in range(4)])
    np.testing.assert_allclose(IBVSTeacher(tiny)(imgs).numpy(), torch.stack([test[i]["command"] for i in range(4)]),
                               atol=1e-6)
    with pytest.raises(UnknownNameError, match="drone split"):
        task.dataset("tset")


def test_task_loss_ignores_unlabelled_frames_and_has_gradients(tiny: DroneTaskConfig) -> None:
    task = DroneTask(tiny.model_copy(update={"loss": "l1"}))
    pred = torch.zeros(4, 3, requires_grad=True)
    batch = {"command": torch.tensor([[0.3, 0.0, 0.0], [9.0, 9.0, 9.0], [0.0, -0.6, 0.0], [9.0, 9.0, 9.0]]),
             "labelled": torch.tensor([1.0, 0.0, 1.0, 0.0])}
    loss = task.task_loss([pred], batch)
    torch.testing.assert_close(loss, torch.tensor(0.9 / 6))
    loss.backward()
    assert pred.grad is not None and bool((pred.grad[1] == 0).all())
    none = task.task_loss([pred], {**batch, "labelled": torch.zeros(4)})
    assert float(none.detach()) == 0.0 and none.requires_grad


def test_evaluate_scores_teacher_above_an_untrained_student(tiny: DroneTaskConfig) -> None:
    task = DroneTask(tiny)
    t = task.evaluate(controller_predict(task.build_teacher()), split="val")
    s = task.evaluate(torch_predict(task.build_student(), task.io_spec()), split="val")
    assert t.extras["success_rate"] == 1.0 and s.extras["success_rate"] == 0.0
    assert t.metric > s.metric
    assert {"final_error_px", "iou_last", "time_to_success_s", "path_length_m", "per_episode"} <= set(t.extras)
    with pytest.raises(UnknownNameError):
        task.evaluate(controller_predict(task.build_teacher()), split="train")
