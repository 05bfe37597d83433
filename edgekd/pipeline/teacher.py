"""Getting the teacher: train it (and cache it by content hash), load a checkpoint, or
take the task's analytic controller."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from torch import nn

from edgekd.config.recipe import RecipeBase
from edgekd.errors import ConfigError

log = logging.getLogger(__name__)


def teacher_cache_key(recipe: RecipeBase) -> str:
    """Everything that determines the trained teacher: task data/model config, teacher training, seed.

    Fields of ``task.model`` named ``student_*`` describe only the student, so they are left out:
    trying another student width reuses the cached teacher instead of retraining it."""
    import edgekd

    task = recipe.task.model_dump(mode="json")
    if isinstance(task.get("model"), dict):
        task["model"] = {k: v for k, v in task["model"].items() if not k.startswith("student_")}
    blob = json.dumps({
        "task": task,
        "train": recipe.teacher.train.model_dump(mode="json"),
        "seed": recipe.seed,
        "edgekd": edgekd.__version__,
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def obtain_teacher(recipe: RecipeBase, task: Any, out_dir: Path, *, progress: bool = True,
                   spec: Any = None) -> tuple[Any, dict[str, Any]]:
    """Return (teacher, info). ``info`` says where it came from, for the report and manifest. ``spec``: the
    task's io spec (read from the task when not given)."""
    from edgekd.paths import cache_dir
    from edgekd.weights import load_module_weights, save_module_weights

    teacher = task.build_teacher()
    src = recipe.teacher.source
    if not isinstance(teacher, nn.Module) or src == "analytic":
        if isinstance(teacher, nn.Module):
            raise ConfigError(f"teacher.source='analytic' but task {recipe.task.kind!r} builds a network teacher; "
                              "use teacher.source: train or checkpoint")
        return teacher, {"source": "analytic", "kind": type(teacher).__name__}
    if src == "checkpoint":
        path = Path(recipe.teacher.checkpoint or "")
        load_module_weights(teacher, path)
        return teacher.eval(), {"source": "checkpoint", "path": str(path)}

    key = teacher_cache_key(recipe)
    cached = cache_dir() / "teachers" / f"{recipe.name}-{key}.safetensors"
    if recipe.teacher.cache and cached.is_file() and _cached_fits(cached, teacher):
        load_module_weights(teacher, cached)
        log.info("teacher: reusing cached %s", cached)
        info: dict[str, Any] = {"source": "cache", "path": str(cached), "key": key}
    else:
        from edgekd.distill.loop import fit

        spec = spec if spec is not None else task.io_spec()

        # Optional task hook, only when training (e.g. gaze's MAE pre-training of the backbone).
        pre = task.pretrain_teacher(teacher, progress=progress)
        res = fit(teacher, train_set=task.dataset("train"),
                  input_names=task.teacher_input_names,
                  cfg=recipe.teacher.train, task_loss=task.teacher_task_loss,
                  val_fn=val_fn(task, spec),
                  lower_is_better=task.metric.lower_is_better, out_dir=out_dir / "train" / "teacher",
                  seed=recipe.seed, progress=progress, desc="teacher")
        teacher = res.student
        save_module_weights(teacher, cached)
        info = {"source": "trained", "path": str(cached), "key": key, "seconds": res.seconds,
                "history": res.history, **({"pretrain": pre} if pre else {})}
    save_module_weights(teacher, out_dir / "teacher.safetensors")
    return teacher.eval(), info


def _cached_fits(path: Path, teacher: nn.Module) -> bool:
    """True when the cached teacher file reads and holds exactly ``teacher``'s tensors. A truncated or damaged
    cache file is retrained and replaced (with a warning naming it) instead of failing every later run."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        log.warning("teacher cache %s is unreadable (%s); retraining the teacher and replacing it", path, exc)
        return False
    want = {k: (tuple(v.shape), v.dtype) for k, v in teacher.state_dict().items()}
    if {k: (tuple(v.shape), v.dtype) for k, v in state.items()} != want:
        log.warning("teacher cache %s does not hold this teacher's tensors; retraining the teacher and replacing "
                    "it", path)
        return False
    return True


def val_fn(task: Any, spec: Any = None) -> Any:
    """The validation metric of a torch model (``fit``'s ``val_fn``); ``spec``: the task's io spec."""
    from edgekd.tasks.base import torch_predict

    spec = spec if spec is not None else task.io_spec()

    def val(model: nn.Module) -> float:
        was = model.training
        res = task.evaluate(torch_predict(model, spec), split="val").metric
        model.train(was)
        return float(res)

    return val
