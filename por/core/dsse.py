"""DSSE v1 envelopes signed with Ed25519, and the published key set that verifies them.

Generic DSSE: the signature covers PAE(payloadType, payload), never the JSON of the
envelope, so the payload bytes are exactly the bytes that were signed.

Two ways to read an envelope. As a DSSE consumer (the default), by the spec's parsing
rules: standard or URL-safe base64 (padding optional), unknown fields ignored, `keyid`
optional (unset is the same as empty) — so signatures made by other DSSE tools count.
In the log's exact form (`exact=True`): the bytes por signs, stores and logs, where the
log leaf commits to SHA-256 of the RFC 8785 envelope bytes; there only canonical
standard base64 and exactly the fields por writes are accepted, so one envelope has one
byte string and one leaf. What the payload
is, and so which payloadType a verifier expects, is the caller's: an attestation
travels with `por.core.attestation.PAYLOAD_TYPE` (DESIGN §4). Keys are identified by
keyid = hex SHA-256 of the raw 32-byte public key. A verifier takes keys only from a key
set it trusts (never from the envelope), counts each key once, and only keys whose role
and validity window fit.

No I/O here: no disk, network, environment or clock. Key generation and PEM encryption
need random bytes and the caller passes them in (`Ed25519Signer(seed)` with 32 fresh
random bytes, `to_pem(..., random_bytes=os.urandom)`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

from por.core.canonical import canonical_bytes, loads_strict
from por.core.ed25519 import (
    PUBLIC_KEY_SIZE,
    b64decode_strict,
    ed25519_verify,
)
from por.core.note import ALG_COSIGNATURE_V1, VerifierKey
from por.core.note import ALG_ED25519 as ALG_NOTE_ED25519
from por.core.times import format_time, parse_time
from por.errors import FormatError, InputError, SignatureError

ALG_ED25519 = "ed25519"
ROLES = ("issuer", "auditor")
SEED_SIZE = 32

# scrypt cost of the encrypted PKCS#8 private key, chosen so that the OpenSSL command line
# opens the file (`openssl pkey -in KEY.pem`): OpenSSL refuses scrypt parameters needing
# more than 32 MiB (128 * r * (N + 2) bytes), so N = 2^14 with r = 8 (16 MiB) is the
# largest power of two it accepts. p = 8 brings the work back to what N = 2^17 cost
# (about 0.5 s here) without more memory. Files written with N = 2^17 before this change
# stay readable: pycryptodome reads whatever parameters a file names.
_SCRYPT_COST = 2**14
_SCRYPT_BLOCK_SIZE = 8
_SCRYPT_PARALLELIZATION = 8

_HEX64_RE = re.compile(r"[0-9a-f]{64}")
_B64_STD_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_B64_URL_RE = re.compile(r"[A-Za-z0-9_-]*={0,2}")
MAX_SIGNATURES = 100
"""Signature entries an envelope may carry: each may cost one verification per key."""

# A file key is only as strong as its passphrase: whoever copies the PEM can guess offline
# (scrypt makes each guess cost ~0.4 s, not more). NIST SP 800-63B asks for length and a
# check against known-weak choices rather than composition rules; a key that signs
# reserve attestations gets more length than a login password.
MIN_PASSPHRASE_LENGTH = 16
MIN_PASSPHRASE_DISTINCT = 8


# --- small shared helpers --------------------------------------------------------------


def _check_aware(value: object, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InputError(f"{what} must be a timezone-aware datetime, got {value!r}")
    return value


def b64decode_dsse(text: object, *, where: str) -> bytes:
    """Base64 as a DSSE consumer reads it: standard or URL-safe alphabet, padding optional.

    DSSE protocol: "Either standard or URL-safe base64 encodings are allowed. Signers may
    use either, and verifiers MUST accept either." One string may not mix the alphabets.
    """
    if not isinstance(text, str):
        raise FormatError(f"must be a base64 string, got {type(text).__name__}", where=where)
    std = _B64_STD_RE.fullmatch(text) is not None
    url = _B64_URL_RE.fullmatch(text) is not None
    if not (std or url):
        raise FormatError(
            "is not base64 (standard or URL-safe alphabet, optional '=' padding)", where=where
        )
    body = text.rstrip("=")
    if len(body) % 4 == 1 or (text != body and len(text) % 4):
        raise FormatError("is not base64: wrong length or padding", where=where)
    padded = body + "=" * (-len(body) % 4)
    try:
        if std:
            return base64.b64decode(padded.encode("ascii"), validate=True)
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, ValueError) as e:
        raise FormatError(f"is not base64: {e}", where=where) from e


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _hex_bytes(text: object, size: int, *, where: str) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(f"[0-9a-f]{{{size * 2}}}", text):
        raise FormatError(
            f"must be {size * 2} lowercase hex digits ({size} bytes), got {text!r}",
            where=where,
        )
    return bytes.fromhex(text)


def _fields(
    d: object,
    required: Sequence[str],
    *,
    where: str,
    optional: Sequence[str] = (),
    ignore_unknown: bool = False,
) -> Mapping[str, Any]:
    if not isinstance(d, dict):
        raise FormatError(f"must be a JSON object, got {type(d).__name__}", where=where)
    missing = [k for k in required if k not in d]
    if missing:
        raise FormatError(f"missing field(s) {', '.join(missing)}", where=where)
    unknown = sorted(set(d) - set(required) - set(optional))
    if unknown and not ignore_unknown:
        raise FormatError(f"unknown field(s) {', '.join(unknown)}", where=where)
    return d


# --- DSSE v1 ---------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body.

    Lengths are ASCII decimal counts of BYTES (of the UTF-8 type), so a multi-byte
    payloadType cannot shift the boundary between type and body.
    """
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def keyid_for(public_key_raw: bytes) -> str:
    """DESIGN §4: keyid = lowercase hex SHA-256 of the raw 32-byte Ed25519 public key."""
    return hashlib.sha256(public_key_raw).hexdigest()


