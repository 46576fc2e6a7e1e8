"""RFC 8785 (JCS) canonical JSON: the only producer of bytes that por signs or hashes.

RFC 8785 serialises numbers as IEEE-754 doubles, so amounts must be strings; this
module refuses floats outright and integers beyond 2^53 (which a double cannot hold
exactly), so a document cannot silently change value on the way to its signature.
No I/O here.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from por.errors import FormatError

_MAX_SAFE_INT = 2**53 - 1


def _check_text(text: str, path: str, what: str) -> None:
    # RFC 8785 §3.2.2.2 / RFC 8259 §8.1: JSON text is Unicode, so a lone UTF-16 surrogate
    # (which Python strings can hold) has no serialisation. rfc8785 catches it in values
    # but lets a UnicodeEncodeError escape for object keys; refuse both here, by path.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise FormatError(
            f"{what} contains a lone surrogate U+{ord(text[e.start]):04X} at offset {e.start}",
            where=path,
        ) from e


def _check(value: Any, path: str) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, str):
        _check_text(value, path, "string")
        return
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise FormatError(
                "integer beyond 2^53 cannot be canonical JSON; use a decimal string",
                where=path,
            )
        return
    if isinstance(value, float):
        raise FormatError("floats are not allowed in canonical documents", where=path)
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise FormatError(f"object key must be a string, got {k!r}", where=path)
            _check_text(k, path, f"object key {k!r}")
            _check(v, f"{path}.{k}")
        return
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]")
        return
    raise FormatError(f"{type(value).__name__} is not a JSON value", where=path)


def canonical_bytes(value: Any) -> bytes:
    """The RFC 8785 serialisation of `value` (dicts, lists, str, int, bool, None)."""
    _check(value, "$")
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeError) as e:  # _check should catch these
        raise FormatError(f"cannot canonicalise: {e}", where="$") from e


def loads_strict(data: bytes | str, *, where: str = "json") -> Any:
    """Parse JSON refusing floats, NaN/Infinity and duplicate keys (which JCS forbids)."""

    def no_float(text: str) -> Any:
        raise FormatError(f"floats are not allowed, got {text}", where=where)

    def no_constant(text: str) -> Any:
        raise FormatError(f"{text} is not allowed", where=where)

    def no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise FormatError(f"duplicate key {k!r}", where=where)
            out[k] = v
        return out

    try:
        return json.loads(
            data,
            parse_float=no_float,
            parse_constant=no_constant,
            object_pairs_hook=no_dupes,
        )
    except json.JSONDecodeError as e:
        raise FormatError(
            f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}", where=where
        ) from e
    except UnicodeDecodeError as e:
        raise FormatError(f"not UTF-8: {e}", where=where) from e
