"""The one way to run a model as a ``PredictFn`` (numpy feeds by name -> outputs in order).

Task metrics score every artifact through a PredictFn, so the very same code scores PyTorch, ONNX Runtime,
OpenVINO and TensorRT. torch is imported inside the torch helpers only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekd.feeds import as_feed_array
from edgekd.iospec import IOSpec
from edgekd.runtime.base import Session

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import Dataset

# numpy inputs by name -> outputs in io_spec order
PredictFn = Callable[[Mapping[str, np.ndarray]], Sequence[np.ndarray]]


def session_predict(session: Session) -> PredictFn:
    """``feeds by name -> outputs in session.outputs order``.

    Feeds are made C-contiguous; a floating feed is cast to the floating dtype the session declares
    (data loaders often yield float64). Any other mismatch (int vs float, shapes, names) is left to
    the session's input check, which reports it.
    """
    specs = {t.name: t for t in session.inputs}

    def predict(feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        ready: dict[str, np.ndarray] = {}
        for name, a in feeds.items():
            arr = as_feed_array(a)
            spec = specs.get(name)
            if spec is not None and arr.dtype != np.dtype(spec.dtype) and arr.dtype.kind == "f" \
                    and np.dtype(spec.dtype).kind == "f":
                arr = arr.astype(spec.dtype)
            ready[name] = arr
        return session.run(ready)

    return predict


def onnx_predict(path: str | Path, threads: int | None = None) -> PredictFn:
    """An ONNX file as a PredictFn, through the ONNX Runtime backend (CPU unless the runtime picks otherwise).

    The one way edgekd runs an ONNX file for metrics, parity and quantization accuracy, so every check sees
    the same session settings as the profiler.
    """
    from edgekd.runtime import get_runtime
    from edgekd.runtime.base import SessionOptions

    return session_predict(get_runtime("onnxruntime").load(Path(path), SessionOptions(threads=threads)))


def iterate_numpy(dataset: Dataset[dict[str, torch.Tensor]], names: Sequence[str],
                  batch_size: int) -> Iterator[tuple[dict[str, np.ndarray], dict[str, Any]]]:
    """Batches of (numpy model inputs by name, the full torch batch), for metric code."""
    from torch.utils.data import DataLoader

    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        yield {n: batch[n].numpy() for n in names}, batch


def torch_predict(model: nn.Module, spec: IOSpec, device: str = "cpu") -> PredictFn:
    """Wrap a torch module as a PredictFn (eval mode, no grad)."""
    import torch

    model.eval()

    @torch.no_grad()
    def predict(feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        args = [torch.from_numpy(np.ascontiguousarray(feeds[n])).to(device) for n in spec.input_names]
        out = model(*args)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return [o.detach().float().cpu().numpy() if o.is_floating_point() else o.cpu().numpy() for o in outs]

    return predict
