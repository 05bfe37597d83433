"""--host against a REAL OpenSSH server started on 127.0.0.1 by the test (the "board" is this machine).

CI must install the server (Debian/Ubuntu: `apt-get install -y openssh-server`); without /usr/sbin/sshd
these tests skip with that reason."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _profile_helpers import make_cnn

from edgekd.cli import main
from edgekd.profile.remote import HostSpec, remote_args

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
needs_sshd = pytest.mark.skipif(SSHD is None or shutil.which("ssh-keygen") is None,
                                reason="OpenSSH server not installed (apt-get install -y openssh-server)")
FAST = ["--sessions", "2", "--iterations", "30", "--warmup-s", "0", "--warmup-iters", "2", "--min-duration-s", "0",
        "--no-progress", "--threads", "1", "--input", "x=1x3x16x16"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if SSHD is None:
        pytest.skip("OpenSSH server not installed (apt-get install -y openssh-server)")
    d = tmp_path_factory.mktemp("sshd")
    os.chmod(d, 0o700)
    for name in ("host", "user", "other_host"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "user.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = _free_port()
    import getpass

    cfg = d / "sshd_config"
    cfg.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d / 'host'}
PidFile {d / 'sshd.pid'}
AuthorizedKeysFile {d / 'authorized_keys'}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
AllowUsers {getpass.getuser()}
Subsystem sftp internal-sftp
""")
    if not Path("/run/sshd").is_dir():
        try:
            Path("/run/sshd").mkdir(mode=0o755)
        except OSError:
            pytest.skip("sshd needs its privilege-separation folder /run/sshd, which cannot be created here")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.skip(f"sshd did not start: {proc.stderr.read().decode()[-500:] if proc.stderr else ''}")
            time.sleep(0.1)
    hostpub = (d / "host.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {hostpub[0]} {hostpub[1]}\n"
                                   f"[localhost]:{port} {hostpub[0]} {hostpub[1]}\n")
    other = (d / "other_host.pub").read_text().split()
    (d / "wrong_known_hosts").write_text(f"[127.0.0.1]:{port} {other[0]} {other[1]}\n")
    (d / "empty_known_hosts").write_text("")
    # The board runs `edgekd`. Until edgekd's ONNX Runtime backend exists, a wrapper adds the test adapter.
    wrapper = d / "edgekd-remote"
    helpers = Path(__file__).parent
    wrapper.write_text(
        "#!/bin/sh\nexec " + sys.executable + " -c \"import sys, importlib.util; sys.path.insert(0, '"
        + str(helpers) + "'); import edgekd.runtime as rt; "
        "rt._BACKENDS['onnxruntime'] = 'edgekd.runtime.onnxruntime' if importlib.util.find_spec("
        "'edgekd.runtime.onnxruntime') else '_profile_helpers'; "
        "from edgekd.cli import main; sys.exit(main(sys.argv[1:]))\" \"$@\"\n")
    wrapper.chmod(0o755)
    yield {"dir": d, "port": port, "user": __import__("getpass").getuser()}
    proc.terminate()
    proc.wait(timeout=10)


def _args(s: dict, known: str = "known_hosts") -> list[str]:  # type: ignore[type-arg]
    return ["--known-hosts", str(s["dir"] / known), "--identity", str(s["dir"] / "user"),
            "--remote-edgekd", str(s["dir"] / "edgekd-remote")]


@pytest.mark.ssh
@needs_sshd
def test_remote_profile_roundtrip(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    m = make_cnn(tmp_path / "model with space.onnx")
    out = tmp_path / "out" / "r.json"
    rc = main(["profile", str(m), "--host", f"{sshd['user']}@127.0.0.1:{sshd['port']}", "--out", str(out),
               *_args(sshd), *FAST])
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
    rc = main(["profile", str(m), "--host", hosts[0], "--host", hosts[1], "--out", str(out), *_args(sshd), *FAST])
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
               str(tmp_path / "r.json"), *_args(sshd, known), *FAST])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.ssh
@needs_sshd
def test_unreachable_host(sshd, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    m = make_cnn(tmp_path / "m.onnx")
    rc = main(["profile", str(m), "--host", f"{sshd['user']}@127.0.0.1:{_free_port()}", "--out",
               str(tmp_path / "r.json"), *_args(sshd), *FAST])
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
