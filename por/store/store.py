"""The store: attestations, their tree files, the attestation log and publication state.

SQLite by default (one file under the data directory, WAL, busy timeout), PostgreSQL
by URL (psycopg 3). `Store.record` is the one write path of an attestation run and is
atomic in the sense of DESIGN §1:

1. the sum-tree file is written (temp + fsync + rename) under `<data_dir>/trees/`;
   a crash here leaves an orphan file nobody references, removed later;
2. ONE database transaction checks that the sequence is `latest + 1` and that
   `previous` names the latest row, then inserts the attestation, its log leaf and the
   new signed checkpoint. Writers are serialised by a row lock (PostgreSQL) or
   `BEGIN IMMEDIATE` (SQLite), and the primary keys make a second row for one sequence
   impossible even if that lock were bypassed;
3. after commit, `<attestations_dir>/<sequence:08d>.dsse.json` and `checkpoint.txt`
   are written atomically. A crash before that is repaired by `materialize_files()`
   (run by `Store.open`), which rewrites missing or partial files from the database.

Reads serve the API: tree files are loaded with `SumTree.from_bytes` (no rebuild),
checked against their stored SHA-256 and kept in a small LRU cache; the log tree is
rebuilt once from the leaf hashes and then extended.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from por.core.attestation import PAYLOAD_TYPE, Attestation, decode_attestation
from por.core.dsse import Envelope
from por.core.sumtree import SumTree
from por.core.tlog import Checkpoint, LogTree, envelope_leaf_hash
from por.crashpoints import crashpoint
from por.errors import ChainLinkError, InputError, MismatchError, StoreError
from por.store.files import TEMP_SUFFIX, read_file, write_atomic
from por.store.leader import FileLeadership, Leadership, PostgresLeadership
from por.store.models import (
    SCHEMA_VERSION,
    AttestationRow,
    Base,
    CheckpointRow,
    LogLeafRow,
    MetaRow,
    PublicationRow,
    PublishIntentRow,
)

CHECKPOINT_FILE = "checkpoint.txt"
TREES_DIR = "trees"
ORPHAN_MIN_AGE_S = 3600.0
"""A tree file no row names is deleted only when older than this: a writer in another
process may be between writing its tree file and committing its row."""

_HEAD_KEY = "head"  # the row writers lock: serialises record() across processes


class UnknownSequenceError(InputError):
    """No attestation (or log entry) with that sequence or size."""


class SequenceConflictError(StoreError):
    """Another writer recorded this sequence first, or `previous` does not name the latest."""


def envelope_file_name(sequence: int) -> str:
    return f"{sequence:08d}.dsse.json"


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'por.db'}"


# --- values handed out by the store -------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredAttestation:
    """One recorded attestation as stored. `document_json` is the canonical payload."""

    sequence: int
    digest: str
    envelope_json: bytes
    document_json: bytes
    status: str
    ratio: str | None
    eligible_reserves: str
    circulating_supply: str
    liabilities_root: str
    tree_file: str
    tree_sha256: str

    def document(self) -> dict[str, Any]:
        """The attestation document as a JSON object (already validated when recorded)."""
        doc: dict[str, Any] = json.loads(self.document_json)
        return doc

    def envelope(self) -> dict[str, Any]:
        env: dict[str, Any] = json.loads(self.envelope_json)
        return env

    @property
    def attestation(self) -> Attestation:
        """The parsed document (strict parse of the stored canonical bytes)."""
        return decode_attestation(self.document_json, where=f"attestation {self.sequence}")


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredCheckpoint:
    size: int
    root_hash: bytes
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    """What `record` did. `file_error` is set when the commit succeeded but writing the
    published files did not (the database is the truth; `materialize_files` repairs)."""

    sequence: int
    digest: str
    leaf_index: int
    checkpoint: StoredCheckpoint
    tree_file: str
    file_error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogInclusion:
    sequence: int
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    path: tuple[bytes, ...]
    root_hash: bytes
    checkpoint_note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LogConsistency:
    from_size: int
    to_size: int
    from_root: bytes
    to_root: bytes
    path: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Publication:
    chain_id: str
    sequence: int
    contract: str
    tx_hash: str | None
    block_number: int | None
    status: str
    updated_at: datetime


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
    )


def _utc(t: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _configure_sqlite(engine: Engine) -> None:
    """WAL, busy timeout, durable commits, and explicit BEGINs (see `record`)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so that our BEGIN is the one used.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock up front: a deferred read-then-write
        # transaction could otherwise fail to upgrade instead of waiting its turn.
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))


