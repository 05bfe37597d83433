"""The GUI-agent recipe domain (after LAMO, Switch-KD and MPA): rendered app screens and an
instruction -> [action, x-bin, y-bin]; click accuracy split by text and icon targets."""

from edgekd.tasks import TASKS
from edgekd.tasks.gui_agent.config import GuiAgentTaskConfig, GuiModelConfig
from edgekd.tasks.gui_agent.task import GuiAgentTask

TASKS.register(GuiAgentTaskConfig)(lambda cfg, seed: GuiAgentTask(cfg, seed))

__all__ = ["GuiAgentTask", "GuiAgentTaskConfig", "GuiModelConfig"]
