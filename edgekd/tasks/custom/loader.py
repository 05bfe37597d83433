"""Loading a custom task: import the user's factory, call it, check the result against the protocol.

Every failure is a :class:`~edgekd.errors.ConfigError` (exit 2) that names the factory, and for an
error inside the user's code, the file and line where it happened (not a traceback of edgekd):
a missing file or module, an import that fails, a missing or non-callable attribute, a factory that
raises, and an object that falls short of :class:`~edgekd.tasks.base.Task` (every problem at once).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgekd.errors import ConfigError
from edgekd.fileio import sha256_file
from edgekd.tasks.base import Task
from edgekd.tasks.custom.config import CustomTaskConfig, split_factory
from edgekd.tasks.protocol_check import check_task

_EDGEKD_DIR = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)
FACTORY_HINT = "the factory is called as build(args: dict, seed: int) and returns an edgekd.tasks.Task"


def resolve_factory(cfg: CustomTaskConfig, base_dir: Path) -> CustomTaskConfig:
    """The config with a factory file made absolute (relative to ``base_dir``, the recipe's folder) and
    its SHA-256 recorded; a missing file is an error here, before anything is imported."""
    where, attr, is_file = split_factory(cfg.factory)
    if not is_file:
        return cfg
    path = Path(where).expanduser()
    path = (path if path.is_absolute() else base_dir / path).resolve()
    if not path.is_file():
        raise ConfigError(f"task.factory={cfg.factory!r}: {path} does not exist",
                          hint=f"a relative path is read from the recipe's folder ({base_dir}); fix the path")
    return cfg.model_copy(update={"factory": f"{path}:{attr}", "factory_sha256": sha256_file(path)})


def _site(exc: BaseException, user_file: Path | None) -> str:
    """Where in the user's code ``exc`` happened: 'file:line (in function): source line'."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}: {(exc.text or '').strip()}"
    frames = traceback.extract_tb(exc.__traceback__)

    def ours(f: traceback.FrameSummary) -> bool:
        return f.filename.startswith("<") or Path(f.filename).resolve().is_relative_to(_EDGEKD_DIR)

    user = [f for f in frames if user_file is not None and Path(f.filename).resolve() == user_file]
    user = user or [f for f in frames if not ours(f)]
    if not user:
        return "(no frame in your code)"
    at = user[-1]
    where = f"{at.filename}:{at.lineno} (in {at.name}): {(at.line or '').strip()}"
    last = frames[-1]
    if (last.filename, last.lineno) != (at.filename, at.lineno):
        where += f"  [raised in {last.filename}:{last.lineno}]"
    return where


def _user_error(what: str, exc: BaseException, user_file: Path | None, factory: str) -> ConfigError:
    return ConfigError(f"task.factory={factory!r}: {what}: {type(exc).__name__}: {exc}\n  at {_site(exc, user_file)}",
                       hint="fix the error in your task file; " + FACTORY_HINT)


def _import_file(path: Path, factory: str) -> Any:
    if not path.is_file():
        raise ConfigError(f"task.factory={factory!r}: {path} does not exist", hint="fix the path")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    name = f"edgekd_custom_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"task.factory={factory!r}: {path} cannot be imported as Python", hint="give a .py file")
    module = importlib.util.module_from_spec(spec)
    # Like running a script: its folder is importable (sibling modules), and the module is registered
    # (dataclasses and pickling look modules up by name).
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise _user_error(f"importing {path.name} failed", exc, path, factory) from None
    return module


def _import_module(dotted: str, factory: str) -> tuple[Any, Path | None]:
    try:
        module = importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        if exc.name and (dotted == exc.name or dotted.startswith(exc.name + ".")):
            raise ConfigError(f"task.factory={factory!r}: no module named {exc.name!r}",
                              hint="install the package, or give a file path ('my_task.py:build')") from None
        raise _user_error(f"importing {dotted} failed", exc, None, factory) from None
    except Exception as exc:
        raise _user_error(f"importing {dotted} failed", exc, None, factory) from None
    origin = getattr(module, "__file__", None)
    return module, Path(origin).resolve() if origin else None


def load_factory(factory: str) -> tuple[Callable[..., Any], Path | None]:
    """The factory callable named by ``'file.py:attr'`` or ``'package.module:attr'``, and its file."""
    where, attr, is_file = split_factory(factory)
    if is_file:
        path: Path | None = Path(where).expanduser().resolve()
        module = _import_file(path, factory)  # type: ignore[arg-type]
    else:
        module, path = _import_module(where, factory)
    if not hasattr(module, attr):
        public = sorted(n for n in vars(module) if callable(getattr(module, n)) and not n.startswith("_"))
        raise ConfigError(f"task.factory={factory!r}: {where} has no attribute {attr!r} "
                          f"(its callables: {', '.join(public) or 'none'})", hint="fix the name after ':'")
    fn = getattr(module, attr)
    if not callable(fn):
        raise ConfigError(f"task.factory={factory!r}: {attr} is of type {type(fn).__name__}, not callable",
                          hint=FACTORY_HINT)
    return fn, path


def build_custom_task(cfg: CustomTaskConfig, seed: int = 0) -> Task:
    """Import the factory, call ``build(args, seed)`` and check the result; every problem is a ConfigError."""
    fn, path = load_factory(cfg.factory)
    if cfg.factory_sha256 and path is not None and path.is_file() and sha256_file(path) != cfg.factory_sha256:
        # a run folder rebuilt after its task file was edited: its weights may not fit the models any more
        log.warning("%s changed since this recipe was resolved (SHA-256 differs); the task is built from the "
                    "current file", path)
    try:
        inspect.signature(fn).bind(dict(cfg.args), seed)
    except TypeError as exc:
        raise ConfigError(f"task.factory={cfg.factory!r}: {getattr(fn, '__name__', fn)}{inspect.signature(fn)} "
                          f"cannot be called as build(args, seed) ({exc})", hint=FACTORY_HINT) from None
    except ValueError:
        pass  # no signature to check (a builtin): call it and see
    try:
        task = fn(dict(cfg.args), seed)
    except Exception as exc:
        raise _user_error("the factory raised", exc, path, cfg.factory) from None
    if getattr(task, "config", None) is None:
        try:
            task.config = cfg  # the Task protocol's config: the recipe's task section
        except (AttributeError, TypeError):
            pass  # check_task reports it
    problems = check_task(task)
    if problems:
        raise ConfigError(f"task.factory={cfg.factory!r} returned a {type(task).__name__} that does not implement "
                          f"edgekd.tasks.Task ({len(problems)} problem{'s' if len(problems) > 1 else ''})", problems,
                          hint="derive from edgekd.tasks.TaskBase (defaults for the optional hooks) or use a generic "
                               "task of edgekd.tasks.blocks; `edgekd init DIR` writes a working example")
    return task  # type: ignore[no-any-return]


__all__ = ["build_custom_task", "load_factory", "resolve_factory"]
