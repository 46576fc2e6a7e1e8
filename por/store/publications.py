"""Oracle-side state in the store: what each chain's oracle holds, and publish intents.

`record` upserts the publication state of one (chain, sequence) after a publisher ran;
`queue` is the durable publication queue — every regular sequence not yet settled on
each configured chain, oldest first (docs/storage.md); `latest_per_chain` is what
`/v1/oracles` shows. Publish intents are kept as raw JSON
rows keyed by (CAIP-2 chain id, sequence): their meaning — `PublishIntent` — belongs to
the oracle side (`por.oracle.intents.DbIntentStore`), so nothing here imports it.

Database I/O only, through the store's `Database`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from por.core.attestation import KIND_REGULAR
from por.errors import StoreError
from por.store.base import (
    MAX_PUBLICATION_ERROR,
    PENDING,
    SETTLED_STATUSES,
    Publication,
    QueuedPublication,
    publication_queue,
    publication_status,
)
from por.store.db import Database
from por.store.models import AttestationRow, PublicationRow, PublishIntentRow


def _utc(t: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _publication(r: PublicationRow) -> Publication:
    return Publication(
        chain_id=r.chain_id,
        sequence=r.sequence,
        contract=r.contract,
        tx_hash=r.tx_hash,
        block_number=r.block_number,
        status=r.status,
        updated_at=_utc(r.updated_at),
        error=r.error,
        attempts=r.attempts or 0,
        retry_at=None if r.retry_at is None else _utc(r.retry_at),
        superseded_by=r.superseded_by,
    )


class PublicationState:
    """Publication rows and publish-intent rows over one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self,
        chain_id: str,
        sequence: int,
        *,
        contract: str,
        tx_hash: str | None,
        block_number: int | None,
        status: str,
        error: str | None = None,
        retry_at: datetime | None = None,
        superseded_by: int | None = None,
    ) -> None:
        """Insert or update what the oracle on `chain_id` holds for `sequence`.

        `status` is normalised to the fixed vocabulary (it is String(32) on every
        database: PostgreSQL refuses longer text, SQLite would keep it); free text goes
        to `error`, capped. A `pending` status counts one more failed attempt.
        """
        now = datetime.now(UTC)
        normal = publication_status(status)
        if normal != status and error is None:
            error = status  # an older caller's "failed: <reason>"
        if error is not None:
            error = error[:MAX_PUBLICATION_ERROR]
        failed = normal == PENDING
        for attempt in range(2):
            try:
                with self._db.writes.begin() as s:
                    row = s.scalars(
                        select(PublicationRow).where(
                            PublicationRow.chain_id == chain_id, PublicationRow.sequence == sequence
                        )
                    ).first()
                    if row is None:
                        row = PublicationRow(chain_id=chain_id, sequence=sequence, attempts=0)
                        s.add(row)
                    row.contract, row.tx_hash = contract[:128], tx_hash
                    row.block_number, row.status, row.updated_at = block_number, normal, now
                    row.error, row.retry_at = error, retry_at if failed else None
                    row.superseded_by = superseded_by
                    row.attempts = (row.attempts or 0) + 1 if failed else (row.attempts or 0)
                return
            except IntegrityError as e:  # a concurrent insert of the same pair: update it
                if attempt:
                    raise StoreError(f"cannot record publication: {e}", where=self._db.where) from e
            except SQLAlchemyError as e:
                raise StoreError(f"cannot record publication: {e}", where=self._db.where) from e

    def queue(self, chain_ids: Sequence[str]) -> list[QueuedPublication]:
        """What is still to publish to `chain_ids`, oldest first (base.publication_queue)."""
        if not chain_ids:
            return []

        def q(s: Session) -> tuple[list[int], list[PublicationRow]]:
            settled = dict(
                s.execute(
                    select(PublicationRow.chain_id, func.max(PublicationRow.sequence))
                    .where(
                        PublicationRow.chain_id.in_(chain_ids),
                        PublicationRow.status.in_(SETTLED_STATUSES),
                    )
                    .group_by(PublicationRow.chain_id)
                ).all()
            )
            # rows and sequences from the oldest point any chain may still need
            floor = min((int(settled.get(c, 0) or 0) for c in chain_ids), default=0)
            rows = list(
                s.scalars(
                    select(PublicationRow).where(
                        PublicationRow.chain_id.in_(chain_ids), PublicationRow.sequence >= floor
                    )
                )
            )
            seqs = [
                int(x)
                for x in s.scalars(
                    select(AttestationRow.sequence).where(
                        AttestationRow.kind == KIND_REGULAR, AttestationRow.sequence >= floor
                    )
                )
            ]
            return seqs, rows

        seqs, rows = self._db.read(q)
        return publication_queue(chain_ids, seqs, [_publication(r) for r in rows])

    def latest_per_chain(self) -> list[Publication]:
        """Per chain, the publication of the highest sequence, ordered by chain id."""

        def q(s: Session) -> list[PublicationRow]:
            newest = (
                select(PublicationRow.chain_id, func.max(PublicationRow.sequence).label("seq"))
                .group_by(PublicationRow.chain_id)
                .subquery()
            )
            return list(
                s.scalars(
                    select(PublicationRow)
                    .join(
                        newest,
                        (PublicationRow.chain_id == newest.c.chain_id)
                        & (PublicationRow.sequence == newest.c.seq),
                    )
                    .order_by(PublicationRow.chain_id)
                )
            )

        return [_publication(r) for r in self._db.read(q)]

    def get(self, chain_id: str, sequence: int) -> Publication | None:
        """The publication state of one (chain, sequence), or None."""
        row = self._db.read(
            lambda s: s.scalars(
                select(PublicationRow).where(
                    PublicationRow.chain_id == chain_id, PublicationRow.sequence == sequence
                )
            ).first()
        )
        return None if row is None else _publication(row)

    def counts(self) -> dict[tuple[str, str], int]:
        """(chain id, status) -> number of rounds, for the metrics."""
        rows = self._db.read(
            lambda s: s.execute(
                select(PublicationRow.chain_id, PublicationRow.status, func.count()).group_by(
                    PublicationRow.chain_id, PublicationRow.status
                )
            ).all()
        )
        return {(str(c), str(st)): int(n) for c, st, n in rows}

    # --- publish intents (raw JSON) -----------------------------------------------------

    def get_intent_json(self, chain_id: str, sequence: int) -> bytes | None:
        row = self._db.read(
            lambda s: s.scalars(
                select(PublishIntentRow).where(
                    PublishIntentRow.chain_id == chain_id, PublishIntentRow.sequence == sequence
                )
            ).first()
        )
        return None if row is None else bytes(row.intent_json)

    def put_intent_json(self, chain_id: str, sequence: int, intent_json: bytes) -> None:
        """Insert or replace one intent row; committed before this returns."""
        now = datetime.now(UTC)
        for attempt in range(2):
            try:
                with self._db.writes.begin() as s:
                    row = s.scalars(
                        select(PublishIntentRow).where(
                            PublishIntentRow.chain_id == chain_id,
                            PublishIntentRow.sequence == sequence,
                        )
                    ).first()
                    if row is None:
                        s.add(
                            PublishIntentRow(
                                chain_id=chain_id,
                                sequence=sequence,
                                intent_json=intent_json,
                                updated_at=now,
                            )
                        )
                    else:
                        row.intent_json, row.updated_at = intent_json, now
                return
            except IntegrityError as e:
                if attempt:
                    raise StoreError(
                        f"cannot store publish intent: {e}", where=self._db.where
                    ) from e
            except SQLAlchemyError as e:
                raise StoreError(f"cannot store publish intent: {e}", where=self._db.where) from e


__all__ = ["PublicationState"]