@runtime_checkable
class Signer(Protocol):
    """Anything that signs with one Ed25519 key (a local key, later an HSM)."""

    @property
    def keyid(self) -> str: ...

    @property
    def public_key_raw(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


class Ed25519Signer:
    """An Ed25519 private key held in memory (pycryptodome)."""

    __slots__ = ("_key", "_public_key_raw")

    def __init__(self, key: bytes | ECC.EccKey) -> None:
        if isinstance(key, bytes | bytearray):
            if len(key) != SEED_SIZE:
                raise InputError(f"Ed25519 seed must be {SEED_SIZE} bytes, got {len(key)}")
            key = eddsa.import_private_key(bytes(key))
        if not isinstance(key, ECC.EccKey) or key.curve != "Ed25519" or not key.has_private():
            raise InputError("need an Ed25519 private key")
        self._key = key
        self._public_key_raw: bytes = key.public_key().export_key(format="raw")

    @property
    def public_key_raw(self) -> bytes:
        return self._public_key_raw

    @property
    def keyid(self) -> str:
        return keyid_for(self._public_key_raw)

    def sign(self, message: bytes) -> bytes:
        return eddsa.new(self._key, "rfc8032").sign(message)

    def __repr__(self) -> str:  # never show key material
        return f"Ed25519Signer(keyid={self.keyid[:16]}…)"

    @classmethod
    def from_pem(cls, pem: bytes, passphrase: str | None, *, where: str = "key") -> Ed25519Signer:
        """Read an (encrypted) PKCS#8 PEM private key."""
        try:
            key = ECC.import_key(pem, passphrase=passphrase)
        except (ValueError, TypeError, IndexError) as e:
            hint = "wrong passphrase, or " if passphrase else ""
            raise InputError(
                f"cannot read the Ed25519 private key ({hint}not a PKCS#8 PEM key): {e}",
                where=where,
            ) from e
        if key.curve != "Ed25519" or not key.has_private():
            raise InputError(f"not an Ed25519 private key (curve {key.curve})", where=where)
        return cls(key)

    def to_pem(self, passphrase: str, *, random_bytes: Callable[[int], bytes]) -> bytes:
        """Encrypted PKCS#8 PEM (scrypt + AES-256-CBC); salt and IV come from random_bytes."""
        if not passphrase:
            raise InputError("refusing to write a private key with an empty passphrase")
        weak = passphrase_problem(passphrase)
        if weak:
            raise InputError(f"refusing a weak passphrase for a private key: {weak}")
        # randfunc is accepted at runtime (pycryptodome docs) but missing from its stubs.
        pem: str = self._key.export_key(  # type: ignore[call-overload]
            format="PEM",
            passphrase=passphrase,
            protection="scryptAndAES256-CBC",
            prot_params={
                "iteration_count": _SCRYPT_COST,
                "block_size": _SCRYPT_BLOCK_SIZE,
                "parallelization": _SCRYPT_PARALLELIZATION,
            },
            randfunc=random_bytes,
        )
        return pem.encode("ascii")


def passphrase_problem(passphrase: str) -> str | None:
    """Why `passphrase` is too weak to protect a signing key file, or None.

    At least 16 characters, at least 8 different ones, and not one character class run
    in sequence (abcd…, 1234…). Several words ("correct horse battery staple") pass.
    """
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        return (
            f"passphrase has {len(passphrase)} characters, at least "
            f"{MIN_PASSPHRASE_LENGTH} are needed (several words make a good one)"
        )
    if len(set(passphrase)) < MIN_PASSPHRASE_DISTINCT:
        return (
            f"passphrase repeats itself: {len(set(passphrase))} different characters, "
            f"at least {MIN_PASSPHRASE_DISTINCT} are needed"
        )
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(passphrase)}
    if steps <= {1} or steps <= {-1}:
        return "passphrase is a run of consecutive characters"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Signature:
    """One DSSE signature: keyid (a lookup hint, never trusted; "" when unset) and its bytes."""

    keyid: str
    sig: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"keyid": self.keyid, "sig": _b64(self.sig)}

    @classmethod
    def from_dict(cls, d: object, *, where: str = "signature", exact: bool = False) -> Signature:
        """A DSSE consumer's reading (keyid optional, unknown fields ignored, either base64
        alphabet), or with `exact` the form por writes (both fields, canonical base64)."""
        if exact:
            f = _fields(d, ("keyid", "sig"), where=where)
            sig = b64decode_strict(f["sig"], where=f"{where}.sig")
        else:
            f = _fields(d, ("sig",), optional=("keyid",), ignore_unknown=True, where=where)
            sig = b64decode_dsse(f["sig"], where=f"{where}.sig")
        keyid = f.get("keyid", "")
        if keyid is None and not exact:
            keyid = ""  # DSSE: an unset keyid is the same as an empty one
        if not isinstance(keyid, str):
            raise FormatError("must be a string", where=f"{where}.keyid")
        if exact and not sig:  # a consumer counts an empty signature as one that fails
            raise FormatError("is empty", where=f"{where}.sig")
        return cls(keyid=keyid, sig=sig)


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """A DSSE v1 envelope: payload bytes, payloadType, signatures over PAE(type, payload)."""

    payload: bytes
    payload_type: str
    signatures: tuple[Signature, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "payload": _b64(self.payload),
            "payloadType": self.payload_type,
            "signatures": [s.to_dict() for s in self.signatures],
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str = "envelope", exact: bool = False) -> Envelope:
        """Read an envelope as a DSSE consumer, or (`exact`) in the log's exact form.

        The exact form is what `to_dict` writes: exactly payload, payloadType and
        signatures[{keyid, sig}], canonical standard base64. Read that way, `to_json_bytes`
        gives back the RFC 8785 bytes of `d` itself, the bytes the log leaf commits to.
        """
        if exact:
            f = _fields(d, ("payload", "payloadType", "signatures"), where=where)
            payload = b64decode_strict(f["payload"], where=f"{where}.payload")
        else:
            f = _fields(
                d, ("payload", "payloadType", "signatures"), ignore_unknown=True, where=where
            )
            payload = b64decode_dsse(f["payload"], where=f"{where}.payload")
        if not isinstance(f["payloadType"], str) or not f["payloadType"]:
            raise FormatError("must be a non-empty string", where=f"{where}.payloadType")
        if not isinstance(f["signatures"], list):
            raise FormatError("must be a list", where=f"{where}.signatures")
        if len(f["signatures"]) > MAX_SIGNATURES:
            raise FormatError(
                f"{len(f['signatures'])} signatures, at most {MAX_SIGNATURES} are accepted",
                where=f"{where}.signatures",
            )
        sigs = tuple(
            Signature.from_dict(s, where=f"{where}.signatures[{i}]", exact=exact)
            for i, s in enumerate(f["signatures"])
        )
        return cls(payload=payload, payload_type=f["payloadType"], signatures=sigs)

    def to_json_bytes(self) -> bytes:
        """RFC 8785 bytes of the envelope: what is stored, published and logged."""
        return canonical_bytes(self.to_dict())

    @classmethod
    def from_json_bytes(
        cls, data: bytes, *, where: str = "envelope", exact: bool = False
    ) -> Envelope:
        return cls.from_dict(loads_strict(data, where=where), where=where, exact=exact)


