#!/bin/sh
# Install edgekd into a virtual environment on an arm64 board (Raspberry Pi OS / Debian Bookworm).
# One script for both the container (docker/rpi.Dockerfile) and the simulated board
# (scripts/sim-pi.sh runs it inside an arm64 rootfs under qemu-user).
#
# usage: install-board.sh SRC_DIR [VENV]
#   SRC_DIR  a copy of the edgekd source tree (pyproject.toml, README.md, edgekd/)
#   VENV     where the virtual environment goes (default /opt/edgekd)
# environment:
#   EDGEKD_EXTRAS   extras to install (default "openvino,litert"; openvino needs glibc >= 2.35)
#   TORCH_VERSION   the CPU torch to pin (default 2.13.0; an unpinned torch may pull a CUDA build), or
#                   "none": edgekd without torch (profile, doctor and gate of exported artifacts need no
#                   torch; PyPI's aarch64 torch 2.13 is a CUDA build that pulls nvidia-* wheels, so where
#                   download.pytorch.org cannot be reached, "none" is the way to a board install)
#   ORT_VERSION     the onnxruntime to pin (default 1.23.2, the last one measured on a Pi)
set -eu
SRC=${1:?usage: install-board.sh SRC_DIR [VENV]}
VENV=${2:-/opt/edgekd}
EXTRAS=${EDGEKD_EXTRAS-openvino,litert}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
ORT_VERSION=${ORT_VERSION:-1.23.2}
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

case "$(uname -m)" in
  aarch64|arm64) ;;
  *) echo "install-board.sh: this is $(uname -m), not an arm64 board" >&2; exit 2 ;;
esac
python3 -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip
if [ "$TORCH_VERSION" = none ]; then
  # edgekd itself without dependencies, then its requirements and extras except torch
  "$VENV/bin/pip" install --no-deps "$SRC"
  REQS=$(mktemp)
  "$VENV/bin/python" - "$SRC/pyproject.toml" "$EXTRAS" > "$REQS" <<'PY'
import re, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
reqs = list(project["dependencies"])
for extra in filter(None, sys.argv[2].split(",")):
    reqs += project["optional-dependencies"][extra]
print("\n".join(r for r in reqs if re.split(r"[<>=!~ \[;]", r, maxsplit=1)[0].lower() != "torch"))
PY
  "$VENV/bin/pip" install -r "$REQS" "onnxruntime==$ORT_VERSION"
  rm -f "$REQS"
else
  "$VENV/bin/pip" install "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu
  if [ -n "$EXTRAS" ]; then TARGET="$SRC[$EXTRAS]"; else TARGET="$SRC"; fi
  "$VENV/bin/pip" install "$TARGET" "onnxruntime==$ORT_VERSION"
fi
"$VENV/bin/python" -c "import edgekd, onnxruntime; print('edgekd installed; onnxruntime', onnxruntime.__version__)"
"$VENV/bin/edgekd" --help >/dev/null
