"""Progress lines for long steps (holder indexing, tree builds, publishing), at a sane rate.

`Progress` logs at most one line every `every_s` seconds while a step runs, with
throughput (per second) for each counter, and `done()` logs one summary line. Steps that
finish within `every_s` log only the summary. Stdlib only: the chain readers use it
without importing the service.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class Progress:
    def __init__(
        self,
        log: logging.Logger,
        what: str,
        *,
        total: int | None = None,
        unit: str = "",
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._what = what
        self._total = total
        self._unit = unit
        self._every_s = every_s
        self._clock = clock
        self._started = self._last = clock()
        self.counts: dict[str, int] = {}

    def _rates(self, elapsed: float) -> str:
        if elapsed <= 0:
            return ", ".join(f"{v} {k}" for k, v in self.counts.items())
        return ", ".join(f"{v} {k} ({v / elapsed:.0f}/s)" for k, v in self.counts.items())

    def update(self, done: int | None = None, **counts: int) -> None:
        """Set the counters (absolute values); log when `every_s` has passed."""
        self.counts.update(counts)
        now = self._clock()
        if now - self._last < self._every_s:
            return
        self._last = now
        elapsed = now - self._started
        share = ""
        if done is not None and self._total:
            share = f" {done}/{self._total} {self._unit} ({100 * done / self._total:.0f}%)"
        self._log.info("%s:%s %s, %.0f s so far", self._what, share, self._rates(elapsed), elapsed)

    def done(self, detail: str = "") -> float:
        """Log the summary line; returns the elapsed seconds."""
        elapsed = self._clock() - self._started
        rates = self._rates(elapsed)
        self._log.info(
            "%s: done in %.2f s%s%s",
            self._what,
            elapsed,
            f", {rates}" if rates else "",
            f"; {detail}" if detail else "",
        )
        return elapsed