def sign_envelope(payload: bytes, payload_type: str, signers: Sequence[Signer]) -> Envelope:
    """A new envelope with one signature per signer over PAE(payload_type, payload)."""
    message = pae(payload_type, payload)
    sigs = tuple(Signature(keyid=s.keyid, sig=s.sign(message)) for s in signers)
    return Envelope(payload=payload, payload_type=payload_type, signatures=sigs)


def add_signature(envelope: Envelope, signer: Signer) -> Envelope:
    """The envelope with one more signature (an auditor's co-signature), payload unchanged."""
    if any(s.keyid == signer.keyid for s in envelope.signatures):
        raise InputError(f"envelope already carries a signature by key {signer.keyid}")
    sig = Signature(
        keyid=signer.keyid, sig=signer.sign(pae(envelope.payload_type, envelope.payload))
    )
    return Envelope(
        payload=envelope.payload,
        payload_type=envelope.payload_type,
        signatures=(*envelope.signatures, sig),
    )


# --- key set (DESIGN §4) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyEntry:
    """One published verification key with its role and validity window (inclusive)."""

    keyid: str
    public_key: bytes
    role: str
    not_before: datetime | None = None
    not_after: datetime | None = None
    alg: str = ALG_ED25519

    def __post_init__(self) -> None:
        if self.alg != ALG_ED25519:
            raise FormatError(f"unknown alg {self.alg!r}, only {ALG_ED25519!r}", where="alg")
        if self.role not in ROLES:
            raise FormatError(
                f"unknown role {self.role!r}, want one of {', '.join(ROLES)}", where="role"
            )
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise FormatError(f"public key must be {PUBLIC_KEY_SIZE} bytes", where="public_key")
        computed = keyid_for(self.public_key)
        if self.keyid != computed:
            raise FormatError(
                f"keyid is not SHA-256 of the public key (expected {computed}, got {self.keyid})",
                where="keyid",
            )
        for name in ("not_before", "not_after"):
            value = getattr(self, name)
            if value is not None:
                _check_aware(value, name)
        if self.not_before and self.not_after and self.not_after < self.not_before:
            raise FormatError("not_after is before not_before", where="not_after")

    @classmethod
    def for_public_key(
        cls,
        public_key: bytes,
        *,
        role: str,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> KeyEntry:
        return cls(
            keyid=keyid_for(public_key),
            public_key=public_key,
            role=role,
            not_before=not_before,
            not_after=not_after,
        )

    def window_problem(self, at: datetime) -> str | None:
        """Why this key is not valid at `at`, or None when it is."""
        if self.not_before is not None and at < self.not_before:
            return f"not yet valid: valid from {format_time(self.not_before)}"
        if self.not_after is not None and at > self.not_after:
            return f"expired {format_time(self.not_after)}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "keyid": self.keyid,
            "alg": self.alg,
            "public_key": self.public_key.hex(),
            "not_before": format_time(self.not_before) if self.not_before else None,
            "not_after": format_time(self.not_after) if self.not_after else None,
            "role": self.role,
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str = "key") -> KeyEntry:
        f = _fields(
            d, ("keyid", "alg", "public_key", "not_before", "not_after", "role"), where=where
        )
        if not isinstance(f["keyid"], str) or not _HEX64_RE.fullmatch(f["keyid"]):
            raise FormatError(
                f"must be 64 lowercase hex digits, got {f['keyid']!r}", where=f"{where}.keyid"
            )
        public_key = _hex_bytes(f["public_key"], PUBLIC_KEY_SIZE, where=f"{where}.public_key")
        try:
            eddsa.import_public_key(public_key)
        except ValueError as e:
            raise FormatError(
                f"is not an Ed25519 public key ({e})", where=f"{where}.public_key"
            ) from e
        times = {
            name: None if f[name] is None else parse_time(f[name], where=f"{where}.{name}")
            for name in ("not_before", "not_after")
        }
        for name in ("alg", "role"):
            if not isinstance(f[name], str):
                raise FormatError("must be a string", where=f"{where}.{name}")
        try:
            return cls(
                keyid=f["keyid"],
                alg=f["alg"],
                public_key=public_key,
                role=f["role"],
                not_before=times["not_before"],
                not_after=times["not_after"],
            )
        except FormatError as e:
            raise FormatError(e.message, where=f"{where}.{e.where}") from e


