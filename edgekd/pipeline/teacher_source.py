"""Getting the teacher: train it (and cache it by content hash), load a checkpoint, take the
task's analytic controller, build any torch module from a factory, or run any ONNX model.

Teachers that are not trained here (``module``, ``onnx``) are keyed by their content in the
offline teacher cache (``distill.teacher_cache``): the ONNX file's SHA-256 or the module's
weights, plus the data; the sources are recorded in the report with the file's SHA-256."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from torch import nn

from edgekd.config.recipe import RecipeBase
from edgekd.errors import ConfigError, EdgekdError

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

    src = recipe.teacher.source
    if src in ("module", "onnx"):
        # a teacher from outside the task: the task's own teacher architecture is not built
        return _external_teacher(recipe, task, out_dir)
    teacher = task.build_teacher()
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


def _external_teacher(recipe: RecipeBase, task: Any, out_dir: Path) -> tuple[Any, dict[str, Any]]:
    """``teacher.source: module`` or ``onnx``: the teacher as given, frozen, never trained here."""
    from edgekd.fileio import sha256_file

    cfg = recipe.teacher
    if cfg.source == "onnx":
        from edgekd.distill.teachers import OnnxTeacher

        path = cfg.resolved_path()
        if path is None:  # the config validator requires teacher.path for source=onnx
            raise ConfigError("teacher.source='onnx' needs teacher.path", hint="give the .onnx file")
        onnx_teacher = OnnxTeacher(path)
        check_onnx_teacher_outputs(onnx_teacher, task)
        return onnx_teacher, {"source": "onnx", "path": str(path), "sha256": onnx_teacher.sha256,
                              "params": onnx_teacher.param_count(), "inputs": onnx_teacher.input_names,
                              "outputs": onnx_teacher.output_names}
    module = build_module_teacher(cfg.factory or "", cfg.weights)
    info: dict[str, Any] = {"source": "module", "factory": cfg.factory, "kind": type(module).__name__}
    if cfg.weights is not None:
        info.update(weights=str(cfg.weights), sha256=sha256_file(Path(cfg.weights)))
    save_path = out_dir / "teacher.safetensors"
    from edgekd.weights import save_module_weights

    save_module_weights(module, save_path)
    return module.eval(), info


def build_module_teacher(factory: str, weights: Path | None) -> nn.Module:
    """Call the factory (no arguments), check it returned a torch module, load ``weights`` into it."""
    from edgekd.weights import load_module_weights

    fn = load_factory(factory, "teacher.factory")
    try:
        module = fn()
    except Exception as exc:
        raise ConfigError(f"teacher.factory={factory!r} raised {type(exc).__name__}: {exc}{_user_frame(exc)}",
                          hint="fix the factory; it is called with no arguments and returns an nn.Module") from None
    if not isinstance(module, nn.Module):
        raise ConfigError(f"teacher.factory={factory!r} returned a {type(module).__name__}, not a torch nn.Module",
                          hint="return the teacher network; for an ONNX model use teacher.source: onnx")
    if weights is not None:
        load_module_weights(module, Path(weights))
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def load_factory(spec: str, field: str) -> Any:
    """Import ``'pkg.mod:fn'`` or ``'file.py:fn'`` and return ``fn``; errors name the file and line."""
    import importlib
    import importlib.util

    from edgekd.config.teacher_paths import split_factory

    try:
        target, attr = split_factory(spec)
    except ValueError as exc:
        raise ConfigError(f"{field}: {exc}") from None
    try:
        if target.endswith(".py"):
            file = Path(target).expanduser().resolve()
            if not file.is_file():
                raise ConfigError(f"{field}={spec!r}: the file {target!r} does not exist",
                                  hint="relative paths are from the current folder")
            mod_spec = importlib.util.spec_from_file_location(f"edgekd_user_{file.stem}", file)
            if mod_spec is None or mod_spec.loader is None:
                raise ConfigError(f"{field}={spec!r}: {file} cannot be imported as Python")
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except ConfigError:
        raise
    except Exception as exc:  # the user's code: any error it raises on import is a bad input
        raise ConfigError(f"{field}={spec!r}: importing {target!r} failed: {type(exc).__name__}: {exc}"
                          f"{_user_frame(exc)}", hint="fix the error in that file") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        names = sorted(n for n in vars(module) if not n.startswith("_") and callable(getattr(module, n)))
        raise ConfigError(f"{field}={spec!r}: {target!r} has no function {attr!r}",
                          hint=f"callables there: {', '.join(names) or 'none'}")
    return fn


def _user_frame(exc: BaseException) -> str:
    """' (at FILE:LINE)' of the innermost frame outside edgekd, or of a SyntaxError."""
    import traceback

    if isinstance(exc, SyntaxError) and exc.filename:
        return f" (at {exc.filename}:{exc.lineno})"
    import edgekd

    own = str(Path(edgekd.__file__).resolve().parent)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not str(Path(f.filename).resolve()).startswith(own) and "importlib" not in f.filename]
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def check_onnx_teacher_outputs(teacher: Any, task: Any) -> None:
    """The ONNX teacher's outputs must match the student's in count and shape (output losses compare
    them element-wise): run both on one batch of the task's inputs and compare, before any training."""
    import numpy as np
    import torch

    from edgekd.runtime.predict import iterate_numpy

    spec = task.io_spec()
    batch = next(iter(iterate_numpy(task.dataset("train"), spec.input_names, batch_size=2)))[0]
    arrays = [batch[n] for n in spec.input_names]
    try:
        t_out = teacher.run_numpy(arrays)
    except EdgekdError as exc:
        raise ConfigError(f"the ONNX teacher {teacher.path.name} cannot run on the task's inputs "
                          f"{[tuple(a.shape) for a in arrays]}: {exc}",
                          hint="the teacher must take the student's inputs (same count, order and shapes)") from None
    student = task.build_student().eval()
    with torch.no_grad():
        s_raw = student(*[torch.from_numpy(np.ascontiguousarray(a)) for a in arrays])
    s_out = s_raw if isinstance(s_raw, (tuple, list)) else (s_raw,)
    t_shapes = [tuple(o.shape) for o in t_out]
    s_shapes = [tuple(o.shape) for o in s_out]
    if t_shapes != s_shapes:
        raise ConfigError(
            f"the ONNX teacher {teacher.path.name} returns {len(t_shapes)} output(s) of shape(s) {t_shapes} "
            f"(declared {teacher.declared_output_shapes()}), the student returns {len(s_shapes)} of shape(s) "
            f"{s_shapes} on the same batch",
            hint="an ONNX teacher is distilled through its outputs: give the student the teacher's outputs "
            "(count and shape), or wrap the teacher in a torch module (teacher.source: module)")
