"""Deadlines for network reads and for whole attestation runs (issue 12).

A read timeout alone does not bound a read: a server that sends one byte every few
seconds is never silent long enough for it to fire. So every HTTP read here has three
limits: connect, read (silence between bytes) and total — the body is read in chunks and
the total is checked after each, so a trickle is cut off at the total (late by at most
one read timeout, when the server goes fully silent just before it).

A run has a deadline too (`RunDeadline`, `[schedule] run_deadline_s`). While one is in
force (`run_deadline(...)`; one run at a time per process, so it is module state, seen
by every thread the run fans out to), each read's total is also capped by what is left
of the run, and a read that runs into it is remembered by name, so the run can say which
source was slow. `cancel(reason)` (SIGTERM) ends the run the same way, at once.

No I/O of its own: `read_body` reads from the httpx response it is given.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from por.errors import PorError, SourceError


class DeadlineError(SourceError):
    """A read or a run went past its time limit; `where` names the slow source."""


class RunCancelledError(PorError):
    """The run was stopped before recording (its deadline, or the service stopping)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Connect, read (silence between bytes) and total seconds for one HTTP exchange."""

    connect_s: float = 5.0
    read_s: float = 10.0
    total_s: float = 30.0

    @classmethod
    def of(cls, total_s: float) -> Timeouts:
        """Timeouts from one configured figure: the total, with connect/read under it."""
        return cls(connect_s=min(5.0, total_s), read_s=min(10.0, total_s), total_s=total_s)


class RunDeadline:
    """The time limit of one run, and the sources that ran into it."""

    def __init__(
        self, seconds: float, *, clock: Callable[[], float] = time.monotonic, label: str = "run"
    ) -> None:
        self.seconds = seconds
        self.label = label
        self._clock = clock
        self._ends = clock() + seconds
        self._lock = threading.Lock()
        self.cancelled: str | None = None
        self.slow: list[str] = []  # sources cut off by this deadline, in order

    def remaining(self) -> float:
        if self.cancelled is not None:
            return 0.0
        return max(0.0, self._ends - self._clock())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def cancel(self, reason: str) -> None:
        self.cancelled = reason

    def note_slow(self, where: str) -> None:
        with self._lock:
            if where not in self.slow:
                self.slow.append(where)

    def check(self, phase: str) -> None:
        """Raise RunCancelledError when the deadline passed or the run was cancelled."""
        if not self.expired():
            return
        slow = "; ".join(self.slow) if self.slow else "no single read; the run as a whole"
        if self.cancelled is not None:
            raise RunCancelledError(
                f"{self.label} cancelled ({self.cancelled}) during {phase}; nothing recorded "
                f"(in progress: {slow})"
            )
        raise RunCancelledError(
            f"{self.label} passed its deadline of {self.seconds:g} s during {phase}; "
            f"nothing recorded; slow source: {slow}"
        )


_current: RunDeadline | None = None
_current_lock = threading.Lock()


def current() -> RunDeadline | None:
    return _current


@contextmanager
def run_deadline(deadline: RunDeadline) -> Iterator[RunDeadline]:
    """Put `deadline` in force for every read until the block ends."""
    global _current  # noqa: PLW0603 - one run at a time per process (see module docstring)
    with _current_lock:
        previous, _current = _current, deadline
    try:
        yield deadline
    finally:
        with _current_lock:
            _current = previous


@contextmanager
def lifted_deadline() -> Iterator[None]:
    """No run deadline inside the block (a recorded run's publishing)."""
    global _current  # noqa: PLW0603 - see run_deadline
    with _current_lock:
        previous, _current = _current, None
    try:
        yield
    finally:
        with _current_lock:
            _current = previous


def cancel_current(reason: str) -> bool:
    """Cancel the run in progress (if any); its reads stop at their next chunk."""
    d = _current
    if d is None:
        return False
    d.cancel(reason)
    return True


def httpx_timeout(t: Timeouts) -> Any:
    """An httpx.Timeout whose read/write/pool limits also respect the run's remaining time."""
    import httpx

    total = _budget(t.total_s)
    return httpx.Timeout(
        connect=max(0.01, min(t.connect_s, total)),
        read=max(0.01, min(t.read_s, total)),
        write=max(0.01, min(t.read_s, total)),
        pool=max(0.01, min(t.connect_s, total)),
    )


def _budget(total_s: float) -> float:
    d = _current
    return total_s if d is None else min(total_s, d.remaining())


def read_body(
    response: Any,
    *,
    timeouts: Timeouts,
    started: float,
    where: str,
    max_bytes: int | None = None,
    error: type[PorError] = DeadlineError,
) -> bytes:
    """The body of a streamed httpx response, within the total time since `started`
    (time.monotonic) and the run's deadline; at most `max_bytes` when given.

    Raises `error` (a DeadlineError unless the caller names its own source error) when
    the total or the run's deadline passes, naming `where`.
    """
    d = _current
    limit = started + timeouts.total_s
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():  # decoded; a body already read comes at once
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise error(f"response larger than {max_bytes} bytes", where=where)
        chunks.append(chunk)
        now = time.monotonic()
        if now > limit:
            raise _too_slow(error, where, f"total timeout of {timeouts.total_s:g} s", size)
        if d is not None and d.expired():
            d.note_slow(where)
            why = "run cancelled" if d.cancelled else f"run deadline of {d.seconds:g} s"
            raise _too_slow(error, where, why, size)
    return b"".join(chunks)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpAnswer:
    status_code: int
    headers: Any  # httpx.Headers
    body: bytes


def http_exchange(
    client: Any,
    method: str,
    url: str,
    *,
    timeouts: Timeouts,
    where: str,
    error: type[PorError],
    max_bytes: int | None = None,
    failure: str = "request failed",
    **request: Any,
) -> HttpAnswer:
    """One request through httpx `client` within connect/read/total limits and the run's
    deadline; the body is read in chunks (and refused past `max_bytes` as it streams).
    Every failure is `error(...)` naming `where`."""
    import httpx

    before_request(where, error)
    started = time.monotonic()
    try:
        with client.stream(method, url, timeout=httpx_timeout(timeouts), **request) as r:
            body = read_body(
                r,
                timeouts=timeouts,
                started=started,
                where=where,
                max_bytes=max_bytes,
                error=error,
            )
            return HttpAnswer(status_code=r.status_code, headers=r.headers, body=body)
    except httpx.HTTPError as e:
        if isinstance(e, httpx.TimeoutException):
            timed_out(where)
        raise error(f"{failure}: {type(e).__name__}: {e}"[:500], where=where) from e


def _too_slow(error: type[PorError], where: str, why: str, size: int) -> PorError:
    return error(f"too slow: {why} passed after {size} bytes of the answer", where=where)


def before_request(where: str, error: type[PorError] = DeadlineError) -> None:
    """Refuse to start a request when the run's deadline has passed (naming the source)."""
    d = _current
    if d is not None and d.expired():
        d.note_slow(where)
        why = "run cancelled" if d.cancelled else f"run deadline of {d.seconds:g} s"
        raise error(f"not sent: {why} passed", where=where)


def timed_out(where: str) -> None:
    """Remember `where` as slow when a read timed out while the run's deadline passed."""
    d = _current
    if d is not None and d.expired():
        d.note_slow(where)


NONCE_PATTERN = "[0-9a-f]{32}"


def signed_get(
    url: str,
    *,
    nonce: str,
    transport: Any,
    timeout_s: float,
    max_bytes: int,
    signature_header: str,
    source: str,
    error: type[PorError],
) -> tuple[bytes, str | None]:
    """GET `url?nonce=…` from a signed source API (custodian, ledger): the body (capped
    while it streams) and its signature header, within connect/read/total limits and the
    run's deadline. The nonce must be 32 lowercase hex characters (`source` names the
    configured source in that error); anything but HTTP 200 is `error` naming the URL.
    The caller verifies the signature and the body."""
    import re

    import httpx

    if not re.fullmatch(NONCE_PATTERN, nonce):
        raise error("nonce must be 32 lowercase hex characters", where=source)
    with httpx.Client(transport=transport, follow_redirects=False) as client:
        resp = http_exchange(
            client,
            "GET",
            url,
            timeouts=Timeouts.of(timeout_s),
            where=url,
            error=error,
            max_bytes=max_bytes,
            params={"nonce": nonce},
            headers={"X-Request-Id": nonce},
        )
    if resp.status_code != 200:
        raise error(f"HTTP {resp.status_code}", where=url)
    return resp.body, resp.headers.get(signature_header)


__all__ = [
    "NONCE_PATTERN",
    "DeadlineError",
    "HttpAnswer",
    "RunCancelledError",
    "RunDeadline",
    "Timeouts",
    "before_request",
    "cancel_current",
    "current",
    "http_exchange",
    "httpx_timeout",
    "lifted_deadline",
    "read_body",
    "run_deadline",
    "signed_get",
    "timed_out",
]
