"""--host against a REAL OpenSSH server started on 127.0.0.1 by the test (the "board" is this machine).

CI must install the server (Debian/Ubuntu: `apt-get install -y openssh-server`); without /usr/sbin/sshd
these tests skip with that reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.profile_helpers import make_cnn
from support.sshd import free_port, needs_sshd, ssh_args

from edgekd.cli import main
from edgekd.profile.remote import HostSpec, remote_args

FAST = ["--sessions", "2", "--iterations", "30", "--warmup-s", "0", "--warmup-iters", "2", "--min-duration-s", "0",
        "--no-progress", "--threads", "1", "--input", "x=1x3x16x16"]


@pytest.mark.ssh
@needs_sshd
def test_remote_profile_roundtrip(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    m = make_cnn(tmp_path / "model with space.onnx")
    out = tmp_path / "out" / "r.json"
    rc = main(["profile", str(m), "--host", f"{sshd['user']}@127.0.0.1:{sshd['port']}", "--out", str(out),
               *ssh_args(sshd), *FAST])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["schema"] == "edgekd.profile/1" and d["remote"]["samples_sha256_verified"] is True
    assert d["remote"]["artifact_sha256_local"] == d["remote"]["artifact_sha256_board"] == d["artifact"]["sha256"]
    assert (out.parent / "r.samples.npy").is_file()
    from edgekd.profile.report import ProfileReport

    assert ProfileReport.load(out).samples.shape[0] == 2


@pytest.mark.ssh
@needs_sshd
def test_fleet_profiles_concurrently(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    m = make_cnn(tmp_path / "m.onnx")
    out = tmp_path / "r.json"
    hosts = [f"{sshd['user']}@127.0.0.1:{sshd['port']}", f"{sshd['user']}@localhost:{sshd['port']}"]
    rc = main(["profile", str(m), "--host", hosts[0], "--host", hosts[1], "--out", str(out), *ssh_args(sshd), *FAST])
    assert rc == 0
    assert sorted(p.name for p in tmp_path.glob("r.*.json")) == [
        f"r.{sshd['user']}_127.0.0.1_{sshd['port']}.json", f"r.{sshd['user']}_localhost_{sshd['port']}.json"]


@pytest.mark.ssh
@needs_sshd
@pytest.mark.parametrize("known, message", [("empty_known_hosts", "is not in"), ("wrong_known_hosts", "does not match")])
def test_unknown_or_wrong_host_key_is_refused(sshd, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              known: str, message: str) -> None:  # type: ignore[no-untyped-def]
    m = make_cnn(tmp_path / "m.onnx")
    rc = main(["profile", str(m), "--host", f"{sshd['user']}@127.0.0.1:{sshd['port']}", "--out",
               str(tmp_path / "r.json"), *ssh_args(sshd, known), *FAST])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.ssh
@needs_sshd
def test_unreachable_host(sshd, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    m = make_cnn(tmp_path / "m.onnx")
    rc = main(["profile", str(m), "--host", f"{sshd['user']}@127.0.0.1:{free_port()}", "--out",
               str(tmp_path / "r.json"), *ssh_args(sshd), *FAST])
    assert rc == 2
    assert "unreachable" in capsys.readouterr().err


def test_host_parsing_and_quoting() -> None:
    assert HostSpec.parse("pi@board.local:2222") == HostSpec("pi", "board.local", 2222)
    assert HostSpec.parse("board") == HostSpec(None, "board", 22)
    from edgekd.errors import RemoteError

    with pytest.raises(RemoteError, match="expected user@host"):
        HostSpec.parse("pi@bo ard;rm -rf /")
    from edgekd.profile.local import LocalProfileRequest

    argv = remote_args(LocalProfileRequest(Path("a b.onnx"), inputs=("x=1x3",)), "/tmp/w/a b;rm.onnx", "/tmp/w/r.json")
    import shlex

    assert shlex.split(" ".join(shlex.quote(a) for a in argv))[1] == "/tmp/w/a b;rm.onnx"
