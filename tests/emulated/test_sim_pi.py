"""The on-device flow against the simulated Raspberry Pi (scripts/sim-pi.sh): doctor on the board over SSH,
``edgekd profile --host`` with the host key verified, then ``edgekd gate`` on the report. Function only:
latency under QEMU is meaningless, and the report must say it was emulated.

Run: ``scripts/sim-pi.sh build`` once (root), then ``scripts/sim-pi.sh test`` (starts and stops sshd).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.emulated

ROOTFS = Path(os.environ.get("PI_ROOTFS", "/tmp/pi-rootfs"))
STATE = Path(os.environ.get("PI_STATE", "/tmp/pi-rootfs.state"))
PORT = int(os.environ.get("PI_SSH_PORT", "2222"))
BOARD_EDGEKD = "/opt/edgekd/bin/edgekd"
HOST = f"pi@127.0.0.1:{PORT}"

if not (ROOTFS / "opt/edgekd/bin/edgekd").exists() or not (STATE / "known_hosts").is_file():
    pytest.skip(f"no simulated board at {ROOTFS} (build it with `sudo scripts/sim-pi.sh build`)",
                allow_module_level=True)
if not (STATE / "sshd.pid").is_file():
    pytest.skip("the simulated board's sshd is not running (run the tests through `scripts/sim-pi.sh test`)",
                allow_module_level=True)


def ssh(*argv: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    cmd = ["ssh", "-p", str(PORT), "-i", str(STATE / "id_ed25519"), "-o", f"UserKnownHostsFile={STATE / 'known_hosts'}",
           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=60", "pi@127.0.0.1", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def edgekd(*argv: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgekd", *argv], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from support.runtime_conformance import export_fixture_onnx

    return export_fixture_onnx(tmp_path_factory.mktemp("sim_pi") / "twohead.onnx")


@pytest.fixture(scope="module")
def board_report(model: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = model.parent / "board.profile.json"
    proc = edgekd("profile", str(model), "--host", HOST, "--known-hosts", str(STATE / "known_hosts"),
                  "--identity", str(STATE / "id_ed25519"), "--remote-edgekd", BOARD_EDGEKD,
                  "--device", "raspberry-pi-5", "--threads", "1", "--input", "image=1x3x16x16",
                  "--input", "extra=1x4", "--sessions", "2", "--iterations", "5", "--warmup-iters", "2",
                  "--warmup-s", "0", "--min-duration-s", "0.2", "--out", str(out))
    return proc, out


def test_the_board_is_arm64() -> None:
    r = ssh("uname", "-m")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "aarch64"


def test_doctor_on_the_board_reports_instead_of_failing() -> None:
    r = ssh(BOARD_EDGEKD, "doctor", "--device", "raspberry-pi-5", "--json", "/tmp/doctor.json")
    assert r.returncode in (0, 1, 2), f"doctor crashed (exit {r.returncode}):\n{r.stderr[-2000:]}"
    assert "Traceback" not in r.stderr
    doc = json.loads(ssh("cat", "/tmp/doctor.json").stdout)
    by = {f["check"]: f for f in doc["findings"]}
    # what a chroot under QEMU cannot read is reported as such, not as an error
    assert by["raspberry pi throttling"]["status"] == "not present"
    assert by["runtime onnxruntime"]["status"] == "ok"
    board = by["board matches raspberry-pi-5"]
    assert board["status"] == "fail" and "not a Raspberry Pi" in board["detail"]


def test_unknown_host_key_is_refused(model: Path, tmp_path: Path) -> None:
    other = tmp_path / "known_hosts"
    other.write_text(f"[127.0.0.1]:{PORT} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvZ7Xh5yJxQb2d0Xz3wQ3Yk7Qm1n2o3p4q5r6s7t8u9\n")
    r = edgekd("profile", str(model), "--host", HOST, "--known-hosts", str(other),
               "--identity", str(STATE / "id_ed25519"), "--remote-edgekd", BOARD_EDGEKD, "--input", "image=1x3x16x16",
               "--input", "extra=1x4", "--out", str(tmp_path / "x.json"), timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "host key" in (r.stdout + r.stderr)
    assert not (tmp_path / "x.json").exists()


def test_profile_over_ssh_is_marked_emulated(board_report: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, out = board_report
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    fp = doc["device"]
    assert fp["arch"] == "aarch64"
    assert fp["emulation"]["emulated"] is True and fp["emulation"]["kind"] == "qemu-user"
    assert doc["valid"] is False and any("emulated" in r for r in doc["invalid_reasons"])
    assert doc["remote"]["samples_sha256_verified"] is True
    assert doc["results"]["latency_ms"]["p50"] > 0


def test_gate_on_the_board_report(board_report: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, out = board_report
    assert proc.returncode == 0, proc.stderr[-2000:]
    verdict = out.parent / "verdict.json"
    r = edgekd("gate", str(out), "--device", "raspberry-pi-5", "--recipe", "gaze", "--json", str(verdict))
    # an emulated profile is never judged as the board's latency: INVALID, saying why
    assert r.returncode == 4, r.stdout[-2000:] + r.stderr[-2000:]
    assert json.loads(verdict.read_text())["verdict"] == "INVALID"
    assert "emulated" in r.stdout + r.stderr
