"""The store: attestations and their tree files, with the log and publication state beside.

SQLite by default (one file under the data directory, WAL, busy timeout), PostgreSQL
by URL (psycopg 3; see `por.store.db`). `Store.record` is the one write path of an
attestation run and is atomic in the sense of DESIGN §1:

1. the sum-tree file is written (temp + fsync + rename) under `<data_dir>/trees/`;
   a crash here leaves an orphan file nobody references, removed later;
2. ONE database transaction checks that the sequence is `latest + 1` and that
   `previous` names the latest row, then inserts the attestation, its log leaf and the
   new signed checkpoint (`por.store.log`). Writers are serialised by a row lock
   (PostgreSQL) or `BEGIN IMMEDIATE` (SQLite), and the primary keys make a second row
   for one sequence impossible even if that lock were bypassed;
3. after commit, `<attestations_dir>/<sequence:08d>.dsse.json` and `checkpoint.txt`
   are written atomically. A crash before that is repaired by `materialize_files()`
   (run by `Store.open`), which rewrites missing or partial files from the database.

With an object store (`objects`, por.store.objects; `[artifacts] kind = "s3"`) step 1
writes the tree as content-addressed shards instead (por.store.shards) and the row names
its top file (`tree_file = "objects:<sha256>"`); a store that refuses a write fails the
record before the transaction, so no attestation names a tree that is not stored.

Reads serve the API: tree files are loaded with `SumTree.from_bytes` (no rebuild),
checked against their stored SHA-256 and kept in a small LRU cache. The log's reads
(`log_tree`, `checkpoint`, `inclusion`, `consistency`) are `por.store.log`'s, the
publication state (`record_publication`, `publications`, intent rows) is
`por.store.publications`'s; `Store` hands them on under the names the API calls.
The value types and the `AttestationStore` protocol a run needs are in `por.store.base`.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import logging
import mmap
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, overload

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from por.chains.base import ChainSnapshot, snapshot_from_dict, snapshot_to_dict
from por.core.attestation import KIND_REGULAR, Attestation
from por.core.dsse import Envelope, KeySet
from por.core.sumtree import SumTree
from por.core.tlog import LogTree, envelope_leaf_hash
from por.crashpoints import crashpoint
from por.errors import FormatError, PorError, StoreError
from por.store import migrate as migrations
from por.store.base import (
    LogConsistency,
    LogInclusion,
    Publication,
    QueuedPublication,
    Recorded,
    SequenceConflictError,
    SignCheckpoint,
    SourceDocument,
    StoredAttestation,
    StoredCheckpoint,
    UnknownSequenceError,
    check_link,
    check_matches_input,
    check_record_inputs,
)
from por.store.cosign import CosignState
from por.store.db import Database
from por.store.files import TEMP_SUFFIX, read_file, secure_dir, secure_file, write_atomic
from por.store.integrity import TamperedRowError, check_row
from por.store.leader import FileLeadership, Leadership, PostgresLeadership
from por.store.log import AttestationLog
from por.store.models import (
    AlertDeadLetterRow,
    AttestationRow,
    ChainSnapshotRow,
    MetaRow,
    ReconciliationRow,
    SourceDocumentRow,
)
from por.store.objects import ObjectStore
from por.store.publications import PublicationState
from por.store.shards import (
    DEFAULT_CACHE_BYTES,
    DEFAULT_SHARD_LEAVES,
    ShardCache,
    ShardedTree,
    load_top,
    write_sharded,
)
from por.store.state import DbStateBlobs

CHECKPOINT_FILE = "checkpoint.txt"
TREES_DIR = "trees"
OBJECTS_PREFIX = "objects:"
"""`tree_file` of a tree stored as shards: the prefix, then its top file's SHA-256."""
ORPHAN_MIN_AGE_S = 3600.0
"""A tree file no row names is deleted only when older than this: a writer in another
process may be between writing its tree file and committing its row."""

log = logging.getLogger("por.store")

_HEAD_KEY = "head"  # the row writers lock: serialises record() across processes


def envelope_file_name(sequence: int) -> str:
    return f"{sequence:08d}.dsse.json"


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'por.db'}"


def _stored(row: AttestationRow) -> StoredAttestation:
    return StoredAttestation(
        sequence=row.sequence,
        digest=row.digest,
        envelope_json=bytes(row.envelope_json),
        document_json=bytes(row.document_json),
        status=row.status,
        ratio=row.ratio,
        eligible_reserves=row.eligible_reserves,
        circulating_supply=row.circulating_supply,
        liabilities_root=row.liabilities_root,
        tree_file=row.tree_file,
        tree_sha256=row.tree_sha256,
        kind=row.kind,
    )


TREES_PASSED_MAX = 4096


