"""The database schema of the store: SQLAlchemy 2 typed declarative tables.

One row per attestation (its envelope, document and tree file), one per log leaf, one
per signed checkpoint, and the publication state of each oracle. Amounts are decimal
strings (never floats, never database numerics that a driver might turn into floats).
Nothing here touches a database by itself; `por.store.store` does.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 1
"""The pre-Alembic version number, still written by the baseline revision. Schema changes
are Alembic revisions now (por/store/migrations/versions/); `Store.open` refuses a
database that is not at the newest one (`por db upgrade`)."""


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    """Key/value facts about the database: the schema version, and the writer's lock row."""

    __tablename__ = "por_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class AttestationRow(Base):
    """One signed attestation. `sequence` is the primary key: one row per sequence, ever."""

    __tablename__ = "por_attestations"

    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    previous_digest: Mapped[str | None] = mapped_column(String(64))
    envelope_json: Mapped[bytes] = mapped_column(LargeBinary)
    document_json: Mapped[bytes] = mapped_column(LargeBinary)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(32))
    ratio: Mapped[str | None] = mapped_column(String(64))
    eligible_reserves: Mapped[str] = mapped_column(String(40))
    circulating_supply: Mapped[str] = mapped_column(String(40))
    liabilities_root: Mapped[str] = mapped_column(String(64))
    tree_file: Mapped[str] = mapped_column(String(255))
    tree_sha256: Mapped[str] = mapped_column(String(64))
    # The per-round PRF key behind every salt; kept so proofs can be re-derived by the
    # operator, never served by the API (it would let anyone link leaves across rounds).
    round_secret: Mapped[bytes] = mapped_column(LargeBinary)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # "regular", or "point-in-time" (an attestation as of a past time: in the log and the
    # hash chain, never the latest for the oracle and the publishers)
    kind: Mapped[str] = mapped_column(String(16), server_default="regular")


class LogLeafRow(Base):
    """One leaf of the attestation log (DESIGN §5); `leaf_index` is its RFC 9162 index."""

    __tablename__ = "por_log_leaves"

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    sequence: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("por_attestations.sequence"), unique=True
    )
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)


class CheckpointRow(Base):
    """A signed checkpoint of the log at one size (C2SP signed note)."""

    __tablename__ = "por_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(Text)


class PublicationRow(Base):
    """What one oracle (per chain) holds for one attestation: contract, tx, status."""

    __tablename__ = "por_publications"
    __table_args__ = (UniqueConstraint("chain_id", "sequence"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(String(128))
    tx_hash: Mapped[str | None] = mapped_column(String(128))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    # one of por.store.base.PUBLICATION_STATUSES (never free text: it is String(32))
    status: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the publication queue (issue 12): why a round is pending, how often it failed,
    # when it is tried next, and which newer round superseded it
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    superseded_by: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class StateBlobRow(Base):
    """Run state kept between runs (index checkpoints, flow indexes, memo intents, raw
    statements when there is no object store) when `[service] state = "database"`."""

    __tablename__ = "por_state_blobs"

    namespace: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PublishIntentRow(Base):
    """A publisher's intent (persisted BEFORE broadcasting), as JSON, per chain and sequence."""

    __tablename__ = "por_publish_intents"
    __table_args__ = (UniqueConstraint("chain_id", "sequence"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(BigInteger)
    intent_json: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertDeadLetterRow(Base):
    """A webhook delivery of an alert that failed every attempt (por.service.alerts)."""

    __tablename__ = "por_alert_dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(512))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- co-signatures (issue 14): tables added beside the above; create_all makes them -------


class WitnessCosignatureRow(Base):
    """A witness's tlog-cosignature/v1 line on the log's checkpoint of one size."""

    __tablename__ = "por_witness_cosignatures"
    __table_args__ = (UniqueConstraint("size", "witness", "key_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(BigInteger, ForeignKey("por_checkpoints.size"), index=True)
    witness: Mapped[str] = mapped_column(String(255))  # the witness's key name
    key_id: Mapped[bytes] = mapped_column(LargeBinary)  # 4 bytes
    timestamp: Mapped[int] = mapped_column(BigInteger)  # POSIX seconds, from the cosignature
    line: Mapped[str] = mapped_column(Text)  # the whole signature line, as served
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WitnessSubmissionRow(Base):
    """Where the log stands with one configured witness: what it cosigned, what failed."""

    __tablename__ = "por_witness_submissions"

    witness: Mapped[str] = mapped_column(String(255), primary_key=True)  # key name
    known_size: Mapped[int] = mapped_column(BigInteger)  # the witness's size, as last told
    cosigned_size: Mapped[int] = mapped_column(BigInteger)  # the largest size it cosigned
    attempts: Mapped[int] = mapped_column(Integer)  # failed attempts since the last success
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditorSignatureRow(Base):
    """An auditor's DSSE signature over an attestation's payload, stored beside the
    envelope: the envelope (and its log leaf) never changes."""

    __tablename__ = "por_auditor_signatures"

    sequence: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("por_attestations.sequence"), primary_key=True
    )
    keyid: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the key
    sig: Mapped[bytes] = mapped_column(LargeBinary)  # Ed25519 over PAE(type, payload)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- issue 18: off-chain liabilities, flow reconciliation, attestations as of a past time ---


class ReconciliationRow(Base):
    """The detailed match list (por-matches-v1) of one attestation, exactly as hashed into
    it (`reconciliation.matches_sha256`); written in the attestation's transaction."""

    __tablename__ = "por_reconciliations"

    sequence: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("por_attestations.sequence"), primary_key=True
    )
    sha256: Mapped[str] = mapped_column(String(64))
    matches_json: Mapped[bytes] = mapped_column(LargeBinary)


class SourceDocumentRow(Base):
    """A raw source document a run read (custodian statement, ledger export), with what
    was parsed from it: an attestation as of a past time uses the ones valid then."""

    __tablename__ = "por_source_documents"
    __table_args__ = (UniqueConstraint("source", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # "custodian" | "ledger"
    source: Mapped[str] = mapped_column(String(128), index=True)  # the configured source name
    sha256: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(512))
    as_of: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    parsed_json: Mapped[bytes] = mapped_column(LargeBinary)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ChainSnapshotRow(Base):
    """A chain snapshot recorded by a regular run, for chains whose nodes keep no history
    (Solana): an attestation as of a past time uses the nearest one at or before it."""

    __tablename__ = "por_chain_snapshots"
    __table_args__ = (UniqueConstraint("chain_id", "block_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[str] = mapped_column(String(64), index=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(128))
    block_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    snapshot_zlib: Mapped[bytes] = mapped_column(LargeBinary)  # zlib of the snapshot JSON
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- `por witness`: its own database, never the service's ----------------------------------


class WitnessBase(DeclarativeBase):
    """Tables of a witness an auditor runs (`por witness serve`), in the witness's database."""


class WitnessLogRow(WitnessBase):
    """Per log origin: the latest checkpoint this witness cosigned."""

    __tablename__ = "por_witness_logs"

    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WitnessEvidenceRow(WitnessBase):
    """A request with a valid log signature that the witness refused (a stale, forked or
    split view): kept, as tlog-witness allows, as possible proof of log misbehaviour."""

    __tablename__ = "por_witness_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    request: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
