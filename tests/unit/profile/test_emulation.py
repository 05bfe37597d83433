"""Emulation detection from fixture /proc and /sys trees: a QEMU run must never pass for the board."""

from __future__ import annotations

from pathlib import Path

from edgekd.profile.emulation import detect_emulation

X86_CPUINFO = ("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum\n"
               "flags\t\t: fpu vme de pse tsc msr pae mce sse sse2 avx2\n")
PI5_CPUINFO = ("processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n"
               "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU part\t: 0xd0b\n\nModel\t\t: Raspberry Pi 5 Model B\n")


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_real_pi_is_not_emulated(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"proc/cpuinfo": PI5_CPUINFO, "proc/device-tree/model": "Raspberry Pi 5 Model B Rev 1.0"})
    e = detect_emulation(root, machine="aarch64")
    assert (e.emulated, e.kind, e.evidence) == (False, "none", ())


def test_x86_host_is_not_emulated(tmp_path: Path) -> None:
    assert not detect_emulation(_tree(tmp_path, {"proc/cpuinfo": X86_CPUINFO}), machine="x86_64").emulated


def test_aarch64_over_x86_cpuinfo_is_qemu_user(tmp_path: Path) -> None:
    e = detect_emulation(_tree(tmp_path, {"proc/cpuinfo": X86_CPUINFO}), machine="aarch64")
    assert e.emulated and e.kind == "qemu-user"
    assert "GenuineIntel" in e.evidence[0] and "aarch64" in e.evidence[0]


def test_binfmt_handler_for_own_arch_is_qemu_user(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"proc/cpuinfo": PI5_CPUINFO, "proc/sys/fs/binfmt_misc/qemu-aarch64":
                            "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n"})
    e = detect_emulation(root, machine="aarch64")
    assert e.emulated and "aarch64-binfmt-P" in e.evidence[0]


def test_disabled_binfmt_handler_is_not_evidence(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"proc/cpuinfo": PI5_CPUINFO,
                            "proc/sys/fs/binfmt_misc/qemu-aarch64": "disabled\ninterpreter /usr/bin/qemu\n"})
    assert not detect_emulation(root, machine="aarch64").emulated


def test_dmi_naming_qemu_alone_is_a_vm_not_emulation(tmp_path: Path) -> None:
    # KVM guests report QEMU in DMI and run at the host's speed
    root = _tree(tmp_path, {"proc/cpuinfo": X86_CPUINFO, "sys/class/dmi/id/sys_vendor": "QEMU\n"})
    e = detect_emulation(root, machine="x86_64")
    assert not e.emulated and e.kind == "vm" and "QEMU" in e.evidence[0]


def test_cpuinfo_naming_a_qemu_cpu_is_qemu_system(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"proc/cpuinfo": "processor : 0\nmodel name : QEMU Virtual CPU version 2.5+\n",
                            "sys/class/dmi/id/sys_vendor": "QEMU\n"})
    e = detect_emulation(root, machine="x86_64")
    assert e.emulated and e.kind == "qemu-system" and len(e.evidence) == 2


def test_unreadable_tree_is_not_emulated(tmp_path: Path) -> None:
    assert detect_emulation(tmp_path / "nothing", machine="aarch64").as_dict() == {
        "emulated": False, "kind": "none", "evidence": []}
