"""``edgekd profile ... --host user@board``: run the same profiler on a board over SSH (paramiko).

Security: host keys are checked against a known_hosts file with paramiko's ``RejectPolicy`` (an unknown
key is an error, never accepted); every remote argument is quoted with ``shlex.quote``; nothing runs
through a local shell. Integrity: the artifact's SHA-256 is computed here and on the board after the
SFTP copy; the raw samples' SHA-256 is checked on the board against the report, and again here after
the download. Several hosts are profiled concurrently, one thread each.
"""

from __future__ import annotations

import io
import json
import re
import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import DependencyMissingError, EdgekdError, RemoteError
from edgekd.fileio import sha256_bytes, sha256_file

_HOST_RE = re.compile(r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9._-]+|\[[0-9a-fA-F:]+\])(?::(?P<port>\d+))?$")


@dataclass(frozen=True)
class RemoteOptions:
    known_hosts: Path | None = None  # default ~/.ssh/known_hosts
    identity: Path | None = None  # default: the agent / ~/.ssh keys
    edgekd: str = "edgekd"  # the command on the board
    connect_timeout_s: float = 10.0
    plots: bool = False
    markdown: bool = True


@dataclass(frozen=True)
class HostSpec:
    user: str | None
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> HostSpec:
        m = _HOST_RE.match(text.strip())
        if not m:
            raise RemoteError(f"--host {text!r}: expected user@host or user@host:port")
        port = int(m.group("port") or 22)
        if not 0 < port < 65536:
            raise RemoteError(f"--host {text!r}: port {port} is out of range 1-65535")
        return cls(m.group("user"), m.group("host").strip("[]"), port)

    def __str__(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}{':' + str(self.port) if self.port != 22 else ''}"


def _paramiko() -> Any:
    try:
        import paramiko
    except ImportError:
        raise DependencyMissingError("paramiko", "remote", "profiling over SSH (--host)") from None
    return paramiko


def connect(spec: HostSpec, opts: RemoteOptions) -> Any:
    pk = _paramiko()
    kh = Path(opts.known_hosts or Path.home() / ".ssh" / "known_hosts").expanduser()
    if not kh.is_file():
        raise RemoteError(f"--known-hosts {str(kh)!r}: no such file; host keys must be verified",
                          hint=f"after checking the board's key fingerprint, run: ssh-keyscan -p {spec.port} "
                          f"{spec.host} >> {kh}")
    if opts.identity is not None and not Path(opts.identity).expanduser().is_file():
        raise RemoteError(f"--identity {str(opts.identity)!r}: no such file",
                          hint="pass the path of the SSH private key for the board (e.g. ~/.ssh/id_ed25519)")
    client = pk.SSHClient()
    revoked = load_known_hosts(client.get_host_keys(), kh)
    client.set_missing_host_key_policy(_reject_policy(pk, revoked, kh))  # never auto-accept an unknown key
    try:
        client.connect(spec.host, port=spec.port, username=spec.user,
                       key_filename=str(opts.identity) if opts.identity else None,
                       look_for_keys=opts.identity is None, allow_agent=opts.identity is None,
                       timeout=opts.connect_timeout_s, banner_timeout=opts.connect_timeout_s,
                       auth_timeout=opts.connect_timeout_s)
    except pk.BadHostKeyException as exc:
        client.close()
        raise RemoteError(f"--host {spec}: the host key does not match {kh} ({exc}); refusing to connect",
                          hint="if the board was re-installed, remove its old line with "
                          f"`ssh-keygen -R {spec.host} -f {kh}` and verify the new key") from None
    except pk.AuthenticationException as exc:
        client.close()
        raise RemoteError(f"--host {spec}: authentication failed ({exc})",
                          hint="pass --identity KEY or load the key into ssh-agent") from None
    except pk.SSHException as exc:
        client.close()
        if "REVOKED" in str(exc):
            raise RemoteError(f"--host {spec}: {exc}; refusing to connect",
                              hint="a revoked key must not be trusted: ask the board's owner for its new key") from None
        if "not found in known_hosts" in str(exc) or "known_hosts" in str(exc):
            raise RemoteError(f"--host {spec}: its host key is not in {kh}; unknown keys are never accepted",
                              hint=f"verify the key fingerprint on the board, then: ssh-keyscan -p {spec.port} "
                              f"{spec.host} >> {kh}") from None
        raise RemoteError(f"--host {spec}: SSH failed: {exc}") from None
    except (TimeoutError, OSError) as exc:
        client.close()
        raise RemoteError(f"--host {spec}: unreachable ({type(exc).__name__}: {exc})",
                          hint="check the address, the port and that sshd runs on the board") from None
    return client


