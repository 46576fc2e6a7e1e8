"""Co-signatures in the store: witness cosignatures on checkpoints, auditor signatures on
attestations, and where the log stands with each configured witness.

- Witness cosignatures (C2SP tlog-cosignature/v1 lines) are kept per checkpoint size and
  appended to the log's own note when it is served (`witnessed_note`); the signed note the
  log wrote never changes.
- Auditor co-signatures are DSSE signatures over an attestation's payload, one per
  (sequence, auditor key), stored beside the envelope. The envelope and so its log leaf
  never change: inclusion proofs stay valid after an auditor signs.
- Submission state per witness: the size the witness last told us it holds, the largest
  size it cosigned, failures since. A witness behind the latest checkpoint is pending.

Callers verify before storing (the API route, the submitter); this module refuses
duplicates and keeps everything it stores. Database I/O only, through `Database`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from por.core.dsse import Signature
from por.core.note import Cosignature, SignatureLine, parse_signature_lines
from por.core.tlog import add_signature_lines
from por.errors import StoreError
from por.store.base import StoredCheckpoint, UnknownSequenceError
from por.store.db import Database
from por.store.models import (
    AttestationRow,
    AuditorSignatureRow,
    CheckpointRow,
    WitnessCosignatureRow,
    WitnessSubmissionRow,
)


class DuplicateSignatureError(StoreError):
    """That key already has a signature stored for that attestation (HTTP 409)."""


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredAuditorSignature:
    sequence: int
    signature: Signature
    submitted_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmissionState:
    witness: str
    known_size: int
    cosigned_size: int
    attempts: int
    last_error: str | None
    updated_at: datetime


class CosignState:
    """Witness cosignatures, auditor signatures and witness submission state."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- witness cosignatures -------------------------------------------------------------

    def add_witness_cosignatures(self, size: int, cosignatures: Sequence[Cosignature]) -> int:
        """Keep verified cosignatures on the checkpoint of `size`; return how many were new."""
        added = 0
        now = datetime.now(UTC)
        try:
            with self._db.writes.begin() as s:
                if s.get(CheckpointRow, size) is None:
                    raise UnknownSequenceError(f"the log has no checkpoint of size {size}")
                for c in cosignatures:
                    exists = s.scalars(
                        select(WitnessCosignatureRow.id).where(
                            WitnessCosignatureRow.size == size,
                            WitnessCosignatureRow.witness == c.witness.name,
                            WitnessCosignatureRow.key_id == c.witness.key_id,
                        )
                    ).first()
                    if exists is not None:
                        # One line per witness key and size: the newest timestamp wins.
                        row = s.get(WitnessCosignatureRow, exists)
                        if row is not None and c.timestamp > row.timestamp:
                            row.timestamp, row.line, row.received_at = (
                                c.timestamp,
                                c.line.line(),
                                now,
                            )
                        continue
                    s.add(
                        WitnessCosignatureRow(
                            size=size,
                            witness=c.witness.name,
                            key_id=c.witness.key_id,
                            timestamp=c.timestamp,
                            line=c.line.line(),
                            received_at=now,
                        )
                    )
                    added += 1
        except IntegrityError:
            return added  # a concurrent writer stored the same cosignature
        except SQLAlchemyError as e:
            raise StoreError(f"cannot store cosignatures: {e}", where=self._db.where) from e
        return added

    def witness_lines(self, size: int) -> list[SignatureLine]:
        """The stored cosignature lines on the checkpoint of `size`, by witness name."""
        rows = self._db.read(
            lambda s: list(
                s.scalars(
                    select(WitnessCosignatureRow.line)
                    .where(WitnessCosignatureRow.size == size)
                    .order_by(WitnessCosignatureRow.witness, WitnessCosignatureRow.key_id)
                )
            )
        )
        if not rows:
            return []
        return parse_signature_lines("".join(rows), where=f"cosignatures of size {size}")

    def witnessed_note(self, checkpoint: StoredCheckpoint) -> str:
        """The log's signed note with every stored witness cosignature line after it."""
        lines = self.witness_lines(checkpoint.size)
        if not lines:
            return checkpoint.note
        return add_signature_lines(checkpoint.note, lines, where=f"checkpoint {checkpoint.size}")

    # --- submission state -----------------------------------------------------------------

    def submission(self, witness: str) -> SubmissionState | None:
        row = self._db.read(lambda s: s.get(WitnessSubmissionRow, witness))
        if row is None:
            return None
        return SubmissionState(
            witness=row.witness,
            known_size=row.known_size,
            cosigned_size=row.cosigned_size,
            attempts=row.attempts,
            last_error=row.last_error,
            updated_at=_utc(row.updated_at),
        )

    def submissions(self) -> list[SubmissionState]:
        names = self._db.read(
            lambda s: list(s.scalars(select(WitnessSubmissionRow.witness).order_by("witness")))
        )
        return [st for n in names if (st := self.submission(n)) is not None]

    def record_submission(
        self,
        witness: str,
        *,
        known_size: int | None = None,
        cosigned_size: int | None = None,
        error: str | None = None,
    ) -> None:
        """Update what we know of `witness`: its size, what it cosigned, or a failure."""
        now = datetime.now(UTC)
        try:
            with self._db.writes.begin() as s:
                row = s.get(WitnessSubmissionRow, witness)
                if row is None:
                    row = WitnessSubmissionRow(
                        witness=witness,
                        known_size=0,
                        cosigned_size=0,
                        attempts=0,
                        last_error=None,
                        updated_at=now,
                    )
                    s.add(row)
                if known_size is not None:
                    row.known_size = known_size
                if cosigned_size is not None:
                    row.cosigned_size = max(row.cosigned_size, cosigned_size)
                    row.known_size = max(row.known_size, cosigned_size)
                if error is None:
                    row.attempts, row.last_error = 0, None
                else:
                    row.attempts, row.last_error = row.attempts + 1, error[:2000]
                row.updated_at = now
        except SQLAlchemyError as e:
            raise StoreError(f"cannot record witness state: {e}", where=self._db.where) from e

    # --- auditor co-signatures ------------------------------------------------------------

    def add_auditor_signatures(self, sequence: int, signatures: Sequence[Signature]) -> None:
        """Store verified auditor signatures, all or none; DuplicateSignatureError if a key
        already has one for this attestation."""
        try:
            with self._db.writes.begin() as s:
                if s.get(AttestationRow, sequence) is None:
                    raise UnknownSequenceError(
                        f"no attestation with sequence {sequence}", where="sequence"
                    )
                now = datetime.now(UTC)
                for signature in signatures:
                    if s.get(AuditorSignatureRow, (sequence, signature.keyid)) is not None:
                        raise DuplicateSignatureError(
                            f"auditor key {signature.keyid[:16]}… already co-signed "
                            f"attestation {sequence}",
                            where=f"attestation {sequence}",
                        )
                    s.add(
                        AuditorSignatureRow(
                            sequence=sequence,
                            keyid=signature.keyid,
                            sig=signature.sig,
                            submitted_at=now,
                        )
                    )
                    s.flush()
        except IntegrityError as e:  # the same key, at the same moment, from elsewhere
            raise DuplicateSignatureError(
                f"an auditor key already co-signed attestation {sequence}",
                where=f"attestation {sequence}",
            ) from e
        except SQLAlchemyError as e:
            raise StoreError(f"cannot store the co-signature: {e}", where=self._db.where) from e

    def auditor_signatures(self, sequence: int) -> list[StoredAuditorSignature]:
        rows = self._db.read(
            lambda s: list(
                s.scalars(
                    select(AuditorSignatureRow)
                    .where(AuditorSignatureRow.sequence == sequence)
                    .order_by(AuditorSignatureRow.submitted_at, AuditorSignatureRow.keyid)
                )
            )
        )
        return [
            StoredAuditorSignature(
                sequence=r.sequence,
                signature=Signature(keyid=r.keyid, sig=bytes(r.sig)),
                submitted_at=_utc(r.submitted_at),
            )
            for r in rows
        ]


__all__ = [
    "CosignState",
    "DuplicateSignatureError",
    "StoredAuditorSignature",
    "SubmissionState",
]
