"""Ed25519 verification and strict base64: the two primitives every signed format here uses.

DSSE envelopes (`por.core.dsse`), C2SP signed notes and cosignatures (`por.core.note`) and
the log's checkpoints (`por.core.tlog`) verify through `ed25519_verify`, which wraps
pycryptodome's one `ValueError` into a SignatureError once. No I/O.
"""

from __future__ import annotations

import base64
import binascii

from Crypto.Signature import eddsa

from por.errors import FormatError, SignatureError

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def b64decode_strict(text: object, *, where: str) -> bytes:
    """Standard base64 with padding, canonical (re-encoding gives the same text)."""
    if not isinstance(text, str):
        raise FormatError(f"must be a base64 string, got {type(text).__name__}", where=where)
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise FormatError(f"is not standard base64: {e}", where=where) from e
    if base64.b64encode(raw).decode("ascii") != text:
        raise FormatError("is not canonical base64 (padding or trailing bits)", where=where)
    return raw


def ed25519_verify(public_key_raw: bytes, message: bytes, sig: bytes, *, where: str) -> None:
    """Raise SignatureError unless `sig` is an RFC 8032 Ed25519 signature of `message`."""
    if len(public_key_raw) != PUBLIC_KEY_SIZE:
        raise SignatureError(
            "Ed25519 public key has the wrong size",
            expected=PUBLIC_KEY_SIZE,
            computed=len(public_key_raw),
            where=where,
        )
    if len(sig) != SIGNATURE_SIZE:
        raise SignatureError(
            "Ed25519 signature has the wrong size",
            expected=SIGNATURE_SIZE,
            computed=len(sig),
            where=where,
        )
    try:
        key = eddsa.import_public_key(public_key_raw)
        eddsa.new(key, "rfc8032").verify(message, sig)
    except ValueError as e:  # pycryptodome's one error for a bad key or signature
        raise SignatureError(f"Ed25519 signature does not verify ({e})", where=where) from e


__all__ = ["PUBLIC_KEY_SIZE", "SIGNATURE_SIZE", "b64decode_strict", "ed25519_verify"]