def load_known_hosts(keys: Any, path: Path) -> set[tuple[str, str]]:
    """Add ``path``'s plain host-key lines to paramiko ``keys``; return the ``@revoked`` keys (type, base64).

    paramiko's own loader fails on OpenSSH's marker lines. ``@revoked`` keys are never trusted, for any host;
    ``@cert-authority`` lines are skipped (host certificates are not verified here, so a host known only through
    a CA is an unknown host and refused). Lines paramiko cannot read (unsupported key types) are skipped, as
    OpenSSH skips them.
    """
    pk = _paramiko()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise RemoteError(f"--known-hosts {str(path)!r}: cannot read it ({exc.strerror})") from None
    revoked: set[tuple[str, str]] = set()
    entries = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            fields = line.split()
            if fields[0] == "@revoked" and len(fields) >= 4:
                revoked.add((fields[2], fields[3]))
            continue  # @cert-authority (and unknown markers): not a plain host key
        try:
            entry = pk.hostkeys.HostKeyEntry.from_line(line)
        except Exception:  # noqa: BLE001  (paramiko raises several types for a malformed line)
            entry = None
        if entry is not None and entry.key is not None:
            entries.append(entry)
    for e in entries:
        if (e.key.get_name(), e.key.get_base64()) in revoked:
            continue  # listed, but revoked: not trusted
        for host in e.hostnames:
            keys.add(host, e.key.get_name(), e.key)
    return revoked


def _reject_policy(pk: Any, revoked: set[tuple[str, str]], kh: Path) -> Any:
    """paramiko's RejectPolicy, saying so when the unknown key is one the known_hosts file revokes."""

    class _Reject(pk.RejectPolicy):  # type: ignore[misc]
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            if (key.get_name(), key.get_base64()) in revoked:
                raise pk.SSHException(f"the host key of {hostname} ({key.get_name()}) is REVOKED in {kh}")
            super().missing_host_key(client, hostname, key)

    return _Reject()


def _exec(client: Any, argv: list[str], spec: HostSpec, timeout: float = 3600.0) -> tuple[int, str, str]:
    cmd = " ".join(shlex.quote(a) for a in argv)
    _, out, err = client.exec_command(cmd, timeout=timeout)
    o = out.read().decode("utf-8", "replace")
    e = err.read().decode("utf-8", "replace")
    return out.channel.recv_exit_status(), o, e


def _remote_sha(client: Any, path: str, spec: HostSpec) -> str:
    rc, out, err = _exec(client, ["sha256sum", "--", path], spec, 600)
    if rc != 0 or not out:
        raise RemoteError(f"--host {spec}: sha256sum {path} failed: {err.strip()[:300]}")
    return out.split()[0]


def remote_args(req: Any, remote_artifact: str, remote_out: str) -> list[str]:
    """The ``edgekd profile`` argv for the board (each element quoted when joined)."""
    a = ["profile", remote_artifact, "--out", remote_out, "--no-progress", "--no-markdown",
         "--precision", req.precision, "--sessions", str(req.sessions), "--iterations", str(req.iterations),
         "--warmup-s", str(req.warmup_s), "--warmup-iters", str(req.warmup_iters),
         "--min-duration-s", str(req.min_duration_s)]
    for flag, v in (("--runtime", req.runtime), ("--device", req.device), ("--threads", req.threads),
                    ("--provider", req.provider)):
        if v is not None:
            a += [flag, str(v)]
    for i in req.inputs:
        a += ["--input", i]
    if req.layers:
        a.append("--layers")
    return a


