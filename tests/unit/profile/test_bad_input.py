"""Issue 5, "Bad input": a missing file, a file that is not a model, a runtime not installed, an input shape
that does not fit, an unreachable host, a host with an unknown key. Each must be a clear error, exit code
2, and nothing half-written: neither at --out, nor at the default output path in the working folder, nor
temporary files beside them."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
from support.profile_helpers import make_cnn

from edgekd.cli import main

FAST = ["--sessions", "2", "--iterations", "30", "--warmup-s", "0", "--warmup-iters", "2", "--min-duration-s", "0",
        "--no-progress", "--threads", "1"]


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")}


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder (the cwd, where the default report goes) with a valid model and broken files."""
    monkeypatch.chdir(tmp_path)
    m = make_cnn(tmp_path / "m.onnx")
    make_cnn(tmp_path / "fixed.onnx", dynamic_batch=False)
    import onnx

    dyn = onnx.load(str(m))  # batch and height dynamic: only a dynamic batch has a default (1)
    dyn.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "h"
    onnx.save(dyn, str(tmp_path / "dynh.onnx"))
    (tmp_path / "garbage.onnx").write_bytes(b"this is not protobuf \x00\x01\x02" * 10)
    (tmp_path / "truncated.onnx").write_bytes(m.read_bytes()[: len(m.read_bytes()) // 3])
    (tmp_path / "text.xml").write_text("just text, not an IR\n")
    (tmp_path / "text.bin").write_bytes(b"\x00" * 16)
    (tmp_path / "m.engine").write_bytes(b"\x00" * 64)
    (tmp_path / "out").mkdir()
    return tmp_path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again once the socket is: nothing listens there


CASES = [
    # (id, argv after "profile", message in stderr)
    ("missing-file", ["nope.onnx"], "no such file"),
    ("missing-file-out", ["nope.onnx", "--out", "out/r.json"], "no such file"),
    ("not-a-model", ["garbage.onnx", "--out", "out/r.json"], "not an ONNX model"),
    ("truncated-model", ["truncated.onnx", "--input", "x=1x3x16x16"], "not an ONNX model"),
    ("not-an-ir", ["text.xml", "--out", "out/r.json"], "not an OpenVINO IR"),
    ("unknown-suffix", ["m.onnx.bak"], "cannot tell the runtime"),
    ("shape-dim", ["m.onnx", "--input", "x=1x3x8x8", "--out", "out/r.json"], "dim 2 must be 16"),
    ("shape-batch-fixed", ["fixed.onnx", "--input", "x=2x3x16x16", "--out", "out/r.json"], "dim 0 must be 1"),
    ("shape-missing-dynamic", ["dynh.onnx", "--out", "out/r.json"], "--input x=1x3x1x16"),
    ("shape-unknown-input", ["m.onnx", "--input", "image=1x3x16x16"], "no input 'image'"),
    ("shape-syntax", ["m.onnx", "--input", "x:1x3x16x16"], "expected NAME=DxDxD"),
]


@pytest.mark.parametrize("argv, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_local_input_exits_2_and_writes_nothing(work: Path, capsys: pytest.CaptureFixture[str],
                                                    argv: list[str], message: str) -> None:
    if argv[0] == "m.onnx.bak":
        (work / "m.onnx.bak").write_bytes((work / "m.onnx").read_bytes())
    before = _tree(work)
    assert main(["profile", *argv, *FAST]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err
    assert _tree(work) == before


def test_runtime_not_installed_for_real(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """TensorRT is not installable on these CPU hosts: a .engine needs it. (Skips where it is installed.)"""
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here; test_cli_profile covers this case with a missing module")
    before = _tree(work)
    assert main(["profile", "m.engine", "--out", "out/r.json", *FAST]) == 2
    err = capsys.readouterr().err
    assert "tensorrt" in err and "fix:" in err
    assert _tree(work) == before


def test_openvino_not_installed(work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """An installed-looking runtime whose package import fails (simulated: openvino hidden)."""
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    before = _tree(work)
    assert main(["profile", "m.onnx", "--runtime", "openvino", "--input", "x=1x3x16x16", "--out", "out/r.json",
                 *FAST]) == 2
    assert "openvino" in capsys.readouterr().err
    assert _tree(work) == before


def test_unreachable_host_writes_nothing(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("paramiko", reason="remote profiling needs paramiko (edgekd[remote])")
    (work / "known_hosts").write_text("")
    os.chmod(work / "known_hosts", 0o600)
    before = _tree(work)
    rc = main(["profile", "m.onnx", "--host", f"nobody@127.0.0.1:{_closed_port()}", "--known-hosts", "known_hosts",
               "--out", "out/r.json", "--input", "x=1x3x16x16", *FAST])
    assert rc == 2
    err = capsys.readouterr().err
    assert "unreachable" in err and "127.0.0.1" in err
    assert _tree(work) == before


def test_missing_known_hosts_file_is_refused(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("paramiko", reason="remote profiling needs paramiko (edgekd[remote])")
    before = _tree(work)
    rc = main(["profile", "m.onnx", "--host", f"nobody@127.0.0.1:{_closed_port()}", "--known-hosts", "nope_hosts",
               "--out", "out/r.json", "--input", "x=1x3x16x16", *FAST])
    assert rc == 2
    assert "host keys must be verified" in capsys.readouterr().err
    assert _tree(work) == before


from support.sshd import needs_sshd, ssh_args  # noqa: E402 - the loopback OpenSSH server (fixture: conftest)


@pytest.mark.ssh
@needs_sshd
@pytest.mark.parametrize("known, message", [("empty_known_hosts", "is not in"),
                                            ("wrong_known_hosts", "does not match")])
def test_unknown_host_key_writes_nothing(sshd, work: Path, capsys: pytest.CaptureFixture[str], known: str,  # type: ignore[no-untyped-def]
                                         message: str) -> None:
    before = _tree(work)
    rc = main(["profile", "m.onnx", "--host", f"{sshd['user']}@127.0.0.1:{sshd['port']}", "--out", "out/r.json",
               "--input", "x=1x3x16x16", *ssh_args(sshd, known), *FAST])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err
    if known == "empty_known_hosts":
        assert "never accepted" in err
    assert _tree(work) == before
