"""Oracle-side state in the store: what each chain's oracle holds, and publish intents.

`record` upserts the publication state of one (chain, sequence) after a publisher ran;
`latest_per_chain` is what `/v1/oracles` shows. Publish intents are kept as raw JSON
rows keyed by (CAIP-2 chain id, sequence): their meaning — `PublishIntent` — belongs to
the oracle side (`por.oracle.intents.DbIntentStore`), so nothing here imports it.

Database I/O only, through the store's `Database`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from por.errors import StoreError
from por.store.base import Publication
from por.store.db import Database
from por.store.models import PublicationRow, PublishIntentRow


def _utc(t: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


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
    ) -> None:
        """Insert or update what the oracle on `chain_id` holds for `sequence`."""
        now = datetime.now(UTC)
        for attempt in range(2):
            try:
                with self._db.writes.begin() as s:
                    row = s.scalars(
                        select(PublicationRow).where(
                            PublicationRow.chain_id == chain_id, PublicationRow.sequence == sequence
                        )
                    ).first()
                    if row is None:
                        s.add(
                            PublicationRow(
                                chain_id=chain_id,
                                sequence=sequence,
                                contract=contract,
                                tx_hash=tx_hash,
                                block_number=block_number,
                                status=status,
                                updated_at=now,
                            )
                        )
                    else:
                        row.contract, row.tx_hash = contract, tx_hash
                        row.block_number, row.status, row.updated_at = block_number, status, now
                return
            except IntegrityError as e:  # a concurrent insert of the same pair: update it
                if attempt:
                    raise StoreError(f"cannot record publication: {e}", where=self._db.where) from e
            except SQLAlchemyError as e:
                raise StoreError(f"cannot record publication: {e}", where=self._db.where) from e

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

        return [
            Publication(
                chain_id=r.chain_id,
                sequence=r.sequence,
                contract=r.contract,
                tx_hash=r.tx_hash,
                block_number=r.block_number,
                status=r.status,
                updated_at=_utc(r.updated_at),
            )
            for r in self._db.read(q)
        ]

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
