"""The attestation log (RFC 9162, DESIGN §5) as the store keeps it: leaves, checkpoints, proofs.

Every recorded attestation appends one leaf, `H(0x00 ‖ SHA-256(envelope bytes))`, and a
signed checkpoint of the new size, inside the same transaction as the attestation row
(`AttestationLog.append`, called by `Store.record`). Reads serve the API: the latest
checkpoint, the inclusion proof of one attestation, the consistency proof between two
checkpointed sizes. The Merkle tree over the leaf hashes is rebuilt once from the
database and then extended, never rebuilt per request.

Database I/O only, through the store's `Database`; no files.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from por.core.tlog import Checkpoint, LogTree
from por.errors import InputError, StoreError
from por.store.base import (
    LogConsistency,
    LogInclusion,
    SignCheckpoint,
    StoredCheckpoint,
    UnknownSequenceError,
)
from por.store.db import Database
from por.store.models import AttestationRow, CheckpointRow, LogLeafRow


class AttestationLog:
    """The log over one database, with the Merkle tree cached in memory."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._tree: LogTree | None = None

    # --- writing (inside the caller's transaction) --------------------------------------

    @contextmanager
    def appending(self) -> Iterator[None]:
        """Hold the log while a write transaction appends to it.

        Wrap the caller's transaction (enter this first, so it exits last): if anything
        fails, the commit included, the in-memory tree may hold a leaf the database does
        not, so it is dropped and rebuilt from the database on next use.
        """
        with self._lock:
            try:
                yield
            except BaseException:
                self._tree = None
                raise

    def append(
        self,
        s: Session,
        *,
        sequence: int,
        leaf_hash: bytes,
        origin: str,
        sign_checkpoint: SignCheckpoint,
    ) -> tuple[int, StoredCheckpoint]:
        """Add the leaf of attestation `sequence` and the signed checkpoint of the new size
        to write session `s` (inside `appending()`); return the leaf index and checkpoint."""
        log_size = s.execute(select(func.count()).select_from(LogLeafRow)).scalar_one()
        tree = self._tree_in(s)
        if tree.size != log_size:
            raise StoreError(
                f"log has {log_size} leaves in the database but {tree.size} in memory",
                where=self._db.where,
            )
        index = tree.append(leaf_hash)
        checkpoint = Checkpoint(origin=origin, size=tree.size, root_hash=tree.root())
        note = sign_checkpoint(checkpoint)
        s.add(LogLeafRow(leaf_index=index, sequence=sequence, leaf_hash=leaf_hash))
        s.add(CheckpointRow(size=checkpoint.size, root_hash=checkpoint.root_hash, note=note))
        return index, StoredCheckpoint(
            size=checkpoint.size, root_hash=checkpoint.root_hash, note=note
        )

    def _tree_in(self, s: Session) -> LogTree:
        """The cached tree extended with leaves from session `s` (caller holds the lock)."""
        if self._tree is None:
            self._tree = LogTree()
        tree = self._tree
        rows = s.execute(
            select(LogLeafRow.leaf_index, LogLeafRow.leaf_hash)
            .where(LogLeafRow.leaf_index >= tree.size)
            .order_by(LogLeafRow.leaf_index)
        )
        for index, h in rows:
            if int(index) != tree.size:
                raise StoreError(
                    f"log leaf {tree.size} is missing from the database", where=self._db.where
                )
            tree.append(bytes(h))
        return tree

    # --- reads --------------------------------------------------------------------------

    def tree(self) -> LogTree:
        """The log over every committed leaf (cached, extended on demand)."""
        try:
            with self._lock, self._db.reads() as s:
                return self._tree_in(s)
        except SQLAlchemyError as e:
            raise StoreError(f"database read failed: {e}", where=self._db.where) from e

    def checkpoint(self) -> StoredCheckpoint | None:
        """The latest signed checkpoint, or None while the log is empty."""
        row = self._db.read(
            lambda s: s.scalars(
                select(CheckpointRow).order_by(CheckpointRow.size.desc()).limit(1)
            ).first()
        )
        if row is None:
            return None
        return StoredCheckpoint(size=row.size, root_hash=bytes(row.root_hash), note=row.note)

    def checkpoint_at(self, size: int) -> StoredCheckpoint:
        row = self._db.read(lambda s: s.get(CheckpointRow, size))
        if row is None:
            raise UnknownSequenceError(f"the log has no checkpoint of size {size}", where="size")
        return StoredCheckpoint(size=row.size, root_hash=bytes(row.root_hash), note=row.note)

    def inclusion(self, sequence: int) -> LogInclusion:
        """Where attestation `sequence` sits in the log, proved against the latest checkpoint."""
        cp = self.checkpoint()
        leaf = self._db.read(
            lambda s: s.scalars(select(LogLeafRow).where(LogLeafRow.sequence == sequence)).first()
        )
        if cp is None or leaf is None or leaf.leaf_index >= cp.size:
            raise UnknownSequenceError(
                f"attestation {sequence} is not in the log", where="sequence"
            )
        path = self.tree().inclusion_proof(leaf.leaf_index, cp.size)
        return LogInclusion(
            sequence=sequence,
            leaf_index=leaf.leaf_index,
            tree_size=cp.size,
            leaf_hash=bytes(leaf.leaf_hash),
            path=tuple(path),
            root_hash=cp.root_hash,
            checkpoint_note=cp.note,
        )

    def envelopes(self, start: int, count: int) -> list[bytes]:
        """The envelope bytes of leaves start .. start+count-1, in leaf order (the log's
        entries are SHA-256 of these; C2SP tlog-tiles bundles serve both)."""
        rows = self._db.read(
            lambda s: list(
                s.execute(
                    select(LogLeafRow.leaf_index, AttestationRow.envelope_json)
                    .join(AttestationRow, AttestationRow.sequence == LogLeafRow.sequence)
                    .where(LogLeafRow.leaf_index >= start, LogLeafRow.leaf_index < start + count)
                    .order_by(LogLeafRow.leaf_index)
                )
            )
        )
        if [int(i) for i, _ in rows] != list(range(start, start + count)):
            raise StoreError(
                f"log leaves {start}..{start + count - 1} are not all in the database",
                where=self._db.where,
            )
        return [bytes(e) for _, e in rows]

    def consistency(self, from_size: int, to_size: int) -> LogConsistency:
        """RFC 9162 consistency proof between two checkpointed sizes of the log."""
        if not 1 <= from_size <= to_size:
            raise InputError(
                f"need 1 <= from <= to, got from={from_size} to={to_size}", where="from"
            )
        old, new = self.checkpoint_at(from_size), self.checkpoint_at(to_size)
        path = self.tree().consistency_proof(from_size, to_size)
        return LogConsistency(
            from_size=from_size,
            to_size=to_size,
            from_root=old.root_hash,
            to_root=new.root_hash,
            path=tuple(path),
        )


__all__ = ["AttestationLog"]
