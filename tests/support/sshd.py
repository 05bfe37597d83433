"""A REAL OpenSSH server on 127.0.0.1 for the --host tests (the "board" is this machine).

CI must install the server (Debian/Ubuntu: `apt-get install -y openssh-server`); without /usr/sbin/sshd the
tests that use the fixture skip with that reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
needs_sshd = pytest.mark.skipif(SSHD is None or shutil.which("ssh-keygen") is None,
                                reason="OpenSSH server not installed (apt-get install -y openssh-server)")

def free_port() -> int:
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
    port = free_port()
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
    # The board runs `edgekd`: this Python's, whatever is first on PATH over SSH.
    wrapper = d / "edgekd-remote"
    wrapper.write_text("#!/bin/sh\nexec " + sys.executable + " -m edgekd \"$@\"\n")
    wrapper.chmod(0o755)
    yield {"dir": d, "port": port, "user": __import__("getpass").getuser()}
    proc.terminate()
    proc.wait(timeout=10)


def ssh_args(s: dict, known: str = "known_hosts") -> list[str]:  # type: ignore[type-arg]
    return ["--known-hosts", str(s["dir"] / known), "--identity", str(s["dir"] / "user"),
            "--remote-edgekd", str(s["dir"] / "edgekd-remote")]
