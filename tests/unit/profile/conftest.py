"""The loopback OpenSSH server fixture of the --host tests (tests/support/sshd.py)."""

from support.sshd import sshd  # noqa: F401  (a fixture, found by name)
