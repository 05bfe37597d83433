"""Checking an object against the :class:`~edgekd.tasks.base.Task` protocol, listing every problem.

``isinstance(obj, Task)`` only says yes or no, and only about presence. A custom task (``task: {kind:
custom}``) is checked here before anything trains: each member the pipeline uses must exist, each
method must accept the calls the pipeline makes (:data:`HOOKS` lists them), and each attribute must
have the declared type. Every problem is collected, so the user fixes them in one go.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from edgekd.config.recipe import TaskConfigBase
from edgekd.iospec import IOSpec
from edgekd.tasks.base import MetricSpec, ParityCompare


@dataclass(frozen=True)
class Hook:
    """A method of the protocol and the calls the pipeline makes to it (argument placeholders)."""

    name: str
    usage: str  # as written in the message, e.g. "build_student(*, init='teacher')"
    calls: tuple[tuple[tuple[Any, ...], dict[str, Any]], ...]


_X = object()  # any positional argument
HOOKS: tuple[Hook, ...] = (
    Hook("io_spec", "io_spec() -> IOSpec", (((), {}),)),
    Hook("dataset", "dataset(split: str) -> Dataset", (((_X,), {}),)),
    Hook("build_teacher", "build_teacher() -> nn.Module | callable", (((), {}),)),
    Hook("build_student", "build_student(*, init: str = 'teacher') -> nn.Module",
         (((), {}), ((), {"init": _X}))),
    Hook("task_loss", "task_loss(outputs, batch) -> Tensor", (((_X, _X), {}),)),
    Hook("evaluate", "evaluate(predict, split: str = 'test', batch_size: int = 64) -> EvalResult",
         (((_X,), {"split": _X}), ((_X,), {"split": _X, "batch_size": _X}))),
    Hook("eval_splits", "eval_splits() -> list[str]", (((), {}),)),
    Hook("pretrain_teacher", "pretrain_teacher(teacher, *, progress: bool = False) -> dict",
         (((_X,), {"progress": _X}),)),
    Hook("teacher_task_loss", "teacher_task_loss(outputs, batch) -> Tensor", (((_X, _X), {}),)),
)


def _is_str_seq(v: Any) -> bool:
    return isinstance(v, Sequence) and not isinstance(v, str) and all(isinstance(x, str) for x in v)


# attribute -> (declared type in words, check)
ATTRIBUTES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "config": ("a TaskConfigBase (edgekd sets the recipe's task config when the object has none)",
               lambda v: isinstance(v, TaskConfigBase)),
    "metric": ("edgekd.tasks.MetricSpec(name, lower_is_better, unit)", lambda v: isinstance(v, MetricSpec)),
    "teacher_input_names": ("a sequence of input names (str)", _is_str_seq),
    "parity_compare": (" or ".join(map(repr, get_args(ParityCompare))), lambda v: v in get_args(ParityCompare)),
    "parity_min_agreement": ("a number in [0, 1]",
                             lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= float(v) <= 1),
}

MEMBERS: tuple[str, ...] = (*(h.name for h in HOOKS), *ATTRIBUTES)


def _method_problems(obj: Any, hook: Hook) -> list[str]:
    fn = getattr(obj, hook.name)
    if not callable(fn):
        return [f"{hook.name}: is a {type(fn).__name__}, must be a method {hook.usage}"]
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []  # a builtin or C callable without a signature: cannot check, trust it
    for args, kwargs in hook.calls:
        try:
            sig.bind(*args, **kwargs)
        except TypeError as exc:
            return [f"{hook.name}{sig}: cannot be called as {hook.usage} ({exc})"]
    return []


def _result_problems(obj: Any, broken: set[str]) -> list[str]:
    """Call the cheap, side-effect-free hooks and check what they return."""
    problems: list[str] = []
    for name, ok, want in (("io_spec", lambda v: isinstance(v, IOSpec), "an edgekd.iospec.IOSpec"),
                           ("eval_splits", lambda v: isinstance(v, list) and _is_str_seq(v), "a list of split names")):
        if name in broken:
            continue
        try:
            value = getattr(obj, name)()
        except Exception as exc:  # the user's code: report, do not crash
            problems.append(f"{name}(): raised {type(exc).__name__}: {exc}")
            continue
        if not ok(value):
            problems.append(f"{name}(): returned {type(value).__name__}, must return {want}")
    return problems


def check_task(obj: Any) -> list[str]:
    """Every way ``obj`` falls short of the Task protocol (empty when it conforms)."""
    problems: list[str] = []
    broken: set[str] = set()
    for hook in HOOKS:
        if not hasattr(obj, hook.name):
            problems.append(f"{hook.name}: missing (declare {hook.usage}; edgekd.tasks.TaskBase has the defaults "
                            "of the optional hooks)")
            broken.add(hook.name)
            continue
        found = _method_problems(obj, hook)
        problems += found
        broken.update(hook.name for _ in found)
    for name, (want, ok) in ATTRIBUTES.items():
        try:
            value = getattr(obj, name)
        except AttributeError:
            problems.append(f"{name}: missing (must be {want})")
            continue
        except Exception as exc:  # a property that raised
            problems.append(f"{name}: reading it raised {type(exc).__name__}: {exc}")
            continue
        if not ok(value):
            problems.append(f"{name}: is {value!r:.60}, must be {want}")
    return problems + _result_problems(obj, broken)


__all__ = ["ATTRIBUTES", "HOOKS", "MEMBERS", "Hook", "check_task"]
