"""Signed reserve reports and their renderings, kept per app (por.api.routes.reports).

A report is made and signed once per period and state of the store: the key the route
passes names the period and a fingerprint of the attestations in it, so a new
attestation in the period (or a point-in-time one recorded later) makes a new report,
and nothing else does. Renderings (HTML, CSV, PDF per language) are kept by the report's
digest. Both are bounded (least recently used out). No I/O here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class _Lru(Generic[V]):
    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self._making = threading.Lock()  # one maker at a time: a report is signed once

    def get(self, key: Hashable, make: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        with self._making:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            value = make()
            with self._lock:
                self._items[key] = value
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
            return value


class ReportCache:
    """Reports by (period, fingerprint); renderings by (digest, format, language)."""

    def __init__(self, reports: int = 32, renderings: int = 64) -> None:
        self.reports: _Lru[object] = _Lru(reports)
        self.renderings: _Lru[bytes] = _Lru(renderings)


__all__ = ["ReportCache"]
