"""Run state as rows of the store's database (`por_state_blobs`), and objects over them.

`DbStateBlobs` follows `por.statekv.StateBlobs`: EVM index checkpoints, Solana flow
indexes and memo intents live here when `[service] state = "database"`, so whichever
instance holds the leadership next finds them (nothing on the old leader's disk is
needed). `DbObjects` is an `ObjectStore` (por.store.objects) over the same table, for raw
statements when no S3 store is configured.

I/O: the store's database only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from por.errors import StoreError
from por.statekv import check_name
from por.store.db import Database
from por.store.models import StateBlobRow
from por.store.objects import ObjectMissingError


class DbStateBlobs:
    """Bytes by (namespace, key) in `por_state_blobs`; `put` commits before it returns."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.where = db.where

    def get(self, namespace: str, key: str) -> bytes | None:
        check_name(namespace, what="namespace")
        check_name(key, what="key")
        row = self._db.read(lambda s: s.get(StateBlobRow, (namespace, key)))
        return None if row is None else bytes(row.value)

    def put(self, namespace: str, key: str, value: bytes) -> None:
        check_name(namespace, what="namespace")
        check_name(key, what="key")
        for attempt in range(2):  # two first writers race: the loser updates
            try:
                with self._db.writes.begin() as s:
                    row = s.get(StateBlobRow, (namespace, key), with_for_update=True)
                    now = datetime.now(UTC)
                    if row is None:
                        s.add(
                            StateBlobRow(namespace=namespace, key=key, value=value, updated_at=now)
                        )
                    else:
                        row.value, row.updated_at = value, now
                return
            except IntegrityError as e:
                if attempt:
                    raise StoreError(
                        f"cannot store state {namespace}/{key}: {e}", where=self.where
                    ) from e
            except SQLAlchemyError as e:
                raise StoreError(
                    f"cannot store state {namespace}/{key}: {e}", where=self.where
                ) from e

    def delete(self, namespace: str, key: str) -> None:
        try:
            with self._db.writes.begin() as s:
                s.execute(
                    delete(StateBlobRow).where(
                        StateBlobRow.namespace == namespace, StateBlobRow.key == key
                    )
                )
        except SQLAlchemyError as e:
            raise StoreError(f"cannot delete state {namespace}/{key}: {e}", where=self.where) from e

    def keys(self, namespace: str) -> list[str]:
        return self._db.read(
            lambda s: list(
                s.scalars(
                    select(StateBlobRow.key)
                    .where(StateBlobRow.namespace == namespace)
                    .order_by(StateBlobRow.key)
                )
            )
        )


class DbObjects:
    """An `ObjectStore` in one namespace of `por_state_blobs` (keys with "/" made ":")."""

    def __init__(self, blobs: DbStateBlobs, namespace: str) -> None:
        self._blobs = blobs
        self._namespace = namespace
        self.where = f"{blobs.where} {StateBlobRow.__tablename__}/{namespace}"

    def put(self, key: str, data: bytes) -> None:
        self._blobs.put(self._namespace, key.replace("/", ":"), data)

    def get(self, key: str) -> bytes:
        data = self._blobs.get(self._namespace, key.replace("/", ":"))
        if data is None:
            raise ObjectMissingError(f"no object {key}", where=self.where)
        return data

    def exists(self, key: str) -> bool:
        return self._blobs.get(self._namespace, key.replace("/", ":")) is not None


__all__ = ["DbObjects", "DbStateBlobs"]
