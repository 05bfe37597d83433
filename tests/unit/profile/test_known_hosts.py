"""known_hosts lines paramiko cannot read itself: ``@revoked`` keys are never trusted (for any host),
``@cert-authority`` lines are skipped (host certificates are not verified, so such a host is unknown and
refused), malformed lines are skipped; none of them crashes `edgekd profile --host`."""

from __future__ import annotations

from pathlib import Path

import pytest

paramiko = pytest.importorskip("paramiko", reason="remote profiling needs paramiko (edgekd[remote])")

from edgekd.profile.remote import _reject_policy, load_known_hosts  # noqa: E402


class _Client:
    """What RejectPolicy needs of an SSHClient: a logger."""

    def _log(self, *args: object) -> None:
        pass


def _key() -> object:
    return paramiko.ECDSAKey.generate()


def _line(host: str, key: object) -> str:
    return f"{host} {key.get_name()} {key.get_base64()}"  # type: ignore[attr-defined]


def test_revoked_key_is_dropped_and_named(tmp_path: Path) -> None:
    good, bad = _key(), _key()
    kh = tmp_path / "known_hosts"
    kh.write_text("\n".join([
        "# comment", "", _line("board1", good), _line("board2", bad),
        f"@revoked * {bad.get_name()} {bad.get_base64()}",  # type: ignore[attr-defined]
        f"@cert-authority *.example {good.get_name()} {good.get_base64()}",  # type: ignore[attr-defined]
        "this is not a known_hosts line", "board3 ssh-ed25519 not-base64!!",
    ]) + "\n")
    hk = paramiko.HostKeys()
    revoked = load_known_hosts(hk, kh)
    assert set(hk.keys()) == {"board1"}  # board2's only key is revoked; the CA line is no host key
    assert revoked == {(bad.get_name(), bad.get_base64())}  # type: ignore[attr-defined]
    policy = _reject_policy(paramiko, revoked, kh)
    with pytest.raises(paramiko.SSHException, match="REVOKED"):
        policy.missing_host_key(_Client(), "board2", bad)
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        policy.missing_host_key(_Client(), "board9", _key())


def test_cli_with_marker_lines_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from edgekd.cli import main

    k = _key()
    kh = tmp_path / "kh"
    kh.write_text(f"@revoked 127.0.0.1 {k.get_name()} {k.get_base64()}\n"  # type: ignore[attr-defined]
                  f"@cert-authority * {k.get_name()} {k.get_base64()}\n")  # type: ignore[attr-defined]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.onnx").write_bytes(b"")  # never read: the connection fails first
    rc = main(["profile", "m.onnx", "--host", "nobody@127.0.0.1:1", "--known-hosts", str(kh), "--input", "x=1x3x8x8"])
    err = capsys.readouterr().err
    assert rc == 2 and "unreachable" in err and "Traceback" not in err
