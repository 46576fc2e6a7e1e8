"""Strict readers for the JSON documents por signs (attestation, reserve report).

One set of rules for every signed document: an object has exactly its keys, strings are
non-empty and bounded, integers are integers (never booleans), lists are lists. Each
raises a FormatError naming `where` (the dotted path in the document). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from por.errors import FormatError

HEX32_RE = re.compile(r"[0-9a-f]{64}")


def obj(d: object, keys: Sequence[str], where: str, optional: Sequence[str] = ()) -> dict[str, Any]:
    """Check that `d` is an object with exactly `keys` (plus any of `optional`)."""
    if not isinstance(d, dict):
        raise FormatError(f"must be an object, got {type(d).__name__}", where=where)
    missing = [k for k in keys if k not in d]
    if missing:
        raise FormatError(f"missing field(s) {', '.join(missing)}", where=where)
    unknown = sorted(set(d) - set(keys) - set(optional))
    if unknown:
        raise FormatError(f"unknown field(s) {', '.join(unknown)}", where=where)
    return d


def text(
    v: object,
    where: str,
    *,
    pattern: re.Pattern[str] | None = None,
    choices: Sequence[str] | None = None,
    max_len: int = 256,
) -> str:
    """A non-empty string of at most `max_len` characters, matching `pattern` / `choices`."""
    if not isinstance(v, str) or not v or len(v) > max_len:
        raise FormatError(
            f"must be a non-empty string of at most {max_len} characters, got {v!r}", where=where
        )
    if pattern is not None and not pattern.fullmatch(v):
        raise FormatError(f"malformed value {v!r}", where=where)
    if choices is not None and v not in choices:
        raise FormatError(f"must be one of {', '.join(choices)}, got {v!r}", where=where)
    return v


def integer(v: object, where: str, *, minimum: int = 0) -> int:
    """An integer (not a boolean) of at least `minimum`."""
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise FormatError(f"must be an integer >= {minimum}, got {v!r}", where=where)
    return v


def hex32(v: object, where: str) -> str:
    """32 bytes as 64 lowercase hex digits."""
    return text(v, where, pattern=HEX32_RE)


def array(v: object, where: str) -> list[Any]:
    """A JSON list."""
    if not isinstance(v, list):
        raise FormatError("must be a list", where=where)
    return v


__all__ = ["HEX32_RE", "array", "hex32", "integer", "obj", "text"]
