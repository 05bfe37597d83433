"""Loading YAML files, applying ``--set a.b=value`` overrides, and turning pydantic's
errors into one readable report with field paths, values, what is allowed and a
suggestion for misspelled keys.

YAML is read with ``yaml.safe_load`` only: a recipe cannot construct Python objects.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from edgekd.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], value). The value is parsed as YAML (so 3 -> int,
    true -> bool, [1,2] -> list); anything else stays a string and validation judges it."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set train.epochs=5")
    key, raw = text.split("=", 1)
    key = key.strip()
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ConfigError(f"--set {text!r}: the key {key!r} is not a dotted path like train.epochs")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str | tuple[list[str], Any]]) -> dict[str, Any]:
    """Return a copy of ``data`` with each override applied. List items are addressed by index
    (``distill.losses.0.weight=2``). Unknown keys are left to schema validation, which names them."""
    import copy

    out = copy.deepcopy(data)
    for ov in overrides:
        parts, value = parse_override(ov) if isinstance(ov, str) else ov
        node: Any = out
        for i, part in enumerate(parts[:-1]):
            where = ".".join(parts[: i + 1])
            if isinstance(node, list):
                node = node[_index(part, node, where)]
            elif isinstance(node, dict):
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = {}
                node = node[part]
            else:
                raise ConfigError(f"--set {'.'.join(parts)}: {where} is a value, not a section")
        last = parts[-1]
        if isinstance(node, list):
            node[_index(last, node, ".".join(parts))] = value
        else:
            node[last] = value
    return out


def _index(part: str, node: list[Any], where: str) -> int:
    try:
        idx = int(part)
    except ValueError:
        raise ConfigError(f"--set {where}: {part!r} indexes a list; use a number 0..{len(node) - 1}") from None
    if not -len(node) <= idx < len(node):
        raise ConfigError(f"--set {where}: index {idx} is out of range; the list has {len(node)} items")
    return idx


def validate(model: type[M], data: Mapping[str, Any], source: str) -> M:
    """Validate ``data`` against ``model``; raise one ConfigError listing every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {exc.error_count()} problem(s)", format_errors(exc, model)) from None


def format_errors(exc: ValidationError, model: type[BaseModel]) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = [str(x) for x in err["loc"]]
        # pydantic adds the union tag to the location of discriminated unions (losses.0.hint.weight);
        # drop it so the path is the one the user wrote.
        loc = _strip_tags(loc)
        path = ".".join(loc) or "(top level)"
        kind = err["type"]
        value = err.get("input")
        if kind == "extra_forbidden":
            allowed = allowed_fields(model, loc[:-1], exc_input=None)
            msg = f"{path}: unknown field"
            near = difflib.get_close_matches(loc[-1], allowed, n=1, cutoff=0.5) if allowed else []
            if near:
                msg += f"; did you mean {near[0]!r}?"
            if allowed:
                msg += f" Allowed here: {', '.join(sorted(allowed))}"
        elif kind == "missing":
            msg = f"{path}: required field is missing"
        elif kind == "union_tag_invalid":
            ctx = err.get("ctx", {})
            tag = ctx.get("tag")
            expected = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip()]
            msg = f"{path}.kind: unknown kind {tag!r}"
            near = difflib.get_close_matches(str(tag), expected, n=1, cutoff=0.5)
            if near:
                msg += f"; did you mean {near[0]!r}?"
            msg += f" Allowed: {', '.join(expected)}"
        elif kind == "union_tag_not_found":
            msg = f"{path}: needs a 'kind' field to say which one it is"
        else:
            msg = f"{path}: {err['msg']} (got {_short(value)})"
        problems.append(msg)
    return problems


def _strip_tags(loc: list[str]) -> list[str]:
    """Drop the discriminator segment pydantic inserts for tagged unions (``task.gaze.x`` ->
    ``task.x``), so the path shown is the one the user wrote in YAML."""
    return [seg for i, seg in enumerate(loc) if not (seg in _TAGS and i + 1 < len(loc))]


_TAGS: set[str] = set()


def register_tags(tags: Iterable[str]) -> None:
    """Discriminator values of registered unions, so error paths can drop them."""
    _TAGS.update(tags)


def allowed_fields(model: type[BaseModel], loc: Sequence[str], exc_input: Any = None) -> list[str]:
    """Field names of the (sub)model at ``loc``, walking nested models, lists and dicts."""
    node: Any = model
    for seg in loc:
        node = _descend(node, seg)
        if node is None:
            return []
    fields = getattr(node, "model_fields", None)
    return list(fields) if fields else []


def _descend(node: Any, seg: str) -> Any:
    if isinstance(node, type) and issubclass(node, BaseModel):
        f = node.model_fields.get(seg)
        if f is None:
            return None
        return _unwrap(f.annotation)
    return None if seg.isdigit() is False else node


def _unwrap(ann: Any) -> Any:
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Annotated:
        return _unwrap(args[0])
    if origin in (list, tuple, Sequence) and args:
        return _unwrap(args[0])
    if origin in (dict, Mapping) and len(args) == 2:
        return _unwrap(args[1])
    if origin is typing.Union or str(origin) == "types.UnionType":
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if len(models) == 1 else None
    return ann


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
