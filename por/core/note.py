"""C2SP signed notes, verifier keys and tlog-cosignature/v1 witness cosignatures.

A signed note (c2sp.org/signed-note) is UTF-8 text ending in a newline, a blank line,
and signature lines `— <key name> base64(4-byte key ID ‖ signature)`. Two signature
types are used here, each with its own key ID (first 4 bytes of
SHA-256(key name ‖ 0x0A ‖ type ‖ 32-byte Ed25519 public key)):

- 0x01, Ed25519 over the note text: how a log signs its checkpoints;
- 0x04, a timestamped Ed25519 cosignature (c2sp.org/tlog-cosignature): how a witness
  says "as of <time>, this is the largest consistent tree I have seen for this origin".
  The signed message is `cosignature/v1\\ntime <POSIX seconds>\\n` followed by the
  checkpoint text, and the signature is base64(key ID ‖ u64 big-endian time ‖ Ed25519).

A key is published as a verifier key ("vkey"), `<name>+<hex key ID>+<base64(type ‖
public key)>`, the string witnesses, monitors and Go's golang.org/x/mod/sumdb/note read.
Verifiers ignore signature lines of keys they do not know (name and key ID must both
match) and reject a note when a known key's signature fails.

No I/O: the caller passes the time a cosignature is made at.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from por.core.ed25519 import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, b64decode_strict, ed25519_verify
from por.errors import FormatError, SignatureError

ALG_ED25519 = 0x01
"""Signature type of an Ed25519 note signature (a log's checkpoint signature)."""
ALG_COSIGNATURE_V1 = 0x04
"""Signature type of a timestamped Ed25519 witness cosignature (c2sp.org/tlog-cosignature)."""
ALGORITHMS = (ALG_ED25519, ALG_COSIGNATURE_V1)

SIG_PREFIX = "\u2014 "  # an em dash and a space open each signature line
MAX_SIGNATURES = 100
"""Signature lines a note may carry (signed-note: verifiers MUST accept at least 16)."""
MAX_TIMESTAMP = 2**63 - 1  # tlog-cosignature: the timestamp MUST NOT exceed 2^63 - 1
BOM = "\ufeff"

_KEY_ID_HEX_RE = re.compile(r"[0-9a-f]{8}")
_DECIMAL_RE = re.compile(r"0|[1-9][0-9]*")


class NoteSigner(Protocol):
    """What signs a note: the Ed25519 signer of por.core.dsse fits."""

    @property
    def public_key_raw(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


def check_key_name(name: object, *, where: str) -> str:
    """signed-note: a key name is non-empty and has no Unicode spaces and no '+'."""
    if not isinstance(name, str) or not name:
        raise FormatError("key name must be a non-empty string", where=where)
    if "+" in name or any(c.isspace() or ord(c) < 0x20 or c == BOM for c in name):
        raise FormatError(f"key name {name!r} must not contain spaces or '+'", where=where)
    return name


def key_id(name: str, alg: int, public_key_raw: bytes) -> bytes:
    """signed-note: SHA-256(key name ‖ 0x0A ‖ signature type ‖ public key)[:4]."""
    material = name.encode("utf-8") + b"\n" + bytes([alg]) + public_key_raw
    return hashlib.sha256(material).digest()[:4]


# --- verifier keys ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifierKey:
    """A note verifier key: name, signature type (0x01 or 0x04) and Ed25519 public key."""

    name: str
    alg: int
    public_key: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name, where="verifier key name")
        if self.alg not in ALGORITHMS:
            raise FormatError(
                f"signature type 0x{self.alg:02x} is not supported (0x01 Ed25519 note "
                "signatures, 0x04 Ed25519 cosignatures)",
                where="verifier key",
            )
        if not isinstance(self.public_key, bytes) or len(self.public_key) != PUBLIC_KEY_SIZE:
            raise FormatError("Ed25519 public key must be 32 bytes", where="verifier key")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.alg, self.public_key)

    def encode(self) -> str:
        """`<name>+<8 hex key ID>+<base64(type ‖ public key)>`."""
        blob = base64.b64encode(bytes([self.alg]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{blob}"

    @classmethod
    def parse(cls, text: object, *, where: str = "verifier key") -> VerifierKey:
        if not isinstance(text, str):
            raise FormatError("verifier key must be a string", where=where)
        parts = text.split("+", 2)  # the base64 key may itself contain "+"
        if len(parts) != 3:
            raise FormatError("verifier key must be <name>+<hex key ID>+<base64 key>", where=where)
        name, id_hex, blob_b64 = parts
        check_key_name(name, where=where)
        if not _KEY_ID_HEX_RE.fullmatch(id_hex):
            raise FormatError(f"key ID {id_hex!r} must be 8 lowercase hex digits", where=where)
        try:
            blob = b64decode_strict(blob_b64, where=where)
        except FormatError as e:
            raise FormatError(f"key {e.message}", where=where) from e
        if len(blob) != 1 + PUBLIC_KEY_SIZE or blob[0] not in ALGORITHMS:
            raise FormatError(
                "key must be a signature type (0x01 or 0x04) followed by a 32-byte Ed25519 "
                "public key",
                where=where,
            )
        vkey = cls(name=name, alg=blob[0], public_key=blob[1:])
        if vkey.key_id.hex() != id_hex:
            raise FormatError(
                f"key ID does not match the key (expected {id_hex}, computed {vkey.key_id.hex()})",
                where=where,
            )
        return vkey

    @classmethod
    def for_signer(cls, name: str, signer: NoteSigner, *, alg: int) -> VerifierKey:
        return cls(name=name, alg=alg, public_key=signer.public_key_raw)


# --- the note itself --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SignatureLine:
    """One signature line: key name, 4-byte key ID, and the signature bytes after it."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{SIG_PREFIX}{self.name} {blob}\n"

    def is_by(self, vkey: VerifierKey) -> bool:
        """Name AND key ID match (signed-note: either alone is someone else's key)."""
        return self.name == vkey.name and self.key_id == vkey.key_id


def _check_text(text: object, *, where: str) -> str:
    if not isinstance(text, str):
        raise FormatError("note must be text", where=where)
    if text.startswith(BOM):
        raise FormatError("note starts with a byte order mark (U+FEFF)", where=where)
    bad = next((c for c in text if ord(c) < 0x20 and c != "\n"), None)
    if bad is not None:
        raise FormatError(
            f"note contains the control character U+{ord(bad):04X} (only newline is allowed)",
            where=where,
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise FormatError("note is not valid UTF-8 (lone surrogate)", where=where) from e
    return text


def parse_signature_lines(text: str, *, first_line: int = 1, where: str) -> list[SignatureLine]:
    """Signature lines, each `— <name> <base64>` and ending in a newline."""
    if not text.endswith("\n"):
        raise FormatError("signature lines must end with a newline", where=where)
    out: list[SignatureLine] = []
    for i, line in enumerate(text[:-1].split("\n")):
        line_where = f"{where}:{first_line + i}"
        if not line.startswith(SIG_PREFIX):
            raise FormatError(
                "signature line must start with an em dash and a space", where=line_where
            )
        name, sep, blob_b64 = line[len(SIG_PREFIX) :].rpartition(" ")
        if not sep:
            raise FormatError("signature line must be '— <name> <base64>'", where=line_where)
        check_key_name(name, where=line_where)
        try:
            blob = b64decode_strict(blob_b64, where=line_where)
        except FormatError as e:
            raise FormatError(f"signature {e.message}", where=line_where) from e
        if len(blob) < 5:
            raise FormatError("signature is shorter than a key ID and one byte", where=line_where)
        out.append(SignatureLine(name=name, key_id=blob[:4], signature=blob[4:]))
        if len(out) > MAX_SIGNATURES:
            raise FormatError(
                f"more than {MAX_SIGNATURES} signature lines are not accepted", where=where
            )
    return out


def split_note(text: object, *, where: str = "note") -> tuple[str, list[SignatureLine]]:
    """The note text (up to and including its last newline before the LAST blank line)
    and its signature lines, none verified. At least one signature line is required."""
    note = _check_text(text, where=where)
    cut = note.rfind("\n\n")
    if cut < 0:
        raise FormatError("note has no blank line before its signatures", where=where)
    body, sig_text = note[: cut + 1], note[cut + 2 :]
    lines = parse_signature_lines(sig_text, first_line=body.count("\n") + 2, where=where)
    if not lines:
        raise FormatError("note has no signatures", where=where)
    return body, lines


def ed25519_signature_line(body: str, *, name: str, signer: NoteSigner) -> SignatureLine:
    """A 0x01 Ed25519 note signature over `body` (which must end in a newline)."""
    check_key_name(name, where="key name")
    if not body.endswith("\n"):
        raise FormatError("note text must end with a newline", where="note")
    return SignatureLine(
        name=name,
        key_id=key_id(name, ALG_ED25519, signer.public_key_raw),
        signature=signer.sign(body.encode("utf-8")),
    )


def verify_ed25519_lines(
    body: str, lines: Sequence[SignatureLine], vkey: VerifierKey, *, where: str
) -> int:
    """Verify every line by `vkey` (type 0x01); return how many there were (0: none)."""
    if vkey.alg != ALG_ED25519:
        raise FormatError("not an Ed25519 note signature key (type 0x01)", where=where)
    ours = [ln for ln in lines if ln.is_by(vkey)]
    for ln in ours:
        ed25519_verify(
            vkey.public_key, body.encode("utf-8"), ln.signature, where=f"{where}: {vkey.name}"
        )
    return len(ours)


# --- tlog-cosignature/v1 ----------------------------------------------------------------


def cosignature_message(body: str, timestamp: int) -> bytes:
    """tlog-cosignature: `cosignature/v1`, `time <ts>`, then the checkpoint text."""
    _check_timestamp(timestamp, where="cosignature time")
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def _check_timestamp(value: object, *, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TIMESTAMP:
        raise FormatError(
            f"timestamp must be an integer in [0, 2^63-1], got {value!r}", where=where
        )
    return value


def cosign(body: str, *, name: str, signer: NoteSigner, timestamp: int) -> SignatureLine:
    """A witness's 0x04 cosignature line on checkpoint text `body` at POSIX `timestamp`."""
    if not body.endswith("\n"):
        raise FormatError("checkpoint text must end with a newline", where="cosign")
    message = cosignature_message(body, timestamp)
    return SignatureLine(
        name=check_key_name(name, where="witness name"),
        key_id=key_id(name, ALG_COSIGNATURE_V1, signer.public_key_raw),
        signature=timestamp.to_bytes(8, "big") + signer.sign(message),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Cosignature:
    """A verified witness cosignature: who (the vkey) and when (POSIX seconds)."""

    witness: VerifierKey
    timestamp: int
    line: SignatureLine


def verify_cosignature(
    body: str,
    line: SignatureLine,
    vkey: VerifierKey,
    *,
    not_after: int | None = None,
    where: str = "cosignature",
) -> Cosignature:
    """Raise unless `line` is a valid cosignature/v1 by `vkey` on checkpoint text `body`.

    `not_after` (POSIX seconds: the verifier's now plus its clock skew) refuses a
    cosignature dated later: a witness cannot vouch today for what it saw "tomorrow",
    and a log must not store such a line for clients to trust later."""
    if vkey.alg != ALG_COSIGNATURE_V1:
        raise FormatError("not a cosignature key (type 0x04)", where=where)
    if not line.is_by(vkey):
        raise SignatureError(
            f"signature line is by {line.name} (key ID {line.key_id.hex()}), not by the "
            f"witness key {vkey.name} ({vkey.key_id.hex()})",
            where=where,
        )
    if len(line.signature) != 8 + SIGNATURE_SIZE:
        raise SignatureError(
            "cosignature must be an 8-byte timestamp and a 64-byte Ed25519 signature",
            expected=8 + SIGNATURE_SIZE,
            computed=len(line.signature),
            where=where,
        )
    timestamp = int.from_bytes(line.signature[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise SignatureError("cosignature timestamp exceeds 2^63-1", where=where)
    if not_after is not None and timestamp > not_after:
        raise SignatureError(
            "cosignature is dated in the future",
            expected=f"time <= {not_after}",
            computed=timestamp,
            where=where,
        )
    ed25519_verify(
        vkey.public_key,
        cosignature_message(body, timestamp),
        line.signature[8:],
        where=f"{where}: {vkey.name}",
    )
    return Cosignature(witness=vkey, timestamp=timestamp, line=line)


def parse_decimal(text: str, *, maximum: int, what: str, where: str) -> int:
    """An ASCII decimal with no leading zeroes (unless it is 0), at most `maximum`."""
    if not _DECIMAL_RE.fullmatch(text) or len(text) > len(str(maximum)):
        raise FormatError(
            f"{what} {text[:40]!r} is not a decimal number without leading zeroes", where=where
        )
    value = int(text)
    if value > maximum:
        raise FormatError(f"{what} {text} is larger than {maximum}", where=where)
    return value


__all__ = [
    "ALGORITHMS",
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "BOM",
    "MAX_SIGNATURES",
    "MAX_TIMESTAMP",
    "SIG_PREFIX",
    "Cosignature",
    "NoteSigner",
    "SignatureLine",
    "VerifierKey",
    "check_key_name",
    "cosign",
    "cosignature_message",
    "ed25519_signature_line",
    "key_id",
    "parse_decimal",
    "parse_signature_lines",
    "split_note",
    "verify_cosignature",
    "verify_ed25519_lines",
]
