#!/usr/bin/env bash
# A simulated Raspberry Pi board: an arm64 Debian bookworm rootfs run by qemu-user (binfmt_misc), edgekd
# installed in it by docker/install-board.sh (the script docker/rpi.Dockerfile runs), and an OpenSSH
# server inside it on a loopback port, so the on-device flow runs from this machine as with a real board.
# Needs root (mount, chroot) and Debian/Ubuntu (apt-get). Latency measured there is QEMU's, never a Pi's:
# edgekd reports such runs as emulated.
#
#   scripts/sim-pi.sh build          # once: packages, binfmt, rootfs, edgekd, user pi, keys (timed)
#   scripts/sim-pi.sh start|stop     # sshd on 127.0.0.1:$PI_SSH_PORT (start prints the ssh options)
#   scripts/sim-pi.sh test           # start, pytest -m emulated tests/emulated, stop (timed)
#   scripts/sim-pi.sh run CMD...     # start, run CMD on this machine, stop
#
# Environment: PI_ROOTFS (/tmp/pi-rootfs), PI_STATE (/tmp/pi-rootfs.state: keys, known_hosts, pid, logs),
# PI_SSH_PORT (2222), EDGEKD_EXTRAS (extras installed on the board; default "litert").
set -euo pipefail
ROOTFS=${PI_ROOTFS:-/tmp/pi-rootfs}
STATE=${PI_STATE:-/tmp/pi-rootfs.state}
PORT=${PI_SSH_PORT:-2222}
EXTRAS=${EDGEKD_EXTRAS-litert}
REPO=$(cd "$(dirname "$0")/.." && pwd)
export PI_ROOTFS=$ROOTFS PI_STATE=$STATE PI_SSH_PORT=$PORT

