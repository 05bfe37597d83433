"""Scoring every variant with the task's own metric through a numpy predict function,
so PyTorch, analytic and runtime artifacts are judged by the same code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekd.tasks.base import PredictFn, Task, torch_predict
from edgekd.tasks.model_stats import param_count as _param_count


def callable_predict(fn: Any, input_names: Sequence[str]) -> PredictFn:
    """PredictFn for an analytic teacher (a callable on torch tensors)."""

    @torch.no_grad()
    def predict(feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        out = fn(*[torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in input_names])
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return [o.detach().cpu().numpy() if isinstance(o, torch.Tensor) else np.asarray(o) for o in outs]

    return predict


def evaluate_all(task: Task, predict: PredictFn, batch_size: int = 64) -> dict[str, Any]:
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
    """Parameters of a torch model or an ONNX teacher (its graph's weights); None for an analytic teacher."""
    counter = getattr(model, "param_count", None)  # an ONNX teacher counts its graph's weights
    if callable(counter):
        return int(counter())
    return _param_count(model) if isinstance(model, nn.Module) else None


def evaluate_variants(ctx: Any, trained: Any) -> dict[str, dict[str, Any]]:
    """Stage 3: every torch model of the run and every exported artifact, scored by the task's metric
    on the test split (and its other splits). ``ctx`` is the RunContext, ``trained`` the TrainedModels."""
    from edgekd.fileio import sha256_file
    from edgekd.pipeline.produce import artifact_predict

    task, out = ctx.task, ctx.out_dir
    variants: dict[str, dict[str, Any]] = {}
    with ctx.rec.stage("evaluate"):
        models = [("teacher", trained.teacher), ("student_alone", trained.alone.student if trained.alone else None),
                  ("student_kd", trained.student)]
        if trained.qat is not None:
            models.append(("student_qat", trained.qat.student))  # the fake-quant torch model behind the INT8 export
        for name, model in models:
            if model is None:
                continue
            ctx.say(f"  evaluating {name}")
            variants[name] = {**evaluate_all(task, model_predict(model, ctx.spec)), "params": param_count(model)}
        n_params = param_count(trained.student)
        for art in ctx.artifacts.runtime_artifacts():
            path = art.path(out)
            if not path.exists():
                continue
            ctx.say(f"  evaluating {art.variant}")
            variants[art.variant] = {**evaluate_all(task, artifact_predict(art, path)), "params": n_params,
                                     "path": path.name, "sha256": sha256_file(path), "runtime": art.runtime,
                                     "precision": art.precision,
                                     "bytes": sum((out / f).stat().st_size for f in art.files())}
    return variants


def model_predict(model: Any, spec: Any) -> PredictFn:
    """A torch module, an ONNX teacher, or an analytic teacher (a callable on torch tensors), as a numpy
    predict function."""
    from edgekd.distill.teachers import OnnxTeacher

    if isinstance(model, OnnxTeacher):  # an ONNX teacher: its session, fed by position
        return lambda feeds: model.run_numpy([feeds[n] for n in spec.input_names])
    if isinstance(model, nn.Module):
        return torch_predict(model, spec)
    return callable_predict(model, spec.input_names)