def profile_host(host: str, req: Any, out_path: Path, opts: RemoteOptions) -> tuple[str, Any, Path]:
    from edgekd.profile.report import ProfileReport

    spec = HostSpec.parse(host)
    artifact = Path(req.artifact)
    if not artifact.is_file():
        raise RemoteError(f"ARTIFACT {str(artifact)!r}: no such file")
    sides = [p for p in (artifact.with_suffix(".bin") if artifact.suffix == ".xml" else None,
                         Path(str(artifact) + ".data")) if p is not None and p.is_file()]
    local_sha = sha256_file(artifact)
    client = connect(spec, opts)
    workdir = None
    try:
        rc, out, err = _exec(client, ["mktemp", "-d", "-t", "edgekd-profile.XXXXXX"], spec, 60)
        if rc != 0:
            raise RemoteError(f"--host {spec}: could not create a work folder: {err.strip()[:300]}")
        workdir = out.strip()
        sftp = client.open_sftp()
        try:
            r_art = f"{workdir}/{artifact.name}"
            sftp.put(str(artifact), r_art)
            for s in sides:
                sftp.put(str(s), f"{workdir}/{s.name}")
            remote_sha = _remote_sha(client, r_art, spec)
            if remote_sha != local_sha:
                raise RemoteError(f"--host {spec}: the artifact's SHA-256 on the board ({remote_sha[:12]}...) "
                                  f"differs from the local one ({local_sha[:12]}...): the copy was corrupted")
            r_out = f"{workdir}/report.json"
            rc, out, err = _exec(client, [opts.edgekd, *remote_args(req, r_art, r_out)], spec)
            if rc != 0:
                tail = (err.strip() or out.strip())[-800:]
                raise RemoteError(f"--host {spec}: `edgekd profile` failed on the board (exit {rc}):\n{tail}",
                                  hint=f"check that {opts.edgekd!r} is installed there (pass --remote-edgekd)")
            with sftp.open(r_out, "rb") as fh:
                doc = json.loads(fh.read().decode("utf-8"))
            rep = ProfileReport.from_json(doc)
            raw = doc.get("raw_samples") or {}
            r_samples = f"{workdir}/{raw.get('path', 'report.samples.npy')}"
            sha_board = _remote_sha(client, r_samples, spec)
            with sftp.open(r_samples, "rb") as fh:
                blob = fh.read()
        finally:
            sftp.close()
    finally:
        if workdir:
            try:
                _exec(client, ["rm", "-rf", "--", workdir], spec, 60)
            except Exception:  # cleanup is best effort; the report is what matters
                pass
        client.close()
    sha_here = sha256_bytes(blob)
    if not (sha_board == sha_here == raw.get("sha256")):
        raise RemoteError(f"--host {spec}: raw samples SHA-256 mismatch (report {str(raw.get('sha256'))[:12]}, "
                          f"board {sha_board[:12]}, downloaded {sha_here[:12]})")
    rep.samples = np.load(io.BytesIO(blob), allow_pickle=False)
    rep.data["artifact"]["path"] = str(artifact)
    rep.data["remote"] = {"host": str(spec), "artifact_sha256_local": local_sha, "artifact_sha256_board": remote_sha,
                          "samples_sha256_verified": True}
    rep.save(out_path, markdown=opts.markdown, plots=opts.plots)
    return str(spec), rep, out_path


def _out_for(out_path: Path, host: str, many: bool) -> Path:
    if not many:
        return out_path
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", host)
    return out_path.with_name(f"{out_path.stem}.{safe}{out_path.suffix}")


def profile_hosts(hosts: list[str], req: Any, out_path: Path, opts: RemoteOptions) -> list[tuple[str, Any, Path]]:
    """Profile on every host concurrently; raises RemoteError listing every host that failed (the reports of
    the hosts that succeeded are kept)."""
    specs = [HostSpec.parse(h) for h in hosts]  # all syntax errors before any connection
    if len({str(s) for s in specs}) != len(specs):
        raise RemoteError(f"--host: the same host is given twice in {hosts}")
    many = len(specs) > 1
    results: list[tuple[str, Any, Path]] = []
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=min(16, len(specs))) as pool:
        futs = [pool.submit(profile_host, str(s), req, _out_for(out_path, str(s), many), opts) for s in specs]
        for s, f in zip(specs, futs, strict=True):
            try:
                results.append(f.result())
            except EdgekdError as exc:
                if not many:
                    raise
                errors.append(f"{s}: {exc}")
    if errors:
        raise RemoteError(f"{len(errors)} of {len(specs)} hosts failed:\n" + "\n".join(f"  - {e}" for e in errors))
    return results
