"""Turn any Session into a PredictFn, so task metrics score every runtime with the same code."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from edgekd.runtime.base import Session
from edgekd.tasks.base import PredictFn


def session_predict(session: Session) -> PredictFn:
    """``feeds by name -> outputs in session.outputs order``.

    Feeds are made C-contiguous; a floating feed is cast to the floating dtype the session declares
    (data loaders often yield float64). Any other mismatch (int vs float, shapes, names) is left to
    the session's input check, which reports it.
    """
    specs = {t.name: t for t in session.inputs}

    def predict(feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        ready: dict[str, np.ndarray] = {}
        for name, a in feeds.items():
            arr = np.ascontiguousarray(a)
            spec = specs.get(name)
            if spec is not None and arr.dtype != np.dtype(spec.dtype) and arr.dtype.kind == "f" \
                    and np.dtype(spec.dtype).kind == "f":
                arr = arr.astype(spec.dtype)
            ready[name] = arr
        return session.run(ready)

    return predict