@dataclass(frozen=True, slots=True, kw_only=True)
class LogKey:
    """The attestation log's checkpoint key: its origin line and C2SP verifier key.

    `vkey` is `<origin>+<key ID>+<base64(0x01 ‖ Ed25519 key)>`, what a witness or monitor
    is configured with; the key name is the origin (C2SP: it SHOULD match)."""

    origin: str
    vkey: VerifierKey

    def __post_init__(self) -> None:
        if self.vkey.alg != ALG_NOTE_ED25519:
            raise FormatError("must be an Ed25519 note key (type 0x01)", where="log.vkey")
        if self.vkey.name != self.origin:
            raise FormatError(
                f"key name {self.vkey.name!r} is not the origin {self.origin!r}", where="log.vkey"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "vkey": self.vkey.encode()}

    @classmethod
    def from_dict(cls, d: object, *, where: str = "log") -> LogKey:
        f = _fields(d, ("origin", "vkey"), where=where)
        if not isinstance(f["origin"], str) or not f["origin"] or "\n" in f["origin"]:
            raise FormatError("must be one non-empty line", where=f"{where}.origin")
        try:
            return cls(origin=f["origin"], vkey=VerifierKey.parse(f["vkey"], where=f"{where}.vkey"))
        except FormatError as e:
            raise FormatError(e.message, where=e.where or where) from e


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySet:
    """The published key set: the only source of keys a verifier trusts.

    `keys` verify envelopes (DESIGN §4). Optional beside them: `log`, the log's checkpoint
    verifier key (C2SP vkey), and `witnesses`, the cosignature vkeys (type 0x04) of the
    witnesses the log submits to, which a verifier may require cosignatures from.
    """

    keys: tuple[KeyEntry, ...]
    log: LogKey | None = None
    witnesses: tuple[VerifierKey, ...] = ()
    _by_keyid: dict[str, KeyEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_keyid: dict[str, KeyEntry] = {}
        for i, k in enumerate(self.keys):
            if k.keyid in by_keyid:
                raise FormatError(f"duplicate key {k.keyid}", where=f"keys[{i}].keyid")
            by_keyid[k.keyid] = k
        seen: set[tuple[str, bytes]] = set()
        for i, w in enumerate(self.witnesses):
            if w.alg != ALG_COSIGNATURE_V1:
                raise FormatError(
                    "must be a witness cosignature key (type 0x04)", where=f"witnesses[{i}]"
                )
            if (w.name, w.key_id) in seen:
                raise FormatError(f"duplicate witness {w.name}", where=f"witnesses[{i}]")
            seen.add((w.name, w.key_id))
        object.__setattr__(self, "_by_keyid", by_keyid)

    def get(self, keyid: str) -> KeyEntry | None:
        return self._by_keyid.get(keyid)

    def with_role(self, role: str) -> tuple[KeyEntry, ...]:
        return tuple(k for k in self.keys if k.role == role)

    def merge(self, other: KeySet) -> KeySet:
        """Union of two key sets; the same keyid with different entries is an error, and
        so are two different log keys."""
        merged = list(self.keys)
        for k in other.keys:
            mine = self.get(k.keyid)
            if mine is None:
                merged.append(k)
            elif mine != k:
                raise FormatError(
                    f"key {k.keyid} appears in both sets with different role or window"
                )
        if self.log and other.log and self.log != other.log:
            raise FormatError("the two key sets name different log keys", where="log")
        witnesses = list(self.witnesses)
        witnesses += [w for w in other.witnesses if w not in witnesses]
        return KeySet(keys=tuple(merged), log=self.log or other.log, witnesses=tuple(witnesses))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"keys": [k.to_dict() for k in self.keys]}
        if self.log is not None:
            out["log"] = self.log.to_dict()
        if self.witnesses:
            out["witnesses"] = [w.encode() for w in self.witnesses]
        return out

    def to_json_bytes(self) -> bytes:
        return canonical_bytes(self.to_dict())

    @classmethod
    def from_dict(cls, d: object, *, where: str = "keys") -> KeySet:
        f = _fields(d, ("keys",), optional=("log", "witnesses"), where=where)
        if not isinstance(f["keys"], list):
            raise FormatError("must be a list", where=f"{where}.keys")
        entries = tuple(
            KeyEntry.from_dict(k, where=f"{where}.keys[{i}]") for i, k in enumerate(f["keys"])
        )
        log = None if f.get("log") is None else LogKey.from_dict(f["log"], where=f"{where}.log")
        raw_witnesses = f.get("witnesses", [])
        if not isinstance(raw_witnesses, list):
            raise FormatError("must be a list of verifier keys", where=f"{where}.witnesses")
        witnesses = tuple(
            VerifierKey.parse(w, where=f"{where}.witnesses[{i}]")
            for i, w in enumerate(raw_witnesses)
        )
        try:
            return cls(keys=entries, log=log, witnesses=witnesses)
        except FormatError as e:
            raise FormatError(e.message, where=f"{where}.{e.where}") from e

    @classmethod
    def from_json_bytes(cls, data: bytes, *, where: str = "keys") -> KeySet:
        return cls.from_dict(loads_strict(data, where=where), where=where)


