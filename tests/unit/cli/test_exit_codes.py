"""The exit-code contract of `edgekd.cli.main` (issue 20): 0 ok, 1 only a judged FAIL, 2 bad input or
environment with a one-line cause and the fix, 3 inconclusive, 4 invalid, 70 an internal error (one summary
line; the traceback only with --debug or EDGEKD_DEBUG=1), 130 interrupted."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

import edgekd.profile.doctor as doctor
from edgekd.cli import main
from edgekd.errors import EXIT_INTERNAL, ConfigError, GateFailed, GateInconclusive, GateInvalid, RemoteError


def _raise(exc: BaseException):  # type: ignore[no-untyped-def]
    def boom(*args: object, **kwargs: object) -> None:
        raise exc

    return boom


@pytest.mark.parametrize("exc, code, needle", [
    (ConfigError("bad --thing", hint="use --thing 1"), 2, "fix: use --thing 1"),
    (RemoteError("host down"), 2, "host down"),
    (GateFailed("p90 over budget"), 1, "p90 over budget"),
    (GateInconclusive("too noisy"), 3, "too noisy"),
    (GateInvalid("throttled"), 4, "throttled"),
    (OSError(errno.ENOSPC, "No space left on device", "/data/out/r.json"), 2, "'/data/out/r.json'"),
    (PermissionError(errno.EACCES, "Permission denied", "/root/x"), 2, "permission denied '/root/x'"),
    (OSError(errno.EROFS, "Read-only file system", "/ro/x"), 2, "read-only"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "f/x"), 2, "not a directory 'f/x'"),
    (FileExistsError(errno.EEXIST, "File exists", "out"), 2, "file exists 'out'"),
    (OSError(errno.EPERM, "Operation not permitted", "/immutable/x"), 2, "immutable"),
    (RuntimeError("Error while serializing: IoError(Os { code: 28 }) (os error 28)"), 2, "no space left"),
    (MemoryError(), 2, "out of memory"),
    (KeyboardInterrupt(), 130, "interrupted"),
])
def test_outcomes_map_to_their_codes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                     exc: BaseException, code: int, needle: str) -> None:
    monkeypatch.setattr(doctor, "run_doctor", _raise(exc))
    assert main(["doctor"]) == code
    err = capsys.readouterr().err
    assert needle in err.lower() if needle.islower() else needle in err, err
    assert "Traceback" not in err


def test_internal_error_is_70_with_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("EDGEKD_DEBUG", raising=False)
    monkeypatch.setattr(doctor, "run_doctor", _raise(ZeroDivisionError("division by zero")))
    assert main(["doctor"]) == EXIT_INTERNAL == 70
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["internal error: ZeroDivisionError: division by zero; re-run with --debug or "
                                        "EDGEKD_DEBUG=1 for the traceback, and report it"]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str) -> None:
    monkeypatch.setattr(doctor, "run_doctor", _raise(ZeroDivisionError("division by zero")))
    if how == "env":
        monkeypatch.setenv("EDGEKD_DEBUG", "1")
        argv = ["doctor"]
    else:
        monkeypatch.delenv("EDGEKD_DEBUG", raising=False)
        argv = ["--debug", "doctor"]
    assert main(argv) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err and err.rstrip().endswith("and report it")


def test_debug_flag_does_not_leak_into_the_next_call(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("EDGEKD_DEBUG", raising=False)
    monkeypatch.setattr(doctor, "run_doctor", _raise(ValueError("x")))
    assert main(["--debug", "doctor"]) == 70
    capsys.readouterr()
    assert main(["doctor"]) == 70
    assert "Traceback" not in capsys.readouterr().err


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    from edgekd import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"edgekd {__version__}"
    for argv in (["-h"], ["--help"], ["profile", "-h"], ["gate", "--help"]):
        assert main(argv) == 0, argv
        assert "Usage" in capsys.readouterr().out


@pytest.mark.parametrize("argv, needle", [
    (["nosuchcmd"], "No such command 'nosuchcmd'"), (["profile"], "Missing argument"),
    (["gate", "r.json", "--thresold", "0.1"], "No such option: --thresold"),
    (["profile", "m.onnx", "--sessions", "many"], "Invalid value for '--sessions'"),
])
def test_usage_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and needle in err and err.startswith("usage error:"), err


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    assert out.count("Usage") == 1 and "profile" in out


def test_messages_with_brackets_are_not_markup(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    monkeypatch.setattr(doctor, "run_doctor", _raise(ConfigError("--out '[/x]' [bold]: bad")))
    assert main(["doctor"]) == 2
    assert "[/x]" in capsys.readouterr().err


def test_cli_works_without_the_click_package() -> None:
    """Typer >= 0.29 vendors click and does not install it (issue 20: `import click` crashed every usage error in
    an environment built from pyproject.toml). Simulated here by making `import click` fail."""
    import subprocess
    import sys

    import edgekd

    code = ("import sys; sys.modules['click'] = None\n"
            "from edgekd.cli import main\n"
            "sys.exit(main(['nosuchcmd']) * 10 + main(['--version']))")
    env = {"PYTHONPATH": str(Path(edgekd.__file__).parents[1]), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 20, res.stdout + res.stderr  # 2 for the usage error, 0 for --version
    assert "Traceback" not in res.stderr
    import re

    src = Path(edgekd.__file__).parent
    imports_click = re.compile(r"^\s*(import click|from click)\b", re.MULTILINE)
    assert not [p for p in src.rglob("*.py") if imports_click.search(p.read_text(encoding="utf-8"))]


def test_typer_is_declared_with_an_upper_bound() -> None:
    import re

    import edgekd

    pyproject = Path(edgekd.__file__).parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("an installed edgekd without its pyproject.toml")
    m = re.search(r'"typer([^"]*)"', pyproject.read_text(encoding="utf-8"))
    assert m and ">=0.29" in m.group(1) and "<" in m.group(1).replace("<=", ""), m
