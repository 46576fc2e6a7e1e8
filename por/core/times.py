"""The one spelling of a time in por documents: RFC 3339 UTC, whole seconds, 'Z'.

Used by the attestation model, key sets and checkpoints alike, so every time a verifier
meets parses the same way. No clock here: callers pass times in.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from por.errors import FormatError

RFC3339_Z_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def format_time(t: datetime) -> str:
    """2026-11-25T03:00:00Z — refuses a naive datetime rather than guessing its zone."""
    if not isinstance(t, datetime) or t.tzinfo is None:
        raise FormatError(f"time {t!r} has no timezone; por documents are UTC")
    return t.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object, *, where: str) -> datetime:
    """Parse the one spelling; anything else (offsets, fractions, dates) is a FormatError."""
    if not isinstance(value, str) or not RFC3339_Z_RE.fullmatch(value):
        raise FormatError(
            f"must be an RFC 3339 UTC time like 2026-01-31T23:59:59Z, got {value!r}", where=where
        )
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as e:
        raise FormatError(f"not a valid time: {value!r}", where=where) from e


_OFFSET_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})")


def parse_time_with_offset(value: object, *, where: str) -> datetime:
    """An RFC 3339 time a person types (`2026-03-01T12:00:00Z`, `2026-03-01T20:00:00+08:00`),
    as UTC; anything without an offset is a FormatError (no guessing a zone)."""
    if not isinstance(value, str) or not _OFFSET_TIME_RE.fullmatch(value):
        raise FormatError(
            f"must be an RFC 3339 time with its offset, like 2026-03-01T12:00:00Z, got {value!r}",
            where=where,
        )
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as e:
        raise FormatError(f"not a valid time: {value!r}", where=where) from e