# --- verification ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedEnvelope:
    """The payload bytes that verified, and the distinct keys (with roles) that signed."""

    payload: bytes
    payload_type: str
    keyids: tuple[str, ...]
    roles: tuple[str, ...]


def _signing_key(
    keyset: KeySet, s: Signature, message: bytes, label: str, *, skip: Mapping[str, str]
) -> tuple[KeyEntry | None, str | None]:
    """The key of `keyset` whose signature `s` is, or (None, why not).

    DSSE: the keyid is an unauthenticated hint that "may only be used to narrow the
    selection of possible keys to try". A keyid naming a key of the set narrows the
    choice to that key; an empty keyid, or one in another tool's keyid scheme, is
    tried against every key of the set. Keys already counted (`skip`) are not tried
    again: a key counts once however many entries it signed.
    """
    named = keyset.get(s.keyid) if s.keyid else None
    if named is not None:
        if named.keyid in skip:
            return None, None
        try:
            ed25519_verify(named.public_key, message, s.sig, where=label)
        except SignatureError as e:
            return (
                None,
                f"{label}: signature by key {named.keyid[:16]}… does not verify ({e.message})",
            )
        return named, None
    for entry in keyset.keys:
        if entry.keyid in skip:
            continue
        try:
            ed25519_verify(entry.public_key, message, s.sig, where=label)
        except SignatureError:
            continue
        return entry, None
    hint = f"keyid {s.keyid[:16]}… is not in the key set" if s.keyid else "no keyid"
    return None, f"{label}: {hint}, and no key of the key set verifies it"


