"""Runtime backends behind one protocol (see base.py). ``get_runtime(name)`` imports lazily."""

from __future__ import annotations

import importlib

from edgekd.runtime.base import Runtime, Session, SessionOptions, check_feeds

# name -> module; each module defines RUNTIME (an object satisfying the Runtime protocol).
_BACKENDS = {
    "torch": "edgekd.runtime.torch_eager",
    "onnxruntime": "edgekd.runtime.onnxruntime",
    "openvino": "edgekd.runtime.openvino",
    "tensorrt": "edgekd.runtime.tensorrt",
    "litert": "edgekd.runtime.litert",
}


def runtime_names() -> list[str]:
    return list(_BACKENDS)


def get_runtime(name: str) -> Runtime:
    from edgekd.errors import UnknownNameError

    if name not in _BACKENDS:
        raise UnknownNameError("runtime", name, _BACKENDS)
    mod = importlib.import_module(_BACKENDS[name])
    return mod.RUNTIME  # type: ignore[no-any-return]


__all__ = ["Runtime", "Session", "SessionOptions", "check_feeds", "get_runtime", "runtime_names"]
