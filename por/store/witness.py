"""The state of a witness an auditor runs (`por witness serve`): per log, what it cosigned.

tlog-witness requires that checking the old size against the latest checkpoint and
persisting the new one happen atomically, and that the new checkpoint is persisted
before the witness answers. `WitnessStateStore.add_checkpoint` does both in ONE write
transaction (SQLite `BEGIN IMMEDIATE`, PostgreSQL a row lock on a guard row): it reads
the origin's row, runs the pure judgement (`por.core.witness.decide`), writes the new
row and commits; only then is the cosignature returned. A refused request whose
checkpoint carried a valid log signature (stale, forked, split view) is kept as
evidence in its own transaction.

Its own database (SQLite file by default), with its own tables (`WitnessBase`), never
the log's. Database I/O only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from por.core.note import NoteSigner, VerifierKey
from por.core.witness import (
    AddCheckpoint,
    Decision,
    SizeConflictError,
    WitnessedLog,
    decide,
    http_status,
    origin_of,
)
from por.errors import PorError, ProofError, StoreError
from por.store.db import Database
from por.store.models import WitnessBase, WitnessEvidenceRow, WitnessLogRow

_GUARD = "\x00guard"  # a row every writer locks first (PostgreSQL: no gap locks on a new key)


class WitnessStateStore:
    """Latest cosigned checkpoint per origin, and evidence of refused signed checkpoints."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @classmethod
    def open(cls, url: str | None, *, data_dir: Path) -> WitnessStateStore:
        data_dir.mkdir(parents=True, exist_ok=True)
        db = Database.connect(url or f"sqlite:///{data_dir / 'witness.db'}")
        try:
            WitnessBase.metadata.create_all(db.engine)
            with db.writes.begin() as s:
                if s.get(WitnessLogRow, _GUARD) is None:
                    s.add(
                        WitnessLogRow(
                            origin=_GUARD,
                            size=0,
                            root_hash=b"",
                            note="",
                            updated_at=datetime.now(UTC),
                        )
                    )
        except IntegrityError:
            pass  # another process created the guard row at the same moment
        except SQLAlchemyError as e:
            raise StoreError(f"cannot create the witness schema: {e}", where=db.where) from e
        return cls(db)

    def close(self) -> None:
        self._db.close()

    def get(self, origin: str) -> WitnessedLog | None:
        row = self._db.read(lambda s: s.get(WitnessLogRow, origin))
        return None if row is None or origin == _GUARD else _state(row)

    def all(self) -> list[WitnessedLog]:
        rows = self._db.read(
            lambda s: list(s.scalars(select(WitnessLogRow).where(WitnessLogRow.origin != _GUARD)))
        )
        return [_state(r) for r in rows]

    def evidence(self, origin: str | None = None) -> list[tuple[int, str, bytes]]:
        """(status, reason, request body) of refused signed checkpoints, oldest first."""
        q = select(WitnessEvidenceRow).order_by(WitnessEvidenceRow.id)
        if origin is not None:
            q = q.where(WitnessEvidenceRow.origin == origin)
        rows = self._db.read(lambda s: list(s.scalars(q)))
        return [(r.status, r.reason, bytes(r.request)) for r in rows]

    def add_checkpoint(
        self,
        request: AddCheckpoint,
        raw: bytes,
        *,
        logs: Mapping[str, VerifierKey],
        name: str,
        signer: NoteSigner,
        clock: Callable[[], int],
    ) -> Decision:
        """Judge and, if accepted, persist atomically; return the decision (raise if not)."""
        try:
            with self._db.writes.begin() as s:
                s.execute(
                    select(WitnessLogRow).where(WitnessLogRow.origin == _GUARD).with_for_update()
                )
                origin = origin_of(request.note)
                row = s.get(WitnessLogRow, origin)
                state = None if row is None or origin == _GUARD else _state(row)
                decision = decide(
                    request, logs=logs, state=state, name=name, signer=signer, timestamp=clock()
                )
                new = decision.state
                if row is None:
                    s.add(
                        WitnessLogRow(
                            origin=new.origin,
                            size=new.size,
                            root_hash=new.root_hash,
                            note=new.note,
                            updated_at=datetime.now(UTC),
                        )
                    )
                else:
                    row.size, row.root_hash, row.note = new.size, new.root_hash, new.note
                    row.updated_at = datetime.now(UTC)
        except (SizeConflictError, ProofError) as e:
            # Only requests that passed the log-signature check get this far.
            self._keep_evidence(request, raw, e)
            raise
        except PorError:
            raise
        except SQLAlchemyError as e:
            raise StoreError(f"cannot update the witness state: {e}", where=self._db.where) from e
        return decision

    def _keep_evidence(self, request: AddCheckpoint, raw: bytes, e: PorError) -> None:
        try:
            with self._db.writes.begin() as s:
                s.add(
                    WitnessEvidenceRow(
                        origin=origin_of(request.note),
                        status=http_status(e),
                        reason=str(e)[:2000],
                        request=raw,
                        received_at=datetime.now(UTC),
                    )
                )
        except SQLAlchemyError as err:
            raise StoreError(f"cannot keep evidence: {err}", where=self._db.where) from err


def _state(row: WitnessLogRow) -> WitnessedLog:
    return WitnessedLog(
        origin=row.origin, size=row.size, root_hash=bytes(row.root_hash), note=row.note
    )


__all__ = ["WitnessStateStore"]
