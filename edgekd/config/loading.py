"""Loading YAML files, applying ``--set a.b=value`` overrides, and turning pydantic's
errors into one readable report with field paths, values, what is allowed and a
suggestion for misspelled keys.

YAML is read with PyYAML's safe loader only (a recipe cannot construct Python objects), and only
after the composed document has been measured: a file over :data:`MAX_YAML_BYTES`, a document that
expands (aliases counted as what they stand for) to more than :data:`MAX_YAML_NODES` values, nests
deeper than :data:`MAX_YAML_DEPTH`, or repeats a key is refused before anything is constructed, so an
alias bomb costs microseconds instead of gigabytes.
"""

from __future__ import annotations

import copy
import difflib
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from edgekd.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

#: Largest YAML file read (recipes and device files are a few KiB).
MAX_YAML_BYTES = 1 << 20
#: Most values (scalars, lists, mappings) a document may expand to, an alias counting as what it names.
MAX_YAML_NODES = 100_000
#: Deepest nesting of lists/mappings accepted.
MAX_YAML_DEPTH = 64


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping; every problem is a one-line :class:`ConfigError`."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: {'not a regular file' if p.exists() else 'no such file'}",
                          hint="give the path of a .yaml file")
    try:
        with p.open("rb") as f:  # read at most one byte past the budget: st_size is 0 for /proc files
            blob = f.read(MAX_YAML_BYTES + 1)
        if len(blob) > MAX_YAML_BYTES:
            raise ConfigError(f"{p}: larger than the {MAX_YAML_BYTES:,} bytes a YAML config may have",
                              hint="a recipe or device file is a few KiB; check the path")
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
                          hint="save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot be read: {exc.strerror or exc}") from None
    try:
        data = load_yaml_text(text, str(p))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {yaml_error_line(exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping, got {type(data).__name__}")
    return data


def load_yaml_text(text: str, source: str) -> Any:
    """Parse one YAML document with the safe loader, refusing it (:class:`ConfigError`) before
    construction if it breaks a budget. Syntax errors propagate as ``yaml.YAMLError``."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{source}: {len(text):,} characters is more than the {MAX_YAML_BYTES:,} "
                          "a YAML config may have")
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ConfigError(f"{source}: the YAML nests deeper than {MAX_YAML_DEPTH} levels") from None
        if node is None:
            return None
        check_yaml_budget(node, source)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def check_yaml_budget(root: yaml.Node, source: str) -> None:
    """Raise :class:`ConfigError` if the composed document ``root`` expands to more than
    :data:`MAX_YAML_NODES` values, nests deeper than :data:`MAX_YAML_DEPTH`, refers to itself or
    repeats a key in a mapping. Linear in the composed size: each node's expansion is memoised."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def expanded(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(f"{source}: {_where(node)} an alias refers to a value that contains it")
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(f"{source}: {_where(node)} the YAML nests deeper than {MAX_YAML_DEPTH} levels")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            _no_repeated_keys(node, source)
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        for child in children:
            total += expanded(child, depth + 1)
            if total > MAX_YAML_NODES:
                raise ConfigError(
                    f"{source}: {_where(node)} the YAML expands to more than {MAX_YAML_NODES:,} values "
                    "(an alias counts as everything it names); refused before loading it",
                    hint="remove the aliases that multiply each other (a 'billion laughs' document)")
        active.discard(key)
        sizes[key] = total
        return total

    expanded(root, 0)


def _no_repeated_keys(node: yaml.MappingNode, source: str) -> None:
    # PyYAML keeps the last of two equal keys silently; a recipe with two `train:` sections means one
    # of them is ignored without a word, so it is an error here.
    seen: set[str] = set()
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
            if key.value in seen:
                raise ConfigError(f"{source}: {_where(key)} the key {key.value!r} appears twice in one mapping",
                                  hint="merge the two entries into one")
            seen.add(key.value)


def _where(node: yaml.Node) -> str:
    mark = node.start_mark
    return f"line {mark.line + 1}:" if mark is not None else ""


def yaml_error_line(exc: yaml.YAMLError) -> str:
    """A PyYAML error on one line: 'line L, column C: problem (context)'."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = exc.problem or exc.context or type(exc).__name__
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        return f"{where}{what}{context}"
    return " ".join(str(exc).split())


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], value). The value is parsed as YAML (so 3 -> int,
    true -> bool, [1,2] -> list, {a: 1} -> a mapping that merges into the section); anything else stays
    a string and validation judges it."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set train.epochs=5")
    key, raw = text.split("=", 1)
    parts = split_key(key.strip(), f"--set {text!r}")
    try:
        value = load_yaml_text(raw, f"--set {key.strip()}") if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def split_key(key: str, source: str) -> list[str]:
    """``a.b.c`` -> ["a", "b", "c"]; a key with an empty part is a :class:`ConfigError`."""
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ConfigError(f"{source}: the key {key!r} is not a dotted path like train.epochs")
    return parts


def apply_overrides(data: dict[str, Any], overrides: Iterable[str | tuple[list[str], Any]]) -> dict[str, Any]:
    """Return a copy of ``data`` with each override applied (see :func:`resolve_overrides`); raise one
    :class:`ConfigError` listing every override that could not be applied."""
    out, problems = resolve_overrides(data, overrides)
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else f"{len(problems)} overrides cannot be applied",
                          problems[1:] if len(problems) == 1 else problems)
    return out


def resolve_overrides(data: dict[str, Any], overrides: Iterable[str | tuple[list[str], Any]],
                      ) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``data`` with each override applied, and the problems of those that could not be.

    A value that is a mapping *merges* into the section already there (recursively: the keys it names
    are replaced, the others kept); any other value (a number, a string, a list) replaces what was there.
    List items are addressed by index (``distill.losses.0.weight=2``). Unknown keys are left to schema
    validation, which names them."""
    out = copy.deepcopy(data)
    problems: list[str] = []
    for ov in overrides:
        try:
            parts, value = parse_override(ov) if isinstance(ov, str) else ov
            _set_path(out, parts, value)
        except ConfigError as exc:
            problems.append(str(exc).replace("\n", " "))
    return out, problems


def _set_path(out: dict[str, Any], parts: list[str], value: Any) -> None:
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
        idx = _index(last, node, ".".join(parts))
        node[idx] = merge_into(node[idx], value)
    else:
        node[last] = merge_into(node.get(last), value)


def merge_into(base: Any, patch: Any) -> Any:
    """``patch`` deep-merged into ``base`` when both are mappings, else a copy of ``patch``."""
    if not (isinstance(base, dict) and isinstance(patch, dict)):
        return copy.deepcopy(patch)
    merged = dict(base)
    for key, value in patch.items():
        merged[key] = merge_into(base.get(key), value)
    return merged


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
    result, problems = validation_problems(model, data)
    if result is None:
        raise ConfigError(f"{source}: {len(problems)} problem(s)", problems)
    return result


def validation_problems(model: type[M], data: Mapping[str, Any]) -> tuple[M | None, list[str]]:
    """``(model instance, [])`` if ``data`` is valid, else ``(None, every problem as a line)``."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, format_errors(exc, model)


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
