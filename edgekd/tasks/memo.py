"""The one in-memory memo cache the tasks keep their generated splits in.

Generating a synthetic split (rendering screens, flying a simulator) takes seconds to minutes,
and the pipeline asks for the same split several times (training, calibration, parity, metrics),
sometimes from data-loader threads. Each task keeps a :class:`Memo` keyed by what determines the
split (its config fields, the split name, the seed); the oldest entry is dropped past ``max_items``
so a long test session does not keep every split it ever made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Memo(Generic[V]):
    """A thread-safe, bounded (first in, first out) cache: ``memo.get(key, make)``."""

    def __init__(self, max_items: int) -> None:
        if max_items < 1:
            raise ValueError(f"Memo(max_items={max_items}): must be at least 1")
        self.max_items = max_items
        self._items: dict[Hashable, V] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], V]) -> V:
        """The value cached under ``key``, made (outside the lock) and remembered on a miss.

        ``make`` runs without the lock held, so a split generator may itself use the memo (a
        shifted test split is made from the test split). Two threads missing the same key at once
        may both make it; the values are equal (seeded) and the later one is kept."""
        with self._lock:
            if key in self._items:
                return self._items[key]
        value = make()
        with self._lock:
            if key not in self._items and len(self._items) >= self.max_items:
                self._items.pop(next(iter(self._items)))
            self._items[key] = value
        return value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


__all__ = ["Memo"]