def _file_identity(path: Path, sha256: str) -> tuple[int, ...] | None:
    """What changes when a file is replaced or written to (None: it cannot be read)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        int(sha256[:15], 16),
    )


def _sqlite_file(db: Database) -> Path | None:
    """The database file of a SQLite store (None: PostgreSQL, or in memory)."""
    if db.is_postgres:
        return None
    name = db.url.database
    return Path(name) if name and name != ":memory:" else None


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)  # SQLite drops the zone


@dataclass(slots=True)
class _TreeCheck:
    """The background check of one mapped tree file (Store.tree)."""

    where: str
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


def _map_file(path: Path, sequence: int) -> mmap.mmap:
    """The file mapped read-only (StoreError when it is missing or empty)."""
    try:
        with open(path, "rb") as f:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError as e:
        raise StoreError(f"tree file of attestation {sequence} is missing", where=str(path)) from e
    except (OSError, ValueError) as e:  # ValueError: an empty file cannot be mapped
        raise StoreError(
            f"cannot map the tree file of attestation {sequence}: {e}", where=str(path)
        ) from e


class Store:
    """Attestations and tree files, the log and publication state, over one database URL.

    Follows `por.store.base.AttestationStore` (what a run needs) and serves the API.
    """

    def __init__(
        self,
        db: Database,
        *,
        data_dir: Path,
        attestations_dir: Path,
        tree_cache_size: int = 2,
        keyset: KeySet | None = None,
        objects: ObjectStore | None = None,
        shard_leaves: int = DEFAULT_SHARD_LEAVES,
        shard_cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self._db = db
        self.data_dir = data_dir
        self.attestations_dir = attestations_dir
        self.trees_dir = data_dir / TREES_DIR
        self.is_postgres = db.is_postgres
        self.log = AttestationLog(db)
        self.publication_state = PublicationState(db)
        self.state = DbStateBlobs(db)  # run state out of files ([service] state = "database")
        self.cosign = CosignState(db)  # witness cosignatures, auditor signatures (cosign.py)
        self.objects = objects  # None: tree files under data_dir (the embedded default)
        self.shard_leaves = shard_leaves
        self.shards = ShardCache(shard_cache_bytes)
        self._tree_cache: OrderedDict[int, SumTree | ShardedTree] = OrderedDict()
        self._tree_checks: dict[int, _TreeCheck] = {}
        self._tree_cache_size = tree_cache_size
        self._tree_lock = threading.Lock()  # the dictionaries only: never held during I/O
        self._tree_loading: dict[int, list[Any]] = {}  # sequence -> [its lock, waiters]
        # sequence -> identity of its tree file when it last passed the full check
        self._trees_passed: OrderedDict[int, tuple[int, ...]] = OrderedDict()
        self._recorded_listeners: list[Callable[[int], None]] = []
        self._keyset = keyset
        self._files_pending = False  # a record's published files are not all written
        self._files_pending_error: str | None = None
        self.integrity_problems: list[str] = []  # rows materialize_files refused

    # --- opening ----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str | None,
        *,
        data_dir: Path,
        attestations_dir: Path,
        tree_cache_size: int = 2,
        materialize: bool = True,
        migrate: bool = False,
        keyset: KeySet | None = None,
        objects: ObjectStore | None = None,
        shard_leaves: int = DEFAULT_SHARD_LEAVES,
        shard_cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> Store:
        """Connect, check the schema, and repair the published files.

        The database must be at the newest schema revision (`por db upgrade`), else a
        StoreError names the command; `migrate=True` upgrades it first (`por demo` on its
        fresh database, and tests).

        `keyset` (the published key set): rows are copied to `attestations/` only when
        their issuer signature verifies (materialize_files); None checks everything else.

        `url` None means the default SQLite file `<data_dir>/por.db`. For PostgreSQL use
        `postgresql+psycopg://user@host:port/db`; a schema other than `public` can be
        chosen with `?options=-csearch_path%3D<schema>`.
        """
        data_dir = Path(data_dir)
        attestations_dir = Path(attestations_dir)
        secure_dir(data_dir)  # 0700: the database and tree files hold the round secrets
        db = Database.connect(url or default_url(data_dir))
        sqlite_file = _sqlite_file(db)
        if sqlite_file is not None:
            secure_file(sqlite_file, create=True)
        store = cls(
            db,
            data_dir=data_dir,
            attestations_dir=attestations_dir,
            tree_cache_size=tree_cache_size,
            keyset=keyset,
            objects=objects,
            shard_leaves=shard_leaves,
            shard_cache_bytes=shard_cache_bytes,
        )
        try:
            if migrate:
                migrations.upgrade(store._db)
            migrations.check(store._db)
        except BaseException:
            store.close()
            raise
        if sqlite_file is not None:  # files an older version or another tool created
            for suffix in ("-wal", "-shm", "-journal"):
                secure_file(sqlite_file.with_name(sqlite_file.name + suffix))
        if materialize:
            store.materialize_files()
            store.clean_orphans()
        return store

    def close(self) -> None:
        self._db.close()

    def on_recorded(self, listener: Callable[[int], None]) -> None:
        """Call `listener(sequence)` after each commit of `record` in this process (the
        API's in-memory latest sequence; other processes poll, see por.api.deps)."""
        self._recorded_listeners.append(listener)

    # --- the write path ---------------------------------------------------------------

    def record(
        self,
        *,
        attestation: Attestation,
        envelope: Envelope,
        tree: SumTree,
        round_secret: bytes,
        sign_checkpoint: SignCheckpoint,
        origin: str,
        matches: bytes | None = None,
    ) -> Recorded:
        """Record one signed attestation atomically (see the module docstring)."""
        seq = attestation.sequence
        self.retry_published_files()  # an earlier record's files, if they failed
        payload = check_record_inputs(attestation, envelope, tree, round_secret)
        check_matches_input(attestation, matches)
        envelope_json = envelope.to_json_bytes()
        digest = attestation.digest()

        # 1. The tree, before anything refers to it.
        tree_name, tree_sha = self._write_tree(seq, tree, digest)
        crashpoint("after_tree_file")

        # 2. One transaction for row, log leaf and checkpoint. If it fails (the commit
        # included) nothing of this round may stay behind: the log drops its in-memory
        # tree (`appending`) and the tree file goes, unless the database names it after all.
        try:
            index, checkpoint = self._commit(
                attestation,
                payload=payload,
                envelope_json=envelope_json,
                digest=digest,
                tree_name=tree_name,
                tree_sha=tree_sha,
                round_secret=round_secret,
                sign_checkpoint=sign_checkpoint,
                origin=origin,
                matches=matches,
            )
        except BaseException:
            self._drop_tree_file(seq, tree_name)
            raise

        crashpoint("after_commit")
        # listeners keep "the latest" (API caches): a point-in-time attestation never is
        for listener in self._recorded_listeners if attestation.kind == KIND_REGULAR else ():
            try:
                listener(seq)
            except Exception:  # a reader's cache must never fail a committed record
                log.exception("recorded listener failed for sequence %d", seq)
        # 3. The published files. The commit is the truth; a failure here is logged,
        # retried now a few times, then again before the next record (and at start).
        file_error = self._write_published(seq, envelope_json, checkpoint.note)
        return Recorded(
            sequence=seq,
            digest=digest,
            leaf_index=index,
            checkpoint=checkpoint,
            tree_file=tree_name,
            file_error=file_error,
        )

    def _commit(
        self,
        attestation: Attestation,
        *,
        payload: bytes,
        envelope_json: bytes,
        digest: str,
        tree_name: str,
        tree_sha: str,
        round_secret: bytes,
        sign_checkpoint: SignCheckpoint,
        origin: str,
        matches: bytes | None,
    ) -> tuple[int, StoredCheckpoint]:
        """The one transaction of `record`: row, log leaf, checkpoint (step 2)."""
        seq = attestation.sequence
        try:
            with self.log.appending(), self._db.writes.begin() as s:
                s.execute(select(MetaRow).where(MetaRow.key == _HEAD_KEY).with_for_update())
                latest = s.execute(
                    select(AttestationRow.sequence, AttestationRow.digest)
                    .order_by(AttestationRow.sequence.desc())
                    .limit(1)
                ).first()
                check_link(attestation, None if latest is None else (int(latest[0]), latest[1]))
                totals = attestation.totals
                s.add(
                    AttestationRow(
                        sequence=seq,
                        digest=digest,
                        previous_digest=None
                        if attestation.previous is None
                        else attestation.previous.digest,
                        envelope_json=envelope_json,
                        document_json=payload,
                        issued_at=attestation.issued_at,
                        as_of=attestation.as_of,
                        status=totals.status,
                        ratio=totals.ratio,
                        eligible_reserves=str(totals.eligible_reserves),
                        circulating_supply=str(totals.circulating_supply),
                        liabilities_root=attestation.liabilities.root,
                        tree_file=tree_name,
                        tree_sha256=tree_sha,
                        round_secret=round_secret,
                        recorded_at=datetime.now(UTC),
                        kind=attestation.kind,
                    )
                )
                s.flush()  # the attestation row first: the leaf references it
                if matches is not None and attestation.reconciliation is not None:
                    s.add(
                        ReconciliationRow(
                            sequence=seq,
                            sha256=attestation.reconciliation.matches_sha256,
                            matches_json=matches,
                        )
                    )
                index, checkpoint = self.log.append(
                    s,
                    sequence=seq,
                    leaf_hash=envelope_leaf_hash(envelope_json),
                    origin=origin,
                    sign_checkpoint=sign_checkpoint,
                )
                s.execute(update(MetaRow).where(MetaRow.key == _HEAD_KEY).values(value=str(seq)))
                s.flush()
                crashpoint("before_commit")
        except IntegrityError as e:
            if self._recorded_sequence(seq):
                raise SequenceConflictError(
                    f"sequence {seq} was recorded by another writer", where=self._db.where
                ) from e
            # not a second writer: a constraint that fired at commit (deferred) or any
            # other integrity error is reported as what it is
            raise StoreError(
                f"recording attestation {seq} failed: {e.orig or e}", where=self._db.where
            ) from e
        except OperationalError as e:
            raise StoreError(
                f"recording attestation {seq} failed: {e.orig or e}", where=self._db.where
            ) from e
        except SQLAlchemyError as e:
            raise StoreError(
                f"recording attestation {seq} failed: {e}", where=self._db.where
            ) from e
        return index, checkpoint

    def _recorded_sequence(self, sequence: int) -> bool:
        """Whether a row for `sequence` exists (False when the database cannot say)."""
        try:
            return self._db.read(lambda s: s.get(AttestationRow, sequence)) is not None
        except StoreError:
            return False

    def _drop_tree_file(self, sequence: int, tree_name: str) -> None:
        """Remove the tree file of a round whose commit failed, unless a row names it
        (a commit whose outcome was lost may have gone through); an unreachable database
        leaves it for `clean_orphans`."""
        try:
            named = self._db.read(
                lambda s: s.execute(
                    select(AttestationRow.sequence).where(AttestationRow.tree_file == tree_name)
                ).first()
            )
        except StoreError:
            log.warning(
                "tree file %s of failed round %d kept for later cleaning", tree_name, sequence
            )
            return
        if named is None:
            with contextlib.suppress(FileNotFoundError):
                (self.trees_dir / tree_name).unlink()

    def _write_tree(self, seq: int, tree: SumTree, digest: str) -> tuple[str, str]:
        """Store the tree (file or shards); return (tree_file, SHA-256) for the row."""
        if self.objects is not None:
            try:
                top_sha, _ = write_sharded(tree, self.objects, shard_leaves=self.shard_leaves)
            except StoreError as e:
                raise StoreError(
                    f"storing the tree of attestation {seq} failed, nothing recorded: {e.message}",
                    where=e.where,
                ) from e
            return OBJECTS_PREFIX + top_sha, top_sha
        # a file written in pieces and hashed as it goes: at 10^7 leaves one more copy
        # of it would be 1.4 GB
        file_digest = hashlib.sha256()

        def pieces() -> Iterator[bytes | memoryview]:
            for piece in tree.to_byte_chunks():
                file_digest.update(piece)
                yield piece

        tree_name = f"{seq}-{tree.root.hash.hex()[:16]}-{digest[:8]}.mst"
        write_atomic(self.trees_dir / tree_name, pieces())
        return tree_name, file_digest.hexdigest()

    # --- published files --------------------------------------------------------------

    FILE_ATTEMPTS = 3

    def _write_published(self, seq: int, envelope_json: bytes, note: str) -> str | None:
        """Write the envelope file and the checkpoint; the error text if every attempt
        failed (logged; `retry_published_files` tries again before the next record)."""
        error = None
        for attempt in range(self.FILE_ATTEMPTS):
            try:
                write_atomic(self.attestations_dir / envelope_file_name(seq), envelope_json)
                crashpoint("after_envelope_file")
                write_atomic(self.attestations_dir / CHECKPOINT_FILE, note.encode("utf-8"))
                crashpoint("after_checkpoint_file")
            except StoreError as e:
                error = str(e)
                log.warning(
                    "attestation %d: writing its published file failed (attempt %d of %d): %s",
                    seq,
                    attempt + 1,
                    self.FILE_ATTEMPTS,
                    error,
                )
                time.sleep(0.05 * 2**attempt)
                continue
            return None
        self._files_pending = True
        log.error(
            "attestation %d is recorded, but its published files could not be written: %s "
            "(retried before the next record and at start)",
            seq,
            error,
        )
        return error

    def retry_published_files(self) -> None:
        """If a record left its published files unwritten, write what is missing now."""
        if not self._files_pending:
            return
        try:
            written = self.materialize_files()
        except StoreError as e:
            log.error("published files are still not written: %s", e)
            return
        if self._files_pending_error is None:
            self._files_pending = False
            log.info("published files repaired: %d written", written)

    def materialize_files(self) -> int:
        """Rewrite every missing or differing envelope file and the checkpoint; return
        how many files were written.

        Only a row that is what was signed is written (por.store.integrity.check_row,
        with the signature when the store was opened with a key set): a row whose
        document differs from its envelope, or whose signature does not verify, never
        overwrites a published file; it is logged at ERROR and listed in
        `integrity_problems`. A file that cannot be written is logged and retried."""
        written = 0
        problems: list[str] = []
        failed: str | None = None
        try:
            with self._db.reads() as s:
                rows = s.scalars(
                    select(AttestationRow)
                    .order_by(AttestationRow.sequence)
                    .execution_options(yield_per=256)
                )
                for row in rows:
                    stored = _stored(row)
                    path = self.attestations_dir / envelope_file_name(stored.sequence)
                    current = read_file(path)
                    if current == stored.envelope_json:
                        continue
                    try:
                        check_row(stored, self._keyset)
                    except TamperedRowError as e:
                        problems.append(str(e))
                        log.error("%s; %s left as it is", e.diagnostics(), path)
                        continue
                    try:
                        write_atomic(path, stored.envelope_json)
                    except StoreError as e:
                        failed = str(e)
                        log.error("writing a published envelope failed: %s", e)
                        continue
                    written += 1
        except SQLAlchemyError as e:
            raise StoreError(f"database read failed: {e}", where=self._db.where) from e
        self.integrity_problems = problems
        self._files_pending_error = failed
        if failed is not None:
            self._files_pending = True
        cp = self.checkpoint()
        if cp is not None:
            path = self.attestations_dir / CHECKPOINT_FILE
            if read_file(path) != cp.note.encode("utf-8"):
                try:
                    write_atomic(path, cp.note.encode("utf-8"))
                except StoreError as e:
                    self._files_pending = True
                    self._files_pending_error = str(e)
                    log.error("writing the published checkpoint failed: %s", e)
                    return written
                written += 1
        return written

    def clean_orphans(self, *, min_age_s: float = ORPHAN_MIN_AGE_S) -> list[str]:
        """Delete tree files (and temp files) that no row names, once old enough."""
        if not self.trees_dir.is_dir():
            return []
        named = set(self._db.read(lambda s: list(s.scalars(select(AttestationRow.tree_file)))))
        removed: list[str] = []
        cutoff = time.time() - min_age_s
        for p in self.trees_dir.iterdir():
            if p.name in named or not (p.suffix == ".mst" or p.name.endswith(TEMP_SUFFIX)):
                continue
            with contextlib.suppress(FileNotFoundError):
                if p.stat().st_mtime <= cutoff:
                    p.unlink()
                    removed.append(p.name)
        return removed

    # --- reads: attestations and trees ------------------------------------------------

    def latest_sequence(self) -> int | None:
        seq = self._db.read(
            lambda s: s.execute(select(func.max(AttestationRow.sequence))).scalar_one_or_none()
        )
        return None if seq is None else int(seq)

    def latest_issued(self) -> tuple[int, datetime] | None:
        """(sequence, issued_at) of the latest regular attestation: /healthz and the stale
        alarm (a point-in-time attestation, however new, says nothing about the present)."""
        row = self._db.read(
            lambda s: s.execute(
                select(AttestationRow.sequence, AttestationRow.issued_at)
                .where(AttestationRow.kind == KIND_REGULAR)
                .order_by(AttestationRow.sequence.desc())
                .limit(1)
            ).first()
        )
        if row is None:
            return None
        issued = row[1] if row[1].tzinfo else row[1].replace(tzinfo=UTC)  # SQLite drops it
        return int(row[0]), issued

    # --- alert dead letters (por.service.alerts) ----------------------------------------

    def record_dead_letter(
        self, *, alert_id: str, kind: str, url: str, body: bytes, attempts: int, last_error: str
    ) -> None:
        """Keep an alert whose webhook delivery failed every attempt."""
        row = AlertDeadLetterRow(
            alert_id=alert_id[:64],
            kind=kind[:64],
            url=url[:512],
            body=body,
            attempts=attempts,
            last_error=last_error[:2000],
            created_at=datetime.now(UTC),
        )
        try:
            with self._db.writes.begin() as s:
                s.add(row)
        except SQLAlchemyError as e:
            raise StoreError(f"recording a dead letter failed: {e}", where=self._db.where) from e

    def dead_letters(self) -> builtins.list[dict[str, object]]:
        rows = self._db.read(
            lambda s: s.scalars(select(AlertDeadLetterRow).order_by(AlertDeadLetterRow.id)).all()
        )
        return [
            {
                "alert_id": r.alert_id,
                "kind": r.kind,
                "url": r.url,
                "body": bytes(r.body),
                "attempts": r.attempts,
                "last_error": r.last_error,
            }
            for r in rows
        ]

    def latest(self) -> StoredAttestation | None:
        row = self._db.read(
            lambda s: s.scalars(
                select(AttestationRow).order_by(AttestationRow.sequence.desc()).limit(1)
            ).first()
        )
        return None if row is None else _stored(row)

    def latest_regular(self) -> StoredAttestation | None:
        """The latest attestation that is not point-in-time (the oracle's and publishers')."""
        row = self._db.read(
            lambda s: s.scalars(
                select(AttestationRow)
                .where(AttestationRow.kind == KIND_REGULAR)
                .order_by(AttestationRow.sequence.desc())
                .limit(1)
            ).first()
        )
        return None if row is None else _stored(row)

    def latest_regular_sequence(self) -> int | None:
        seq = self._db.read(
            lambda s: s.execute(
                select(func.max(AttestationRow.sequence)).where(AttestationRow.kind == KIND_REGULAR)
            ).scalar_one_or_none()
        )
        return None if seq is None else int(seq)

    def matches(self, sequence: int) -> bytes | None:
        """The match list of one attestation (None: it does not reconcile flows)."""
        row = self._db.read(lambda s: s.get(ReconciliationRow, sequence))
        return None if row is None else bytes(row.matches_json)

    # --- source documents and chain snapshots (attestations as of a past time) ----------

    def record_source_document(self, doc: SourceDocument) -> None:
        """Keep a source document's parsed form once (by source and SHA-256)."""
        try:
            with self._db.writes.begin() as s:
                exists = s.execute(
                    select(SourceDocumentRow.id).where(
                        SourceDocumentRow.source == doc.source,
                        SourceDocumentRow.sha256 == doc.sha256,
                    )
                ).first()
                if exists is None:
                    s.add(
                        SourceDocumentRow(
                            kind=doc.kind,
                            source=doc.source[:128],
                            sha256=doc.sha256,
                            format=doc.format[:64],
                            name=doc.name[:512],
                            as_of=doc.as_of,
                            parsed_json=doc.parsed_json,
                            first_seen_at=datetime.now(UTC),
                        )
                    )
        except IntegrityError:
            return  # another writer recorded the same document first
        except SQLAlchemyError as e:
            raise StoreError(
                f"recording a source document failed: {e}", where=self._db.where
            ) from e

    def source_documents(self, kind: str, source: str) -> builtins.list[SourceDocument]:
        rows = self._db.read(
            lambda s: list(
                s.scalars(
                    select(SourceDocumentRow)
                    .where(SourceDocumentRow.kind == kind, SourceDocumentRow.source == source)
                    .order_by(SourceDocumentRow.id)
                )
            )
        )
        return [
            SourceDocument(
                kind=r.kind,
                source=r.source,
                sha256=r.sha256,
                format=r.format,
                name=r.name,
                as_of=None if r.as_of is None else _aware(r.as_of),
                parsed_json=bytes(r.parsed_json),
            )
            for r in rows
        ]

    def record_chain_snapshot(self, snapshot: ChainSnapshot) -> None:
        """Keep a snapshot of a chain whose nodes keep no history (once per block)."""
        body = zlib.compress(json.dumps(snapshot_to_dict(snapshot), separators=(",", ":")).encode())
        try:
            with self._db.writes.begin() as s:
                exists = s.execute(
                    select(ChainSnapshotRow.id).where(
                        ChainSnapshotRow.chain_id == snapshot.chain_id,
                        ChainSnapshotRow.block_number == snapshot.block.number,
                    )
                ).first()
                if exists is None:
                    s.add(
                        ChainSnapshotRow(
                            chain_id=snapshot.chain_id,
                            block_number=snapshot.block.number,
                            block_hash=snapshot.block.hash,
                            block_time=snapshot.block.time,
                            snapshot_zlib=body,
                            recorded_at=datetime.now(UTC),
                        )
                    )
        except IntegrityError:
            return
        except SQLAlchemyError as e:
            raise StoreError(f"recording a chain snapshot failed: {e}", where=self._db.where) from e

    def chain_snapshot_at(self, chain_id: str, when: datetime) -> ChainSnapshot | None:
        """The recorded snapshot of `chain_id` with the latest block time at or before
        `when`, or None."""
        row = self._db.read(
            lambda s: s.scalars(
                select(ChainSnapshotRow)
                .where(ChainSnapshotRow.chain_id == chain_id, ChainSnapshotRow.block_time <= when)
                .order_by(ChainSnapshotRow.block_time.desc(), ChainSnapshotRow.block_number.desc())
                .limit(1)
            ).first()
        )
        if row is None:
            return None
        where = f"recorded snapshot {chain_id} block {row.block_number}"
        return snapshot_from_dict(
            json.loads(zlib.decompress(bytes(row.snapshot_zlib))), where=where
        )

    def get(self, sequence: int) -> StoredAttestation:
        row = self._db.read(lambda s: s.get(AttestationRow, sequence))
        if row is None:
            raise UnknownSequenceError(f"no attestation with sequence {sequence}", where="sequence")
        return _stored(row)

    def list(self, limit: int = 20, before: int | None = None) -> list[StoredAttestation]:
        """Up to `limit` attestations, newest first, with sequence < `before` if given."""
        q = select(AttestationRow).order_by(AttestationRow.sequence.desc()).limit(limit)
        if before is not None:
            q = q.where(AttestationRow.sequence < before)
        rows = self._db.read(lambda s: list(s.scalars(q)))
        return [_stored(r) for r in rows]

    def as_of_between(self, start: datetime, end: datetime) -> builtins.list[tuple[int, datetime]]:
        """(sequence, as_of) of every attestation with start <= as_of < end, by sequence.

        For the periodic reserve report (por.report): it reads a period's attestations by
        their as_of, which need not grow with the sequence (a point-in-time attestation).
        """
        rows = self._db.read(
            lambda s: s.execute(
                select(AttestationRow.sequence, AttestationRow.as_of)
                .where(AttestationRow.as_of >= start, AttestationRow.as_of < end)
                .order_by(AttestationRow.sequence)
            ).all()
        )
        return [(int(r[0]), r[1] if r[1].tzinfo else r[1].replace(tzinfo=UTC)) for r in rows]

    def round_secret(self, sequence: int) -> bytes:
        """The round secret behind one attestation's salts (operator use only)."""
        row = self._db.read(lambda s: s.get(AttestationRow, sequence))
        if row is None:
            raise UnknownSequenceError(f"no attestation with sequence {sequence}", where="sequence")
        return bytes(row.round_secret)

    def cached_tree(self, sequence: int) -> SumTree | ShardedTree | None:
        """The tree of `sequence` if it is loaded already, else None (never blocks on I/O)."""
        with self._tree_lock:
            return self._tree_cache.get(sequence)

    @overload
    def tree(self, sequence: int, *, checked: Literal[True] = ...) -> SumTree: ...

    @overload
    def tree(self, sequence: int, *, checked: Literal[False]) -> SumTree | ShardedTree: ...

    def tree(self, sequence: int, *, checked: bool = True) -> SumTree | ShardedTree:
        """The sum tree of one attestation, memory-mapped from its tree file (never rebuilt).

        How integrity is kept: the tree file's SHA-256 is recorded in the attestation's row
        when it is written. `checked=True` (the default; `por prove`, `por leaves`) matches
        the whole file against it and runs every consistency check before returning.
        `checked=False` (the API) returns after the O(1) checks — exact length, header,
        the root equals the top level and the attestation's root — so the first proof
        after a start does not wait for a pass over a 10^7-leaf file; the digest and the
        O(n) checks then run once per file in a background thread. `tree_checked(seq)`
        tells when they have passed; a file that fails them is dropped and every later
        call raises StoreError. Until they pass the API verifies each proof against the
        signed root before sending it (por.api.routes.proofs), so no unchecked byte
        reaches a holder unverified.

        The map is shared: API worker processes serving the same file share its pages.

        A tree stored as shards (`objects:` rows) comes back as a `ShardedTree` when
        `checked=False`: its top file is matched with the row's SHA-256 and its root with
        the attestation's; each shard is fetched when a proof needs it and checked against
        the top file's record (por.store.shards). `checked=True` assembles the whole tree.

        Loading takes no lock other requests wait on: `_tree_lock` only guards the cache
        dictionaries, and the database read, the map and the O(1) checks run under a lock
        of this sequence alone — requests for a loaded tree, or for another sequence, go
        on meanwhile, and concurrent requests for one sequence load it once.
        """
        with self._tree_lock:
            cached = self._tree_cache.get(sequence)
        if isinstance(cached, ShardedTree):
            return cached.assemble() if checked else cached
        stored_row = None
        if cached is None:
            stored_row = self.get(sequence)
            if stored_row.tree_file.startswith(OBJECTS_PREFIX):
                sharded = self._load_sharded(stored_row)
                return sharded.assemble() if checked else sharded
        tree, check = self._cached_or_load(sequence, stored_row)
        if checked:
            check.done.wait()
            if check.error is not None:
                raise StoreError(check.error, where=check.where)
        return tree

    def _cached(self, sequence: int) -> tuple[SumTree, _TreeCheck] | None:
        with self._tree_lock:
            check = self._tree_checks.get(sequence)
            if check is not None and check.error is not None:
                raise StoreError(check.error, where=check.where)
            tree = self._tree_cache.get(sequence)
            if not isinstance(tree, SumTree) or check is None:
                return None
            self._tree_cache.move_to_end(sequence)
            return tree, check

    def _cached_or_load(
        self, sequence: int, stored: StoredAttestation | None = None
    ) -> tuple[SumTree, _TreeCheck]:
        hit = self._cached(sequence)
        if hit is not None:
            return hit
        with self._tree_lock:
            loading = self._tree_loading.setdefault(sequence, [threading.Lock(), 0])
            loading[1] += 1
        try:
            with loading[0]:  # one load per sequence; the others wait for it, not for all
                hit = self._cached(sequence)
                if hit is not None:
                    return hit
                tree, buf, stored = self._load_tree(sequence, stored)
                path = self.trees_dir / stored.tree_file
                check = _TreeCheck(where=str(path))
                identity = _file_identity(path, stored.tree_sha256)
                with self._tree_lock:
                    # a file that passed the full check and has not changed since (same
                    # inode, size, mtime, ctime) is not hashed again: cycling through old
                    # attestations must not cost a pass over each file per load
                    passed = identity is not None and self._trees_passed.get(sequence) == identity
                    self._tree_checks[sequence] = check
                    self._tree_cache[sequence] = tree
                    while len(self._tree_cache) > self._tree_cache_size:
                        old, _ = self._tree_cache.popitem(last=False)
                        self._tree_checks.pop(old, None)
                if passed:
                    check.done.set()
                    return tree, check
                threading.Thread(
                    target=self._check_tree,
                    args=(sequence, tree, buf, stored.tree_sha256, check, identity),
                    name=f"por-tree-check-{sequence}",
                    daemon=True,
                ).start()
                return tree, check
        finally:
            with self._tree_lock:
                loading[1] -= 1
                if loading[1] == 0:
                    self._tree_loading.pop(sequence, None)

    def _load_tree(
        self, sequence: int, stored: StoredAttestation | None = None
    ) -> tuple[SumTree, mmap.mmap, StoredAttestation]:
        """Map the tree file and run the O(1) checks (no cache lock held: see `tree`)."""
        stored = stored or self.get(sequence)
        path = self.trees_dir / stored.tree_file
        buf = _map_file(path, sequence)
        try:
            tree = SumTree.from_bytes(buf, body_checked=True, consistency=False)
        except FormatError as e:
            raise StoreError(
                f"tree file of attestation {sequence} is corrupt: {e.message}",
                where=str(path),
            ) from e
        if tree.root.hash.hex() != stored.liabilities_root:
            raise StoreError(
                f"tree file of attestation {sequence} has root "
                f"{tree.root.hash.hex()}, the attestation "
                f"{stored.liabilities_root}",
                where=str(path),
            )
        return tree, buf, stored

    def _load_sharded(self, stored: StoredAttestation) -> ShardedTree:
        """Load and check the top file of a sharded tree, and cache it."""
        seq = stored.sequence
        if self.objects is None:
            raise StoreError(
                f"the tree of attestation {seq} is in an object store; configure "
                '[artifacts] kind = "s3" on this instance',
                where="artifacts",
            )
        what = f"the tree of attestation {seq}"
        try:
            sharded = load_top(self.objects, stored.tree_sha256, cache=self.shards, what=what)
        except FormatError as e:
            raise StoreError(f"{what} is corrupt: {e.message}", where=e.where) from e
        if sharded.root.hash.hex() != stored.liabilities_root:
            raise StoreError(
                f"{what} has root {sharded.root.hash.hex()}, the attestation "
                f"{stored.liabilities_root}",
                where=self.objects.where,
            )
        with self._tree_lock:
            self._tree_cache[seq] = sharded
            while len(self._tree_cache) > self._tree_cache_size:
                old, _ = self._tree_cache.popitem(last=False)
                self._tree_checks.pop(old, None)
        return sharded

    def tree_checked(self, sequence: int) -> bool:
        """True once the loaded tree file of `sequence` passed its digest and checks."""
        with self._tree_lock:
            check = self._tree_checks.get(sequence)
        return check is not None and check.done.is_set() and check.error is None

    def _check_tree(  # noqa: PLR0917 - one background check's whole state
        self,
        sequence: int,
        tree: SumTree,
        buf: mmap.mmap,
        want: str,
        check: _TreeCheck,
        identity: tuple[int, ...] | None = None,
    ) -> None:
        """The full check of a mapped tree file (background thread; see `tree`)."""
        try:
            digest = hashlib.sha256()
            view = memoryview(buf)
            step = 1 << 24  # hashlib drops the GIL for each slice: requests go on meanwhile
            for at in range(0, len(view), step):
                digest.update(view[at : at + step])
            computed = digest.hexdigest()
            if computed != want:
                raise StoreError(
                    f"tree file of attestation {sequence} is corrupt (SHA-256 expected "
                    f"{want}, computed {computed})",
                    where=check.where,
                )
            try:
                tree.check_consistency()
            except FormatError as e:
                raise StoreError(
                    f"tree file of attestation {sequence} is corrupt: {e.message}",
                    where=check.where,
                ) from e
            if identity is not None:
                with self._tree_lock:
                    self._trees_passed[sequence] = identity
                    self._trees_passed.move_to_end(sequence)
                    while len(self._trees_passed) > TREES_PASSED_MAX:
                        self._trees_passed.popitem(last=False)
        except Exception as e:
            check.error = e.message if isinstance(e, PorError) else f"checking failed: {e!r}"
            log.error("%s (%s); its proofs are refused", check.error, check.where)
            with self._tree_lock:
                if self._tree_cache.get(sequence) is tree:
                    del self._tree_cache[sequence]
        finally:
            check.done.set()

    # --- the log (por.store.log) ------------------------------------------------------

    def log_tree(self) -> LogTree:
        """The attestation log over every committed leaf (cached, extended on demand)."""
        return self.log.tree()

    def checkpoint(self) -> StoredCheckpoint | None:
        """The latest signed checkpoint of the log."""
        return self.log.checkpoint()

    def inclusion(self, sequence: int) -> LogInclusion:
        """Where attestation `sequence` sits in the log, proved against the latest checkpoint."""
        return self.log.inclusion(sequence)

    def consistency(self, from_size: int, to_size: int) -> LogConsistency:
        """RFC 9162 consistency proof between two checkpointed sizes of the log."""
        return self.log.consistency(from_size, to_size)

    # --- publication state (por.store.publications) -----------------------------------

    def record_publication(
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
        """Insert or update what the oracle on `chain_id` holds for `sequence`."""
        self.publication_state.record(
            chain_id,
            sequence,
            contract=contract,
            tx_hash=tx_hash,
            block_number=block_number,
            status=status,
            error=error,
            retry_at=retry_at,
            superseded_by=superseded_by,
        )

    def publication_queue(self, chain_ids: Sequence[str]) -> builtins.list[QueuedPublication]:
        """What is still to publish to `chain_ids`, oldest first (the publication queue)."""
        return self.publication_state.queue(chain_ids)

    def publication(self, chain_id: str, sequence: int) -> Publication | None:
        """The publication state of one (chain, sequence), or None."""
        return self.publication_state.get(chain_id, sequence)

    def publications(self) -> builtins.list[Publication]:
        """Per chain, the publication of the highest sequence, ordered by chain id."""
        return self.publication_state.latest_per_chain()

    def get_intent_json(self, chain_id: str, sequence: int) -> bytes | None:
        """A publish intent row, raw (por.oracle.intents.DbIntentStore reads it)."""
        return self.publication_state.get_intent_json(chain_id, sequence)

    def put_intent_json(self, chain_id: str, sequence: int, intent_json: bytes) -> None:
        """Insert or replace a publish intent row; committed before this returns."""
        self.publication_state.put_intent_json(chain_id, sequence, intent_json)

    # --- leader election and health ---------------------------------------------------

    def leadership(self, name: str) -> Leadership:
        """A claim to leadership `name` among instances sharing this store (see leader.py)."""
        if self.is_postgres:
            url = self._db.url
            return PostgresLeadership(name, url=url, connect_args={})
        db = self._db.url.database
        base = Path(db) if db and db != ":memory:" else self.data_dir / "por.db"
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        return FileLeadership(name, lock_path=base.with_name(f"{base.name}.leader-{safe}.lock"))

    def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        self._db.read(lambda s: s.execute(text("SELECT 1")).scalar_one())


__all__: Sequence[str] = (
    "CHECKPOINT_FILE",
    "ORPHAN_MIN_AGE_S",
    "TREES_DIR",
    "Store",
    "default_url",
    "envelope_file_name",
)
