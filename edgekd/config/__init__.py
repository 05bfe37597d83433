"""Recipe and device configuration: pydantic models, YAML loading, ``--set`` overrides."""

from edgekd.config.device import Budget, DeviceConfig, list_devices, load_device
from edgekd.config.recipe import (
    LossConfigBase,
    RecipeBase,
    TaskConfigBase,
    TrainConfig,
    load_recipe_as,
    recipe_hash,
)

__all__ = [
    "Budget", "DeviceConfig", "LossConfigBase", "RecipeBase", "TaskConfigBase", "TrainConfig",
    "list_devices", "load_device", "load_recipe_as", "recipe_hash",
]
