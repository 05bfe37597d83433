"""What the gate prints and writes: report strings are data, never commands or markup.

GitHub's runner reads a line as a workflow command when it starts with ``::`` (leading blanks
ignored); annotation data escapes ``%``, CR and LF, properties also ``:`` and ``,``. Annotations appear
only inside GitHub Actions. ``--json -`` writes the verdict to standard output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _gate_reports import honest, session_samples
from junitparser import JUnitXml

from edgekd.cli import main
from edgekd.gate.outputs import console_line, github_annotations, junit_xml, markdown_summary
from edgekd.gate.verdict import Check, outcome

HOSTILE = ["throttled\n::add-mask::hunter2", "::set-env name=PATH::/tmp/evil", "  ::error::fake",
           "100% sure%0A::warning::x", "cr\r::notice::y", "##[set-output name=a;]b", "esc \x1b[31mred\x1b[0m",
           "line\u2028sep::stop-commands::tok", "<img src=x onerror=alert(1)> | cell"]
#: an annotation line as this gate writes it: a level, an escaped title (no ':' or ','), then '::'
ANNOTATION = re.compile(r"^::(error|warning) title=[^:,\r\n]*::[^\r\n]*$")


@pytest.fixture
def hostile(report: Path, tmp_path: Path) -> tuple[Path, Path]:
    """An honest candidate marked invalid with hostile invalid_reasons, and an honest baseline."""
    cand = honest(report, tmp_path / "cand.json", session_samples(seed=1), valid=False, invalid_reasons=HOSTILE)
    base = honest(report, tmp_path / "base.json", session_samples(seed=2))
    return cand, base


def _command_lines(text: str) -> list[str]:
    # as the runner splits and trims: CR, LF (and a CR LF pair) end a line
    return [ln for ln in re.split(r"\r\n|\r|\n", text) if ln.lstrip().startswith(("::", "##["))]


@pytest.mark.parametrize("env", [None, "false", "1"])
def test_no_annotations_outside_github_actions(env: str | None, hostile: tuple[Path, Path],
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    if env is None:
        monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    else:
        monkeypatch.setenv("GITHUB_ACTIONS", env)
    cand, base = hostile
    assert main(["gate", str(cand), "--baseline", str(base)]) == 4
    cap = capsys.readouterr()
    assert "add-mask" in cap.out  # the reason is shown...
    assert _command_lines(cap.out + "\n" + cap.err) == []  # ...but nothing reads as a command


def test_inside_github_actions_only_our_annotations_are_commands(hostile: tuple[Path, Path],
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    cand, base = hostile
    assert main(["gate", str(cand), "--baseline", str(base)]) == 4
    cap = capsys.readouterr()
    commands = _command_lines(cap.out + "\n" + cap.err)
    assert commands and all(ANNOTATION.match(c) for c in commands), commands
    validity = next(c for c in commands if "validity_candidate" in c)
    assert "%0A::add-mask::hunter2" in validity  # LF escaped: the mask command stays inside the data
    assert "100%25 sure%250A" in validity  # '%' escaped first, so a literal '%0A' is not a line break
    assert "%0D::notice" in validity


def test_json_dash_writes_stdout_not_a_file(report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    base = honest(report, tmp_path / "base.json", session_samples(seed=1))
    cand = honest(report, tmp_path / "cand.json", session_samples(factor=1.2, seed=2))
    assert main(["gate", str(cand), "--baseline", str(base), "--json", "-", "--drift", "0.05"]) == 1
    cap = capsys.readouterr()
    v = json.loads(cap.out)  # stdout is the verdict JSON and nothing else
    assert v["schema"] == "edgekd.gate/1" and v["verdict"] == "FAIL" and v["exit_code"] == 1
    assert "gate: FAIL (exit 1)" in cap.err  # the table went to stderr
    assert not (tmp_path / "-").exists()


def test_json_to_a_file_still_works(report: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = honest(report, tmp_path / "base.json", session_samples(seed=1))
    js = tmp_path / "v.json"
    # --drift 0: a report against itself has no between-run drift (edgekd.gate.drift)
    assert main(["gate", str(base), "--baseline", str(base), "--json", str(js), "--drift", "0"]) == 0
    assert json.loads(js.read_text())["verdict"] == "PASS"
    assert "gate: PASS (exit 0)" in capsys.readouterr().out


@pytest.mark.parametrize("text", HOSTILE)
def test_console_line_is_one_line_and_no_command(text: str) -> None:
    line = console_line(text)
    assert not re.search(r"[\r\n\x1b\u2028\u2029\x85]", line)
    assert not line.lstrip().startswith(("::", "##["))


def test_console_line_keeps_plain_text() -> None:
    assert console_line("PASS  latency 1.2 ms <= 20 ms") == "PASS  latency 1.2 ms <= 20 ms"
    assert console_line("::x") == "> ::x"
    assert console_line("a\nb") == "a\\nb"


def _hostile_outcome() -> object:
    checks = [Check(f"c{i}", "INVALID", msg, model="m:o,d\n::x", device="d") for i, msg in enumerate(HOSTILE)]
    return outcome(checks)


def test_annotations_escape_data_and_properties() -> None:
    ann = github_annotations(_hostile_outcome())  # type: ignore[arg-type]
    assert len(ann) == len(HOSTILE)
    for a in ann:
        assert ANNOTATION.match(a), a
        assert "title=edgekd gate INVALID%3A m%3Ao%2Cd%0A%3A%3Ax / d / c" in a


def test_junit_and_markdown_survive_hostile_strings(tmp_path: Path) -> None:
    out = _hostile_outcome()
    f = tmp_path / "j.xml"
    f.write_text(junit_xml(out))  # type: ignore[arg-type]
    (suite,) = list(JUnitXml.fromfile(str(f)))  # control characters would make the XML unparseable
    assert suite.errors == len(HOSTILE)
    md = markdown_summary(out)  # type: ignore[arg-type]
    rows = [ln for ln in md.splitlines() if ln.startswith("| m:o")]
    assert len(rows) == len(HOSTILE)  # no string broke a row
    assert "<img" not in md and "&lt;img" in md and "\x1b" not in md
    assert all(len(re.split(r"(?<!\\)\|", row)) == 10 for row in rows)  # 8 cells: no pipe got through
