"""PyTorch eager backend: the reference every exported artifact is compared with.

Two ways in:
- ``RUNTIME.load(path, options)`` with an edgekd run folder (``manifest.json`` + ``student_kd.safetensors``)
  or one of the ``.safetensors`` files inside it: the task is rebuilt from the recipe in the manifest,
  the student built and its weights loaded (never a pickle).
- ``from_module(module, spec, options)`` for an in-memory ``nn.Module`` (parity checks, profiling the
  student as trained).

``torch.set_num_threads`` is process-wide: setting threads for one torch session sets it for all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError, ProfileError
from edgekd.iospec import IOSpec, TensorSpec
from edgekd.runtime.base import SessionOptions, check_feeds


class TorchSession:
    """An ``nn.Module`` in eval mode behind the Session protocol."""

    def __init__(self, module: Any, spec: IOSpec, options: SessionOptions, label: str) -> None:
        import torch

        self._torch = torch
        self.module = module.eval()
        self.spec = spec
        self.options = options
        self.label = label
        dev = options.device.lower()
        if dev not in ("cpu",) and not dev.startswith("cuda"):
            raise ConfigError(f"torch: device {options.device!r} is not supported", hint="use cpu or cuda[:N]")
        if dev.startswith("cuda") and not torch.cuda.is_available():
            from edgekd.errors import BackendUnavailableError

            raise BackendUnavailableError(f"torch: device {options.device!r} requested but no CUDA GPU is visible",
                                          hint="use --device cpu")
        self.device = torch.device(dev)
        self.module.to(self.device)
        if options.threads is not None:
            if options.threads < 1:
                raise ConfigError(f"threads={options.threads}: must be >= 1 (or unset for the runtime default)")
            torch.set_num_threads(int(options.threads))

    @property
    def inputs(self) -> Sequence[TensorSpec]:
        return self.spec.inputs

    @property
    def outputs(self) -> Sequence[TensorSpec]:
        return self.spec.outputs

    def check(self, feeds: Mapping[str, np.ndarray]) -> None:
        check_feeds(feeds, self.spec.inputs, self.label)

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        torch = self._torch
        self.check(feeds)
        args = [torch.from_numpy(np.ascontiguousarray(feeds[t.name])).to(self.device) for t in self.spec.inputs]
        with torch.inference_mode():
            out = self.module(*args)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return [o.detach().cpu().numpy() for o in outs]

    def settings(self) -> dict[str, Any]:
        torch = self._torch
        return {"name": "torch", "version": torch.__version__, "threads": torch.get_num_threads(),
                "device": str(self.device), "precision": "fp32", "mode": "eager"}


def from_module(module: Any, spec: IOSpec, options: SessionOptions | None = None,
                label: str | None = None) -> TorchSession:
    """A Session over an in-memory module (eval mode, inference_mode)."""
    return TorchSession(module, spec, options or SessionOptions(), label or type(module).__name__)


class TorchEagerRuntime:
    name = "torch"

    def available(self) -> tuple[bool, str]:
        import torch

        return True, torch.__version__

    def load(self, artifact: Path, options: SessionOptions) -> TorchSession:
        path = Path(artifact)
        if not path.exists():
            raise ProfileError(f"torch: {str(path)!r} does not exist",
                               hint="give an edgekd run folder (with manifest.json) or its .safetensors file")
        weights = None
        run_dir = path
        if path.is_file():
            if path.suffix != ".safetensors":
                raise ProfileError(f"torch: {path.name} is not an edgekd checkpoint (.safetensors in a run folder)",
                                   hint="the torch runtime loads a run folder or its student_*.safetensors; "
                                        "profile .onnx files with --runtime onnxruntime")
            run_dir, weights = path.parent, path.name
        if _RUN_LOADER is None:
            raise ProfileError("torch: no run-folder loader is installed in this process",
                               hint="import edgekd.tasks.run_student (the CLI does) before loading a run folder")
        module, spec, weights_path = _RUN_LOADER(run_dir, weights)
        return TorchSession(module, spec, options, f"{run_dir.name}/{weights_path.name}")


# Rebuilding a run's student needs its task (a higher layer). The tasks layer installs the loader when it is
# imported, so this runtime stays below it: (run folder, weights file name or None) -> (module, spec, weights).
RunLoader = Callable[[Path, "str | None"], "tuple[Any, IOSpec, Path]"]
_RUN_LOADER: RunLoader | None = None


def set_run_loader(loader: RunLoader) -> None:
    """Install the function that rebuilds a run folder's student (``edgekd.tasks.run_student`` does)."""
    global _RUN_LOADER
    _RUN_LOADER = loader


RUNTIME = TorchEagerRuntime()