die() { echo "sim-pi: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (mount, chroot)"

host_packages() {
  if command -v mmdebstrap >/dev/null && { [ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] ||
      [ -x /usr/bin/qemu-aarch64-static ]; }; then return; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static binfmt-support mmdebstrap
}

binfmt() {
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64 2>/dev/null || true
  grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "binfmt_misc has no enabled qemu-aarch64 handler"
}

# /proc for everything; /sys read-only because onnxruntime's cpuinfo aborts without
# /sys/devices/system/cpu/possible (it is the host's sysfs: the doctor still finds no Pi there)
mount_proc() {
  mountpoint -q "$ROOTFS/proc" || mount -t proc proc "$ROOTFS/proc"
  mountpoint -q "$ROOTFS/sys" || mount -t sysfs -o ro sysfs "$ROOTFS/sys"
}
umount_proc() {
  ! mountpoint -q "$ROOTFS/sys" || umount "$ROOTFS/sys"
  ! mountpoint -q "$ROOTFS/proc" || umount "$ROOTFS/proc"
}

build() {
  local t0=$SECONDS
  host_packages
  binfmt
  local pkgs=python3,python3-venv,openssh-server,ca-certificates
  if [ ! -f "$ROOTFS/.sim-pi-base" ]; then
    [ -d "$ROOTFS/etc" ] || mmdebstrap --architectures=arm64 --variant=apt --include=$pkgs bookworm "$ROOTFS" ||
      echo "sim-pi: mmdebstrap stopped; finishing the rootfs in the chroot"
    # resumable: a build interrupted while packages were configured (slow under emulation) goes on here
    cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
    mount_proc
    trap umount_proc EXIT
    chroot "$ROOTFS" dpkg --configure -a
    chroot "$ROOTFS" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q ${pkgs//,/ }
    umount_proc
    trap - EXIT
    touch "$ROOTFS/.sim-pi-base"
  fi
  echo "sim-pi: rootfs ready after $((SECONDS - t0)) s"
  [ "$(chroot "$ROOTFS" uname -m)" = aarch64 ] || die "chroot uname -m is not aarch64"
  rm -rf "$ROOTFS/opt/edgekd-src" && mkdir -p "$ROOTFS/opt/edgekd-src" "$ROOTFS/opt/edgekd-data"
  cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/edgekd" "$ROOTFS/opt/edgekd-src/"
  rm -rf "$ROOTFS/opt/edgekd-data/devices" "$ROOTFS/opt/edgekd-data/recipes"
  cp -r "$REPO/devices" "$REPO/recipes" "$ROOTFS/opt/edgekd-data/"
  install -m 755 "$REPO/docker/install-board.sh" "$ROOTFS/usr/local/bin/install-board.sh"
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  mount_proc
  trap umount_proc EXIT
  # no .pyc compilation at install: emulated, it costs more than the install itself
  # TORCH_VERSION=none: download.pytorch.org is not reachable from these machines and PyPI's aarch64
  # torch is a CUDA build; the board runs exported artifacts, which need no torch
  # this machine's CA bundle: where HTTPS goes through an intercepting proxy, its CA is only there
  cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$ROOTFS/etc/ssl/host-ca.crt"
  [ -f "$ROOTFS/opt/edgekd/.installed" ] || chroot "$ROOTFS" env -u SSL_CERT_DIR EDGEKD_EXTRAS="$EXTRAS" TORCH_VERSION="${TORCH_VERSION:-none}" \
    PIP_NO_COMPILE=1 HOME=/root PIP_CERT=/etc/ssl/host-ca.crt SSL_CERT_FILE=/etc/ssl/host-ca.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/host-ca.crt \
    sh /usr/local/bin/install-board.sh /opt/edgekd-src /opt/edgekd
  touch "$ROOTFS/opt/edgekd/.installed"  # delete it to reinstall
  umount_proc
  trap - EXIT
  echo "sim-pi: edgekd installed after $((SECONDS - t0)) s"
  keys
  echo "sim-pi: build done in $((SECONDS - t0)) s"
}

keys() {
  mkdir -p "$STATE" && chmod 700 "$STATE"
  chroot "$ROOTFS" id pi >/dev/null 2>&1 || chroot "$ROOTFS" useradd --create-home --shell /bin/bash pi
  chroot "$ROOTFS" usermod -p '*' pi  # no password, not locked: key login only
  rm -f "$ROOTFS/etc/ssh/ssh_host_sim_ed25519_key"* "$STATE/id_ed25519"*
  ssh-keygen -q -t ed25519 -N '' -C sim-pi-host -f "$ROOTFS/etc/ssh/ssh_host_sim_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C sim-pi-client -f "$STATE/id_ed25519"
  install -d -m 700 "$ROOTFS/home/pi/.ssh"
  install -m 600 "$STATE/id_ed25519.pub" "$ROOTFS/home/pi/.ssh/authorized_keys"
  chroot "$ROOTFS" chown -R pi:pi /home/pi/.ssh
  echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$ROOTFS/etc/ssh/ssh_host_sim_ed25519_key.pub")" > "$STATE/known_hosts"
  cat > "$ROOTFS/etc/ssh/sshd_sim.conf" <<CONF
Port $PORT
ListenAddress 127.0.0.1
HostKey /etc/ssh/ssh_host_sim_ed25519_key
PidFile /run/sshd-sim.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AuthorizedKeysFile .ssh/authorized_keys
Subsystem sftp /usr/lib/openssh/sftp-server
SetEnv EDGEKD_DEVICES=/opt/edgekd-data/devices EDGEKD_RECIPES=/opt/edgekd-data/recipes
LoginGraceTime 300
CONF
}

ssh_opts() {
  echo "-p $PORT -i $STATE/id_ed25519 -o UserKnownHostsFile=$STATE/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=60"
}

start() {
  [ -x "$ROOTFS/opt/edgekd/bin/edgekd" ] && [ -f "$STATE/known_hosts" ] || die "no board at $ROOTFS: run scripts/sim-pi.sh build"
  [ -f "$STATE/sshd.pid" ] && kill -0 "$(cat "$STATE/sshd.pid")" 2>/dev/null && { echo "sim-pi: sshd already runs"; return; }
  binfmt
  mount_proc
  mkdir -p "$ROOTFS/run/sshd" && chmod 755 "$ROOTFS/run/sshd"
  setsid chroot "$ROOTFS" /usr/sbin/sshd -D -e -f /etc/ssh/sshd_sim.conf >>"$STATE/sshd.log" 2>&1 &
  echo $! > "$STATE/sshd.pid"
  for _ in $(seq 120); do
    if ssh-keyscan -p "$PORT" -T 5 127.0.0.1 >/dev/null 2>&1; then
      echo "sim-pi: sshd up on 127.0.0.1:$PORT; ssh $(ssh_opts) pi@127.0.0.1"
      return
    fi
    kill -0 "$(cat "$STATE/sshd.pid")" 2>/dev/null || { tail -5 "$STATE/sshd.log" >&2; die "sshd exited"; }
    sleep 1
  done
  stop; die "sshd did not answer on 127.0.0.1:$PORT within 120 s"
}

stop() {
  if [ -f "$STATE/sshd.pid" ]; then
    local pid; pid=$(cat "$STATE/sshd.pid")
    kill -- "-$pid" 2>/dev/null || true  # the session's process group: sshd and its per-connection children
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 -- "-$pid" 2>/dev/null || true
    rm -f "$STATE/sshd.pid"
  fi
  umount_proc
}

with_board() {
  start
  trap stop EXIT INT TERM
  "$@"
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  test)
    t0=$SECONDS
    with_board env PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" python3 -m pytest -q -p no:cacheprovider \
      -m emulated "$REPO/tests/emulated" || rc=$?
    echo "sim-pi: test step took $((SECONDS - t0)) s"
    exit "${rc:-0}" ;;
  run) shift; with_board "$@" ;;
  *) sed -n '2,16p' "$0"; exit 2 ;;
esac
