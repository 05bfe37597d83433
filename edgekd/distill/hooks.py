"""Feature capture by module path, with forward hooks.

A recipe names ``student: backbone.stage3`` and ``teacher: backbone.stage3``; neither
model's code changes (the torchdistill habit). A path that does not exist is a
ConfigError that lists the nearest existing paths.

A hooked module whose output is a tuple or list contributes its first tensor (e.g. an
LSTM's output sequence): that is the feature every loss in the library expects.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from edgekd.errors import ConfigError


def module_paths(model: nn.Module) -> list[str]:
    """Every named sub-module path of ``model`` (the root, '', excluded)."""
    return [name for name, _ in model.named_modules() if name]


def nearest_paths(path: str, known: Iterable[str], n: int = 5) -> list[str]:
    known_l = list(known)
    near = difflib.get_close_matches(path, known_l, n=n, cutoff=0.3)
    if not near:
        # Fall back to paths sharing the last component, then to the first few.
        tail = path.rsplit(".", 1)[-1]
        near = [k for k in known_l if k.rsplit(".", 1)[-1] == tail][:n] or known_l[:n]
    return near


def tap_error(role: str, path: str, known: Iterable[str], why: str = "no such module") -> ConfigError:
    known_l = list(known)
    near = nearest_paths(path, known_l)
    return ConfigError(
        f"{role} tap {path!r}: {why}.",
        [f"nearest existing module paths: {', '.join(near) if near else '(the model has no sub-modules)'}"],
        hint=f"set the loss's {role} path to one of the {len(known_l)} module paths of the {role} "
        f"(print them with edgekd.distill.hooks.module_paths(model))",
    )


def resolve_module(model: nn.Module, path: str, role: str = "student") -> nn.Module:
    """The sub-module at ``path``, or a ConfigError naming the nearest paths."""
    modules = dict(model.named_modules())
    if not path or path not in modules:
        raise tap_error(role, path, module_paths(model))
    return modules[path]


def first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for v in value:
            t = first_tensor(v)
            if t is not None:
                return t
    return None


class FeatureTaps:
    """Forward hooks on named module paths; ``features`` holds the latest output of each.

    Use as a context manager or call :meth:`remove`. ``clear()`` before each forward so a
    feature from a previous batch can never leak into the next step.
    """

    def __init__(self, model: nn.Module, paths: Iterable[str], role: str = "student") -> None:
        self.role = role
        self.paths = tuple(dict.fromkeys(paths))
        self.features: dict[str, torch.Tensor] = {}
        self._handles: list[Any] = []
        for path in self.paths:
            module = resolve_module(model, path, role)
            self._handles.append(module.register_forward_hook(self._hook(path)))

    def _hook(self, path: str) -> Any:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            t = first_tensor(output)
            if t is not None:
                self.features[path] = t

        return hook

    def clear(self) -> None:
        self.features = {}

    def take(self) -> dict[str, torch.Tensor]:
        """The captured features (checked complete), and clear for the next forward."""
        missing = [p for p in self.paths if p not in self.features]
        if missing:
            raise ConfigError(
                f"{self.role} tap(s) {missing} produced no tensor in the forward pass",
                hint="tap a module that is called in forward() and returns a tensor",
            )
        feats, self.features = self.features, {}
        return feats

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> FeatureTaps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class ShapeMap(Mapping[str, torch.Size]):
    """Tap shapes by module path for a TapProbe; a miss is a ConfigError with the nearest paths,
    so a loss factory that looks up a misspelt path fails with a useful message."""

    def __init__(self, role: str, shapes: Mapping[str, torch.Size], known: Iterable[str],
                 why: str = "no such module") -> None:
        self.role = role
        self._shapes = dict(shapes)
        self._known = list(known)
        self._why = why

    def __getitem__(self, path: str) -> torch.Size:
        try:
            return self._shapes[path]
        except KeyError:
            if path in self._known:
                raise tap_error(self.role, path, self._known, "this module returned no tensor") from None
            raise tap_error(self.role, path, self._known, self._why) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._shapes)

    def __len__(self) -> int:
        return len(self._shapes)


def probe_all_shapes(model: nn.Module, run: Any) -> dict[str, torch.Size]:
    """Shapes of every sub-module's output on one forward ``run()`` (hooks removed after)."""
    shapes: dict[str, torch.Size] = {}
    handles = []
    for name, module in model.named_modules():
        if not name:
            continue

        def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
            t = first_tensor(out)
            if t is not None and name not in shapes:
                shapes[name] = t.shape

        handles.append(module.register_forward_hook(hook))
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return shapes
