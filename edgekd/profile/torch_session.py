"""A Session over an in-memory torch module (eager, no file), for profiling the student as trained."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgekd.iospec import TensorSpec
from edgekd.runtime.base import SessionOptions, check_feeds


class ModuleSession:
    def __init__(self, module: Any, spec: Any, options: SessionOptions) -> None:
        import torch

        self._torch = torch
        self.module = module.eval()
        self.spec = spec
        self.options = options
        if options.threads:
            # torch's intra-op pool is process-wide: this also sets it for any other torch target.
            torch.set_num_threads(options.threads)

    @property
    def inputs(self) -> Sequence[TensorSpec]:
        return self.spec.inputs

    @property
    def outputs(self) -> Sequence[TensorSpec]:
        return self.spec.outputs

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            out = self.module(*[torch.from_numpy(np.asarray(feeds[t.name])) for t in self.spec.inputs])
        if isinstance(out, torch.Tensor):
            out = (out,)
        return [o.detach().cpu().numpy() for o in out]

    def check(self, feeds: Mapping[str, np.ndarray]) -> None:
        check_feeds(feeds, self.inputs, type(self.module).__name__)

    def settings(self) -> dict[str, Any]:
        torch = self._torch
        return {"name": "torch", "version": torch.__version__, "threads": torch.get_num_threads(),
                "device": "cpu", "precision": "fp32", "mode": "eager (in-memory module)"}
