"""Saving and loading a module's weights as safetensors (never pickles), atomically."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from edgekd.errors import ConfigError
from edgekd.fileio import atomic_path


def save_module_weights(module: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    # safetensors refuses tensors that share storage; state_dict copies above break the sharing.
    state = {k: v.clone() for k, v in state.items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata or {})
    return Path(path)


def load_module_weights(module: nn.Module, path: str | Path, strict: bool = True) -> nn.Module:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"weights file {p} does not exist", hint="check the path, or train first")
    try:
        state = load_file(str(p))
    except (SafetensorError, OSError) as exc:
        raise ConfigError(f"{p}: not a readable safetensors file ({exc})") from None
    missing, unexpected = module.load_state_dict(state, strict=False)
    if strict and (missing or unexpected):
        raise ConfigError(
            f"{p}: weights do not fit {type(module).__name__}: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})",
            hint="the checkpoint was made for another model or task configuration")
    return module