class Store:
    """Attestations, tree files, the log and publications, over one database URL."""

    def __init__(
        self, engine: Engine, *, data_dir: Path, attestations_dir: Path, tree_cache_size: int = 2
    ) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._write_engine = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        self._write_sessions = sessionmaker(self._write_engine, expire_on_commit=False)
        self.data_dir = data_dir
        self.attestations_dir = attestations_dir
        self.trees_dir = data_dir / TREES_DIR
        self.is_postgres = engine.dialect.name == "postgresql"
        self._tree_cache: OrderedDict[int, SumTree] = OrderedDict()
        self._tree_cache_size = tree_cache_size
        self._tree_lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._log: LogTree | None = None

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
    ) -> Store:
        """Connect, create the schema if needed, and repair the published files.

        `url` None means the default SQLite file `<data_dir>/por.db`. For PostgreSQL use
        `postgresql+psycopg://user@host:port/db`; a schema other than `public` can be
        chosen with `?options=-csearch_path%3D<schema>`.
        """
        data_dir = Path(data_dir)
        attestations_dir = Path(attestations_dir)
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(
                f"cannot create data directory: {e.strerror}", where=str(data_dir)
            ) from e
        url = url or default_url(data_dir)
        try:
            parsed = make_url(url)
        except Exception as e:  # SQLAlchemy raises ArgumentError / ValueError here
            raise StoreError(f"not a database URL: {url!r}", where="store url") from e
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        elif parsed.get_backend_name() == "postgresql":
            kwargs["pool_pre_ping"] = True
        else:
            raise StoreError(
                f"unsupported database {parsed.get_backend_name()!r}; use sqlite or postgresql",
                where="store url",
            )
        try:
            engine = create_engine(parsed, **kwargs)
        except Exception as e:  # missing driver, bad option
            raise StoreError(f"cannot open database: {e}", where=parsed.render_as_string()) from e
        if parsed.get_backend_name() == "sqlite":
            _configure_sqlite(engine)
        store = cls(
            engine,
            data_dir=data_dir,
            attestations_dir=attestations_dir,
            tree_cache_size=tree_cache_size,
        )
        store._create_schema()
        if materialize:
            store.materialize_files()
            store.clean_orphans()
        return store

    def _create_schema(self) -> None:
        try:
            Base.metadata.create_all(self._engine)
            with self._write_sessions.begin() as s:
                for key, value in (("schema_version", str(SCHEMA_VERSION)), (_HEAD_KEY, "0")):
                    if s.get(MetaRow, key) is None:
                        s.add(MetaRow(key=key, value=value))
        except IntegrityError:
            pass  # another process created the rows at the same moment
        except SQLAlchemyError as e:
            raise StoreError(f"cannot create the schema: {e}", where=self._where()) from e
        version = self._read(lambda s: s.get(MetaRow, "schema_version"))
        if version is None or version.value != str(SCHEMA_VERSION):
            raise StoreError(
                f"database schema version {version.value if version else None} is not "
                f"{SCHEMA_VERSION}",
                where=self._where(),
            )

    def _where(self) -> str:
        return self._engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self._engine.dispose()

    def _read(self, fn: Callable[[Session], Any]) -> Any:
        try:
            with self._sessions() as s:
                return fn(s)
        except SQLAlchemyError as e:
            raise StoreError(f"database read failed: {e}", where=self._where()) from e

    # --- the write path ---------------------------------------------------------------

    def record(  # noqa: PLR0915 - the steps of one atomic record, in order
        self,
        *,
        attestation: Attestation,
        envelope: Envelope,
        tree: SumTree,
        round_secret: bytes,
        sign_checkpoint: Callable[[Checkpoint], str],
        origin: str,
    ) -> Recorded:
        """Record one signed attestation atomically (see the module docstring)."""
        seq = attestation.sequence
        payload = attestation.to_bytes()
        self._check_inputs(attestation, payload, envelope, tree, round_secret)
        root = tree.root
        liab = attestation.liabilities
        envelope_json = envelope.to_json_bytes()
        digest = attestation.digest()

        # 1. The tree file, before anything refers to it.
        tree_bytes = tree.to_bytes()
        tree_sha = hashlib.sha256(tree_bytes).hexdigest()
        tree_name = f"{seq}-{root.hash.hex()[:16]}-{digest[:8]}.mst"
        write_atomic(self.trees_dir / tree_name, tree_bytes)
        crashpoint("after_tree_file")

        # 2. One transaction for row, log leaf and checkpoint.
        leaf = envelope_leaf_hash(envelope_json)
        now = datetime.now(UTC)
        try:
            with self._log_lock, self._write_sessions.begin() as s:
                s.execute(select(MetaRow).where(MetaRow.key == _HEAD_KEY).with_for_update())
                latest = s.execute(
                    select(AttestationRow.sequence, AttestationRow.digest)
                    .order_by(AttestationRow.sequence.desc())
                    .limit(1)
                ).first()
                self._check_link(attestation, latest)
                log_size = s.execute(select(func.count()).select_from(LogLeafRow)).scalar_one()
                log = self._log_tree_in(s)
                if log.size != log_size:
                    raise StoreError(
                        f"log has {log_size} leaves in the database but {log.size} in memory",
                        where=self._where(),
                    )
                index = log.append(leaf)
                try:
                    checkpoint = Checkpoint(origin=origin, size=log.size, root_hash=log.root())
                    note = sign_checkpoint(checkpoint)
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
                            status=attestation.totals.status,
                            ratio=attestation.totals.ratio,
                            eligible_reserves=str(attestation.totals.eligible_reserves),
                            circulating_supply=str(attestation.totals.circulating_supply),
                            liabilities_root=liab.root,
                            tree_file=tree_name,
                            tree_sha256=tree_sha,
                            round_secret=round_secret,
                            recorded_at=now,
                        )
                    )
                    s.flush()  # the attestation row first: the leaf references it
                    s.add(LogLeafRow(leaf_index=index, sequence=seq, leaf_hash=leaf))
                    s.add(
                        CheckpointRow(
                            size=checkpoint.size, root_hash=checkpoint.root_hash, note=note
                        )
                    )
                    s.execute(
                        update(MetaRow).where(MetaRow.key == _HEAD_KEY).values(value=str(seq))
                    )
                    s.flush()
                    crashpoint("before_commit")
                except BaseException:
                    self._log = None  # the in-memory leaf was never committed
                    raise
        except IntegrityError as e:
            raise SequenceConflictError(
                f"sequence {seq} was recorded by another writer", where=self._where()
            ) from e
        except OperationalError as e:
            raise StoreError(
                f"recording attestation {seq} failed: {e.orig or e}", where=self._where()
            ) from e
        except SQLAlchemyError as e:
            raise StoreError(f"recording attestation {seq} failed: {e}", where=self._where()) from e

        crashpoint("after_commit")
        # 3. The published files. The commit is the truth; a failure here is repaired.
        stored_cp = StoredCheckpoint(
            size=checkpoint.size, root_hash=checkpoint.root_hash, note=note
        )
        file_error = None
        try:
            write_atomic(self.attestations_dir / envelope_file_name(seq), envelope_json)
            crashpoint("after_envelope_file")
            write_atomic(self.attestations_dir / CHECKPOINT_FILE, note.encode("utf-8"))
            crashpoint("after_checkpoint_file")
        except StoreError as e:
            file_error = str(e)
        return Recorded(
            sequence=seq,
            digest=digest,
            leaf_index=index,
            checkpoint=stored_cp,
            tree_file=tree_name,
            file_error=file_error,
        )

    @staticmethod
    def _check_inputs(
        attestation: Attestation,
        payload: bytes,
        envelope: Envelope,
        tree: SumTree,
        round_secret: bytes,
    ) -> None:
        seq = attestation.sequence
        if envelope.payload != payload:
            raise MismatchError(
                "envelope payload is not this attestation's canonical bytes",
                where=f"attestation {seq}",
            )
        if envelope.payload_type != PAYLOAD_TYPE:
            raise MismatchError(
                "envelope payload type",
                expected=PAYLOAD_TYPE,
                computed=envelope.payload_type,
                where=f"attestation {seq}",
            )
        root = tree.root
        liab = attestation.liabilities
        if (liab.root, liab.total, liab.leaf_count) != (root.hash.hex(), root.sum, tree.size):
            raise MismatchError(
                "attestation liabilities do not match the sum tree",
                expected=f"root {root.hash.hex()} total {root.sum} leaves {tree.size}",
                computed=f"root {liab.root} total {liab.total} leaves {liab.leaf_count}",
                where=f"attestation {seq}.liabilities",
            )
        if not isinstance(round_secret, bytes) or len(round_secret) != 32:
            raise InputError("round_secret must be 32 bytes", where="record")

    @staticmethod
    def _check_link(att: Attestation, latest: Any) -> None:
        if latest is None:
            if att.sequence != 1:
                raise SequenceConflictError(
                    f"the store is empty, so the next sequence is 1, not {att.sequence}"
                )
            return
        latest_seq, latest_digest = int(latest[0]), str(latest[1])
        if att.sequence != latest_seq + 1:
            raise SequenceConflictError(
                f"sequence {att.sequence} does not follow the latest recorded sequence "
                f"{latest_seq} (another writer may have recorded it)"
            )
        prev = att.previous
        if prev is None or prev.sequence != latest_seq or prev.digest != latest_digest:
            raise ChainLinkError(
                "previous does not name the latest recorded attestation",
                expected=f"{latest_seq}/{latest_digest}",
                computed=None if prev is None else f"{prev.sequence}/{prev.digest}",
                where=f"attestation {att.sequence}.previous",
            )

    # --- published files --------------------------------------------------------------

    def materialize_files(self) -> int:
        """Rewrite every missing or differing envelope file and the checkpoint; return
        how many files were written."""
        written = 0
        try:
            with self._sessions() as s:
                rows = s.execute(
                    select(AttestationRow.sequence, AttestationRow.envelope_json)
                    .order_by(AttestationRow.sequence)
                    .execution_options(yield_per=256)
                )
                for seq, env in rows:
                    path = self.attestations_dir / envelope_file_name(int(seq))
                    if read_file(path) != bytes(env):
                        write_atomic(path, bytes(env))
                        written += 1
        except SQLAlchemyError as e:
            raise StoreError(f"database read failed: {e}", where=self._where()) from e
        cp = self.checkpoint()
        if cp is not None:
            path = self.attestations_dir / CHECKPOINT_FILE
            if read_file(path) != cp.note.encode("utf-8"):
                write_atomic(path, cp.note.encode("utf-8"))
                written += 1
        return written

    def clean_orphans(self, *, min_age_s: float = ORPHAN_MIN_AGE_S) -> list[str]:
        """Delete tree files (and temp files) that no row names, once old enough."""
        if not self.trees_dir.is_dir():
            return []
        named = set(self._read(lambda s: list(s.scalars(select(AttestationRow.tree_file)))))
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

    # --- reads ------------------------------------------------------------------------

    def latest_sequence(self) -> int | None:
        seq = self._read(
            lambda s: s.execute(select(func.max(AttestationRow.sequence))).scalar_one_or_none()
        )
        return None if seq is None else int(seq)

    def latest(self) -> StoredAttestation | None:
        row = self._read(
            lambda s: s.scalars(
                select(AttestationRow).order_by(AttestationRow.sequence.desc()).limit(1)
            ).first()
        )
        return None if row is None else _stored(row)

    def get(self, sequence: int) -> StoredAttestation:
        row = self._read(lambda s: s.get(AttestationRow, sequence))
        if row is None:
            raise UnknownSequenceError(f"no attestation with sequence {sequence}", where="sequence")
        return _stored(row)

    def list(self, limit: int = 20, before: int | None = None) -> list[StoredAttestation]:
        """Up to `limit` attestations, newest first, with sequence < `before` if given."""
        q = select(AttestationRow).order_by(AttestationRow.sequence.desc()).limit(limit)
        if before is not None:
            q = q.where(AttestationRow.sequence < before)
        rows = self._read(lambda s: list(s.scalars(q)))
        return [_stored(r) for r in rows]

    def round_secret(self, sequence: int) -> bytes:
        """The round secret behind one attestation's salts (operator use only)."""
        row = self._read(lambda s: s.get(AttestationRow, sequence))
        if row is None:
            raise UnknownSequenceError(f"no attestation with sequence {sequence}", where="sequence")
        return bytes(row.round_secret)

    def tree(self, sequence: int) -> SumTree:
        """The sum tree of one attestation, from its tree file (never rebuilt)."""
        with self._tree_lock:
            cached = self._tree_cache.get(sequence)
            if cached is not None:
                self._tree_cache.move_to_end(sequence)
                return cached
            stored = self.get(sequence)
            path = self.trees_dir / stored.tree_file
            data = read_file(path)
            if data is None:
                raise StoreError(f"tree file of attestation {sequence} is missing", where=str(path))
            computed = hashlib.sha256(data).hexdigest()
            if computed != stored.tree_sha256:
                raise StoreError(
                    f"tree file of attestation {sequence} is corrupt (SHA-256 "
                    f"expected {stored.tree_sha256}, computed {computed})",
                    where=str(path),
                )
            # the whole file matched the SHA-256 recorded with the attestation, so the
            # body digest inside it need not be recomputed
            tree = SumTree.from_bytes(data, body_checked=True)
            if tree.root.hash.hex() != stored.liabilities_root:
                raise StoreError(
                    f"tree file of attestation {sequence} has root "
                    f"{tree.root.hash.hex()}, the attestation "
                    f"{stored.liabilities_root}",
                    where=str(path),
                )
            self._tree_cache[sequence] = tree
            while len(self._tree_cache) > self._tree_cache_size:
                self._tree_cache.popitem(last=False)
            return tree

    def _log_tree_in(self, s: Session) -> LogTree:
        """The cached log tree extended with leaves from session `s` (caller holds _log_lock)."""
        if self._log is None:
            self._log = LogTree()
        log = self._log
        rows = s.execute(
            select(LogLeafRow.leaf_index, LogLeafRow.leaf_hash)
            .where(LogLeafRow.leaf_index >= log.size)
            .order_by(LogLeafRow.leaf_index)
        )
        for index, h in rows:
            if int(index) != log.size:
                raise StoreError(
                    f"log leaf {log.size} is missing from the database", where=self._where()
                )
            log.append(bytes(h))
        return log

    def log_tree(self) -> LogTree:
        """The attestation log over every committed leaf (cached, extended on demand)."""
        try:
            with self._log_lock, self._sessions() as s:
                return self._log_tree_in(s)
        except SQLAlchemyError as e:
            raise StoreError(f"database read failed: {e}", where=self._where()) from e

    def checkpoint(self) -> StoredCheckpoint | None:
        row = self._read(
            lambda s: s.scalars(
                select(CheckpointRow).order_by(CheckpointRow.size.desc()).limit(1)
            ).first()
        )
        if row is None:
            return None
        return StoredCheckpoint(size=row.size, root_hash=bytes(row.root_hash), note=row.note)

    def _checkpoint_at(self, size: int) -> StoredCheckpoint:
        row = self._read(lambda s: s.get(CheckpointRow, size))
        if row is None:
            raise UnknownSequenceError(f"the log has no checkpoint of size {size}", where="size")
        return StoredCheckpoint(size=row.size, root_hash=bytes(row.root_hash), note=row.note)

    def inclusion(self, sequence: int) -> LogInclusion:
        """Where attestation `sequence` sits in the log, proved against the latest checkpoint."""
        cp = self.checkpoint()
        leaf = self._read(
            lambda s: s.scalars(select(LogLeafRow).where(LogLeafRow.sequence == sequence)).first()
        )
        if cp is None or leaf is None or leaf.leaf_index >= cp.size:
            raise UnknownSequenceError(
                f"attestation {sequence} is not in the log", where="sequence"
            )
        path = self.log_tree().inclusion_proof(leaf.leaf_index, cp.size)
        return LogInclusion(
            sequence=sequence,
            leaf_index=leaf.leaf_index,
            tree_size=cp.size,
            leaf_hash=bytes(leaf.leaf_hash),
            path=tuple(path),
            root_hash=cp.root_hash,
            checkpoint_note=cp.note,
        )

    def consistency(self, from_size: int, to_size: int) -> LogConsistency:
        """RFC 9162 consistency proof between two checkpointed sizes of the log."""
        if not 1 <= from_size <= to_size:
            raise InputError(
                f"need 1 <= from <= to, got from={from_size} to={to_size}", where="from"
            )
        old, new = self._checkpoint_at(from_size), self._checkpoint_at(to_size)
        path = self.log_tree().consistency_proof(from_size, to_size)
        return LogConsistency(
            from_size=from_size,
            to_size=to_size,
            from_root=old.root_hash,
            to_root=new.root_hash,
            path=tuple(path),
        )

    # --- publications -----------------------------------------------------------------

    def record_publication(
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
                with self._write_sessions.begin() as s:
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
                    raise StoreError(f"cannot record publication: {e}", where=self._where()) from e
            except SQLAlchemyError as e:
                raise StoreError(f"cannot record publication: {e}", where=self._where()) from e

    def publications(self) -> builtins.list[Publication]:
        """Per chain, the publication of the highest sequence, ordered by chain id."""

        def q(s: Session) -> builtins.list[PublicationRow]:
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
            for r in self._read(q)
        ]

    # --- publish intents (raw JSON; por.oracle.intents.DbIntentStore gives them meaning) --

    def get_intent_json(self, chain_id: str, sequence: int) -> bytes | None:
        row = self._read(
            lambda s: s.scalars(
                select(PublishIntentRow).where(
                    PublishIntentRow.chain_id == chain_id, PublishIntentRow.sequence == sequence
                )
            ).first()
        )
        return None if row is None else bytes(row.intent_json)

    def put_intent_json(self, chain_id: str, sequence: int, intent_json: bytes) -> None:
        now = datetime.now(UTC)
        for attempt in range(2):
            try:
                with self._write_sessions.begin() as s:
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
                        f"cannot store publish intent: {e}", where=self._where()
                    ) from e
            except SQLAlchemyError as e:
                raise StoreError(f"cannot store publish intent: {e}", where=self._where()) from e

    # --- leader election --------------------------------------------------------------

    def leadership(self, name: str) -> Leadership:
        """A claim to leadership `name` among instances sharing this store (see leader.py)."""
        if self.is_postgres:
            url = self._engine.url
            return PostgresLeadership(name, url=url, connect_args={})
        db = self._engine.url.database
        base = Path(db) if db and db != ":memory:" else self.data_dir / "por.db"
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        return FileLeadership(name, lock_path=base.with_name(f"{base.name}.leader-{safe}.lock"))

    def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        self._read(lambda s: s.execute(text("SELECT 1")).scalar_one())


def iter_sequences(store: Store, *, page: int = 100) -> Iterator[StoredAttestation]:
    """Every attestation, newest first, page by page."""
    before: int | None = None
    while True:
        rows = store.list(page, before)
        if not rows:
            return
        yield from rows
        before = rows[-1].sequence


__all__: Sequence[str] = (
    "CHECKPOINT_FILE",
    "LogConsistency",
    "LogInclusion",
    "Publication",
    "Recorded",
    "SequenceConflictError",
    "Store",
    "StoredAttestation",
    "StoredCheckpoint",
    "UnknownSequenceError",
    "default_url",
    "envelope_file_name",
)
