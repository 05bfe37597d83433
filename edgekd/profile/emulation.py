"""Is this process running under an emulator? A latency measured under QEMU says nothing about the board
it imitates, so a profile report must say so (and a gate must not read it as the board's).

Evidence, strongest first (any one is enough):
- user-mode QEMU (``qemu-aarch64`` through binfmt_misc, how a simulated Raspberry Pi rootfs runs on
  x86): the kernel is the host's, so ``/proc/cpuinfo`` describes the host CPU (x86 ``vendor_id`` /
  ``flags`` with sse) while ``uname -m`` says aarch64; or QEMU's own synthesized cpuinfo names QEMU;
- full-system QEMU emulation (TCG): the CPU model QEMU synthesizes names QEMU ("QEMU Virtual CPU");
  a DMI or device-tree naming QEMU alone is only a virtual machine (KVM guests say so too, and run
  at the host's speed), reported as kind ``vm`` with ``emulated`` false;
- a binfmt_misc handler for this machine's own architecture that points at a qemu interpreter
  (only visible where binfmt_misc is mounted; on a real board no such handler exists).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path

_ARM = ("aarch64", "arm64", "armv7l", "armv8l", "armv6l")
_X86_MARKERS = ("GenuineIntel", "AuthenticAMD", "HygonGenuine")


@dataclass(frozen=True)
class Emulation:
    emulated: bool
    kind: str  # "qemu-user", "qemu-system", "vm" (virtualized, not emulated), "none"
    evidence: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, object]:
        return {"emulated": self.emulated, "kind": self.kind, "evidence": list(self.evidence)}


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _cpuinfo_evidence(cpuinfo: str, machine: str) -> list[str]:
    found = []
    if machine.lower() in _ARM:
        x86 = [m for m in _X86_MARKERS if m in cpuinfo]
        flags = any(line.startswith("flags") and " sse" in line for line in cpuinfo.splitlines())
        if x86 or flags:
            what = x86[0] if x86 else "x86 'flags' (sse)"
            found.append(f"uname -m is {machine} but /proc/cpuinfo describes an x86 CPU ({what}): "
                         "user-mode emulation")
    return found


def _binfmt_evidence(binfmt: Path, machine: str) -> list[str]:
    arch = {"arm64": "aarch64", "armv7l": "arm", "armv8l": "arm", "armv6l": "arm"}.get(machine, machine)
    entry = binfmt / f"qemu-{arch}"
    text = _read(entry)
    if text.startswith("enabled") and "interpreter" in text:
        interp = next((ln.split(None, 1)[1] for ln in text.splitlines() if ln.startswith("interpreter")), "?")
        return [f"binfmt_misc runs {arch} binaries through {interp}"]
    return []


def detect_emulation(root: Path = Path("/"), machine: str | None = None) -> Emulation:
    """What the files under ``root`` (``/`` in use; a fixture folder in tests) say about emulation."""
    machine = machine or platform.machine()
    user = _cpuinfo_evidence(_read(root / "proc/cpuinfo"), machine)
    user += _binfmt_evidence(root / "proc/sys/fs/binfmt_misc", machine)
    dmi = " ".join(_read(root / p).strip() for p in ("sys/class/dmi/id/sys_vendor",
                                                      "sys/class/dmi/id/product_name",
                                                      "proc/device-tree/model"))
    vm = [f"firmware/DMI names QEMU ({dmi.strip()})"] if "qemu" in dmi.lower() else []
    tcg = ["/proc/cpuinfo names a QEMU CPU model"] if "qemu" in _read(root / "proc/cpuinfo").lower() else []
    if user:
        return Emulation(True, "qemu-user", tuple(user + tcg + vm))
    if tcg:
        return Emulation(True, "qemu-system", tuple(tcg + vm))
    if vm:
        return Emulation(False, "vm", tuple(vm))
    return Emulation(False, "none")
