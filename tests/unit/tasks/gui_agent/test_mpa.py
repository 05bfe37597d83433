"""The MPA-style parity stage: the disparity filter, and fine-tuning that moves the student to the teacher."""

import numpy as np
import pytest
import torch

from edgekd.errors import ConfigError
from edgekd.tasks.gui_agent import tokens as T
from edgekd.tasks.gui_agent.config import GuiAgentTaskConfig
from edgekd.tasks.gui_agent.mpa import _answers, parity_align, select_disparity
from edgekd.tasks.gui_agent.task import GuiAgentTask


def test_select_disparity_rules() -> None:
    teacher = np.array([[0, 5, 5], [0, 5, 5], [3, 0, 0], [1, 9, 9], [0, 2, 2]])
    conf = np.array([0.9, 0.9, 0.9, 0.2, 0.9])
    student = np.array([[0, 6, 5], [0, 8, 5], [3, 20, 20], [0, 1, 1], [2, 2, 2]])
    sel = select_disparity(teacher, conf, student, threshold=0.5, bin_tolerance=1)
    # 0: within tolerance; 1: far; 2: both BACK (coordinates do not count); 3: teacher unsure; 4: action differs
    assert sel.tolist() == [False, True, False, False, True]
    with pytest.raises(ConfigError, match="threshold=1.5"):
        select_disparity(teacher, conf, student, threshold=1.5, bin_tolerance=1)


class _Oracle(torch.nn.Module):
    """A 'teacher' answering a fixed token triple with high confidence, whatever the input."""

    def __init__(self, answer: tuple[int, int, int], vocab: int) -> None:
        super().__init__()
        self.answer, self.vocab = answer, vocab

    def forward(self, image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        z = torch.zeros(len(image), 3, self.vocab)
        for pos, v in enumerate(self.answer):
            z[:, pos, v] = 20.0
        return z


def test_parity_align_moves_the_student_towards_confident_teacher(tiny_cfg: GuiAgentTaskConfig) -> None:
    torch.set_num_threads(1)
    task = GuiAgentTask(tiny_cfg.model_copy(update={"train_size": 40, "unlabelled_fraction": 0.5}), 0)
    teacher = _Oracle((T.TOGGLE, 3, 12), T.vocab_size(16))
    student = task.build_student()
    unl = task.dataset("unlabelled")
    names = task.io_spec().input_names
    before, _ = _answers(student, unl, names, 64)
    res = parity_align(student, teacher, unl, input_names=names, task_loss=task.task_loss, threshold=0.5,
                       epochs=15, lr=3e-3, batch_size=8)
    assert res.n_unlabelled == 20 and res.n_selected == int((before != [T.TOGGLE, 3, 12]).any(1).sum()) > 0
    after, _ = _answers(res.student, unl, names, 64)
    agree_before = (before == [T.TOGGLE, 3, 12]).all(1).mean()
    agree_after = (after == [T.TOGGLE, 3, 12]).all(1).mean()
    assert agree_after > max(0.5, agree_before)
    # an unsure teacher selects nothing and leaves the student as it was
    flat = _Oracle((0, 0, 0), T.vocab_size(16))
    flat.forward = lambda image, tokens: torch.zeros(len(image), 3, 16)  # type: ignore[method-assign]
    none = parity_align(task.build_student(), flat, unl, input_names=names, task_loss=task.task_loss)
    assert none.n_selected == 0 and none.filter_precision is None
