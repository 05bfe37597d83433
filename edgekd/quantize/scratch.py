"""Run third-party code that writes into the current directory inside a throw-away one.

ONNX Runtime's symbolic shape inference saves ``sym_shape_infer_temp.onnx`` (with a ``<uuid>.data``
external-data file) into the *current working directory* when it cannot infer every shape, and
``quant_pre_process`` calls it. A user running ``edgekd quantize`` in a project folder would find those
files left behind. :func:`scratch_cwd` moves the process into a temporary directory for the call and
removes it afterwards, so nothing lands outside the output folder.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# The working directory is process-wide: two threads switching it at once would each write into the
# other's directory, so the switch is serialised.
_LOCK = threading.RLock()


@contextmanager
def scratch_cwd(prefix: str = "edgekd-scratch-") -> Iterator[Path]:
    """Within the block the current directory is a fresh temporary one (yielded), removed on exit with
    whatever was written into it; the previous directory is restored even on error. Paths handed to the
    code inside must be absolute."""
    with _LOCK, tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        before = os.getcwd()
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(before)
