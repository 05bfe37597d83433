"""read_yaml refuses what would hang or mislead before constructing it: oversized files, alias bombs,
self-referencing aliases, deep nesting, repeated keys, non-UTF-8 bytes; YAML errors are one line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edgekd.config.loading import MAX_YAML_BYTES, MAX_YAML_NODES, parse_override, read_yaml
from edgekd.errors import ConfigError

LAUGHS = "\n".join(
    ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"{n}: &{n} [{', '.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi", strict=True)])


def _write(tmp_path: Path, text: str | bytes, name: str = "r.yaml") -> Path:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def test_alias_bomb_is_refused_fast(tmp_path: Path) -> None:
    assert len(LAUGHS.splitlines()) == 9  # nine lines, 9**9 leaves once expanded
    p = _write(tmp_path, "name: x\npresets:\n  unused:\n" + "\n".join("    " + line for line in LAUGHS.splitlines()))
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=f"expands to more than {MAX_YAML_NODES:,} values"):
        read_yaml(p)
    assert time.perf_counter() - start < 5.0


def test_aliases_within_budget_still_load(tmp_path: Path) -> None:
    p = _write(tmp_path, "base: &b {epochs: 2, lr: 0.1}\nteacher: {train: *b}\ntrain: {<<: *b, epochs: 3}\n")
    data = read_yaml(p)
    assert data["teacher"]["train"] == {"epochs": 2, "lr": 0.1}
    assert data["train"] == {"epochs": 3, "lr": 0.1}


def test_expansion_just_over_the_budget_is_refused(tmp_path: Path) -> None:
    # one list of 1,000 items referenced 101 times: 101,101+ values once expanded, 1,100 composed
    items = ", ".join(["1"] * 1000)
    refs = ", ".join(["*x"] * 101)
    with pytest.raises(ConfigError, match="expands to more than"):
        read_yaml(_write(tmp_path, f"x: &x [{items}]\ny: [{refs}]\n"))
    ok = ", ".join(["*x"] * 90)
    assert len(read_yaml(_write(tmp_path, f"x: &x [{items}]\ny: [{ok}]\n", "ok.yaml"))["y"]) == 90


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="refers to a value that contains it"):
        read_yaml(_write(tmp_path, "a: &a [1, *a]\n"))


@pytest.mark.parametrize("depth", [70, 5000])
def test_deep_nesting_is_refused(tmp_path: Path, depth: int) -> None:
    with pytest.raises(ConfigError, match="nests deeper than 64"):
        read_yaml(_write(tmp_path, "x: " + "[" * depth + "]" * depth + "\n"))


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    p = _write(tmp_path, "name: x\ndescription: '" + "a" * MAX_YAML_BYTES + "'\n")
    with pytest.raises(ConfigError, match="larger than the 1,048,576 bytes a YAML config may have"):
        read_yaml(p)


def test_repeated_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 3: the key 'train' appears twice"):
        read_yaml(_write(tmp_path, "name: x\ntrain: {epochs: 1}\ntrain: {epochs: 2}\n"))


def test_non_utf8_file_names_the_file(tmp_path: Path) -> None:
    p = _write(tmp_path, b"name: x\ndescription: caf\xe9\n", "latin1.yaml")
    with pytest.raises(ConfigError) as info:
        read_yaml(p)
    assert str(p) in str(info.value) and "not UTF-8" in str(info.value)
    assert info.value.exit_code == 2


def test_syntax_error_is_one_line_with_position(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        read_yaml(_write(tmp_path, "name: x\n  bad: [\n"))
    assert info.value.message.endswith("not valid YAML: line 2, column 6: mapping values are not allowed here")
    assert "\n" not in info.value.message


def test_python_tags_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_yaml(_write(tmp_path, "x: !!python/object/apply:os.system ['true']\n"))


def test_set_value_gets_the_same_budget() -> None:
    flow = "{" + ", ".join(LAUGHS.splitlines()) + "}"
    with pytest.raises(ConfigError, match="expands to more than"):
        parse_override("x=" + flow)
    assert parse_override("x=[unclosed") == (["x"], "[unclosed")  # bad YAML stays a string


def test_folder_or_missing_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        read_yaml(tmp_path)
    with pytest.raises(ConfigError, match="no such file"):
        read_yaml(tmp_path / "nope.yaml")
