"""Open a signed attestation: verify its DSSE envelope at the time it claims, then decode it.

Signatures are judged at the attestation's own `issued_at` (a key that expired later
still vouches for what it signed while valid), but `issued_at` is read from bytes that
are not yet authenticated. That is safe because the signature covers those bytes: a
forged `issued_at` does not verify. A claimed `issued_at` beyond `now` + clock skew is
refused before anything else, so a stolen key cannot sign "from the future" around a
later revocation window.

No I/O here; the caller passes `now`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from por.core.attestation import PAYLOAD_TYPE, Attestation, decode_attestation
from por.core.canonical import loads_strict
from por.core.dsse import (
    Envelope,
    KeySet,
    VerifiedEnvelope,
    verify_envelope,
)
from por.core.times import format_time, parse_time
from por.errors import FormatError, SignatureError


class FutureAttestationError(SignatureError):
    """The attestation claims an issue time later than now plus the allowed clock skew."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedAttestation:
    """An attestation whose envelope verified, with the keys that vouched for it."""

    attestation: Attestation
    envelope: VerifiedEnvelope


def claimed_issued_at(payload: bytes, *, where: str = "payload") -> datetime:
    """The `issued_at` an (unverified) payload claims; a FormatError if it has none."""
    doc = loads_strict(payload, where=where)
    if not isinstance(doc, dict) or "issued_at" not in doc:
        raise FormatError("payload is not an attestation with issued_at", where=where)
    return parse_time(doc["issued_at"], where=f"{where}.issued_at")


def open_attestation_envelope(
    envelope: Envelope,
    keyset: KeySet,
    *,
    now: datetime,
    clock_skew_s: int = 300,
    threshold: int = 1,
    roles: frozenset[str] = frozenset({"issuer"}),
    where: str = "envelope",
) -> VerifiedAttestation:
    """Verify the envelope at the payload's issued_at and decode the verified bytes."""
    issued_at = claimed_issued_at(envelope.payload, where=f"{where}.payload")
    latest = now + timedelta(seconds=clock_skew_s)
    if issued_at > latest:
        raise FutureAttestationError(
            "attestation is issued in the future",
            expected=f"issued_at <= {format_time(latest)} (now + {clock_skew_s} s)",
            computed=format_time(issued_at),
            where=f"{where}.payload.issued_at",
        )
    verified = verify_envelope(envelope, keyset, at=issued_at, threshold=threshold,
                               roles=roles, payload_type=PAYLOAD_TYPE, where=where)
    attestation = decode_attestation(verified.payload, where=f"{where}.payload")
    return VerifiedAttestation(attestation=attestation, envelope=verified)


def verify_attestation_envelope(
    envelope: Envelope,
    keyset: KeySet,
    *,
    now: datetime,
    clock_skew_s: int = 300,
    threshold: int = 1,
    where: str = "envelope",
) -> Attestation:
    """The decoded attestation, once issuer signatures verify at its issued_at; else raise."""
    return open_attestation_envelope(envelope, keyset, now=now, clock_skew_s=clock_skew_s,
                                     threshold=threshold, where=where).attestation


__all__ = [
    "FutureAttestationError",
    "VerifiedAttestation",
    "claimed_issued_at",
    "open_attestation_envelope",
    "verify_attestation_envelope",
]
