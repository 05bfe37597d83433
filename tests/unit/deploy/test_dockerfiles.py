"""Static checks of docker/*.Dockerfile: valid instructions, pinned bases, non-root user, no secrets,
pip extras that exist in pyproject.toml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
                "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


def parse(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word, rest.strip()))
        buf = ""
    assert not buf, f"{path.name}: dangling line continuation"
    return out


def test_expected_images_exist() -> None:
    assert {p.name for p in DOCKERFILES} >= {"jetson.Dockerfile", "rpi.Dockerfile", "desktop-gpu.Dockerfile",
                                             "host-cpu.Dockerfile"}


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile(path: Path) -> None:
    ins = parse(path)
    words = [w for w, _ in ins]
    assert all(w in INSTRUCTIONS for w in words), [w for w in words if w not in INSTRUCTIONS]
    assert words[0] == "FROM"
    froms = [a for w, a in ins if w == "FROM"]
    assert len(froms) >= 2, "multi-stage: a build stage and a small final stage"
    for a in froms:
        image = a.split()[0]
        assert "@sha256:" in image or re.search(r":[\w.-]+$", image.split("/")[-1]), f"unpinned base {image}"
        assert not image.endswith(":latest"), image
    header = path.read_text().splitlines()[:8]
    assert any("docker build" in h for h in header) and any("docker run" in h for h in header)
    # the final stage: non-root USER before ENTRYPOINT ["edgekd"]
    last_from = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    final = ins[last_from:]
    users = [(i, a) for i, (w, a) in enumerate(final) if w == "USER"]
    entry = [(i, a) for i, (w, a) in enumerate(final) if w == "ENTRYPOINT"]
    assert users and entry and users[-1][0] < entry[-1][0]
    assert users[-1][1] not in ("root", "0", "0:0")
    assert entry[-1][1] == '["edgekd"]'
    assert not any(w == "RUN" for w, _ in final[users[-1][0]:]), "no RUN after the final USER (the image is finished as root, run as the user)"
    # no secrets baked in
    for w, a in ins:
        if w in ("ENV", "ARG"):
            assert not re.search(r"(KEY|TOKEN|PASSWORD|SECRET)\w*\s*=", a, re.I), a
    # pinned pip installs and extras that exist
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    for w, a in ins:
        if w == "RUN" and "pip install" in a:
            for m in re.finditer(r'"?\.\[([\w,-]+)\]"?', a):
                assert set(m.group(1).split(",")) <= extras, m.group(0)
            for pkg in re.findall(r"(?<![\w./-])(torch|onnxruntime-gpu|onnxruntime)(?![\w-]|==)", a):
                pytest.fail(f"{path.name}: {pkg} installed without a pinned version: {a}")
