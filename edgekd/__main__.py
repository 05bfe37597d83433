"""``python -m edgekd`` runs the CLI."""

from edgekd.cli import _entry

_entry()
