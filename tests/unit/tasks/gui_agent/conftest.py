"""Tiny GUI-agent configurations shared by the tests (64 px screens, very small models)."""

import pytest

from edgekd.tasks.gui_agent.config import GuiAgentTaskConfig, GuiModelConfig

TINY_MODEL = GuiModelConfig(teacher_vision=(8, 16, 16), teacher_fusion=16, teacher_context=16, teacher_blocks=2,
                            teacher_text_dim=16, student_vision=(8, 8, 8), student_fusion=8, student_context=8,
                            student_text_dim=16, student_embed_dim=8)


@pytest.fixture
def tiny_cfg() -> GuiAgentTaskConfig:
    return GuiAgentTaskConfig(image_size=64, render_size=128, n_bins=16, train_size=20, val_size=8, test_size=10,
                              model=TINY_MODEL)
