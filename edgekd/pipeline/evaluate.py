"""Scoring every variant with the task's own metric through a numpy predict function,
so PyTorch, analytic and runtime artifacts are judged by the same code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekd.tasks.base import PredictFn, torch_predict


def callable_predict(fn: Any, input_names: Sequence[str]) -> PredictFn:
    """PredictFn for an analytic teacher (a callable on torch tensors)."""

    @torch.no_grad()
    def predict(feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        out = fn(*[torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in input_names])
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return [o.detach().cpu().numpy() if isinstance(o, torch.Tensor) else np.asarray(o) for o in outs]

    return predict


def model_predict(model: Any, task: Any) -> PredictFn:
    from edgekd.distill.teachers import OnnxTeacher

    spec = task.io_spec()
    if isinstance(model, OnnxTeacher):  # an ONNX teacher: its session, fed by position
        return lambda feeds: model.run_numpy([feeds[n] for n in spec.input_names])
    if isinstance(model, nn.Module):
        return torch_predict(model, spec)
    return callable_predict(model, spec.input_names)


def evaluate_all(task: Any, predict: PredictFn, batch_size: int = 64) -> dict[str, Any]:
    """Metric on the test split and every extra split the task reports."""
    res = task.evaluate(predict, split="test", batch_size=batch_size)
    out: dict[str, Any] = {"metric": float(res.metric), "extras": res.extras}
    splits = {}
    for split in task.eval_splits():
        if split == "test":
            continue
        splits[split] = float(task.evaluate(predict, split=split, batch_size=batch_size).metric)
    if splits:
        out["splits"] = splits
    return out


def param_count(model: Any) -> int | None:
    counter = getattr(model, "param_count", None)  # an ONNX teacher counts its graph's weights
    if callable(counter):
        return int(counter())
    if not isinstance(model, nn.Module):
        return None
    return sum(p.numel() for p in model.parameters())