def verify_envelope(
    envelope: Envelope,
    keyset: KeySet,
    *,
    at: datetime,
    payload_type: str,
    threshold: int = 1,
    roles: frozenset[str] = frozenset({"issuer"}),
    where: str = "envelope",
) -> VerifiedEnvelope:
    """Raise SignatureError unless `threshold` distinct keys of `roles` signed at time `at`
    an envelope of `payload_type` (the verifier names the type it expects; the envelope's
    own payloadType must equal it).

    Keys come only from `keyset` (an envelope's keyid is a lookup hint: a signature whose
    keyid is empty or unknown is tried against every key); a key counts once however many
    signature entries it made; a key counts only if `at` lies inside its
    [not_before, not_after] window. Returns the verified payload: callers use these bytes
    and never re-parse the envelope.
    """
    _check_aware(at, "at")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise InputError(f"threshold must be a positive int, got {threshold!r}")
    if envelope.payload_type != payload_type:
        raise SignatureError(
            "wrong payloadType",
            expected=payload_type,
            computed=envelope.payload_type,
            where=f"{where}.payloadType",
        )
    message = pae(envelope.payload_type, envelope.payload)
    valid: dict[str, str] = {}  # keyid -> role, insertion-ordered
    problems: list[str] = []
    at_text = format_time(at)
    for i, s in enumerate(envelope.signatures):
        label = f"signatures[{i}]"
        entry, problem = _signing_key(keyset, s, message, label, skip=valid)
        if entry is None:
            if problem:
                problems.append(problem)
            continue
        if entry.role not in roles:
            problems.append(
                f"{label}: key {entry.keyid[:16]}… has role {entry.role!r}, "
                f"not {' or '.join(sorted(roles))}"
            )
            continue
        window = entry.window_problem(at)
        if window:
            problems.append(f"{label}: key {entry.keyid[:16]}… not valid at {at_text}: {window}")
            continue
        valid[entry.keyid] = entry.role
    if len(valid) < threshold:
        found = ", ".join(f"{r}: {list(valid.values()).count(r)}" for r in sorted(roles))
        detail = "; ".join(problems) if problems else "no signatures"
        raise SignatureError(
            f"{len(valid)} valid signature(s) from distinct {'/'.join(sorted(roles))} keys "
            f"({found}), need {threshold}: {detail}",
            expected=f">= {threshold} signatures",
            computed=len(valid),
            where=where,
        )
    return VerifiedEnvelope(
        payload=envelope.payload,
        payload_type=envelope.payload_type,
        keyids=tuple(valid),
        roles=tuple(valid.values()),
    )


__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "ROLES",
    "Ed25519Signer",
    "Envelope",
    "KeyEntry",
    "KeySet",
    "LogKey",
    "Signature",
    "Signer",
    "VerifiedEnvelope",
    "add_signature",
    "b64decode_dsse",
    "b64decode_strict",
    "ed25519_verify",
    "keyid_for",
    "pae",
    "passphrase_problem",
    "sign_envelope",
    "verify_envelope",
]
