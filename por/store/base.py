"""What the store hands out, and what an attestation run needs from a store.

The value types (`StoredAttestation`, `Recorded`, `StoredCheckpoint`, `LogInclusion`,
`LogConsistency`, `Publication`), the store's two errors, and the `AttestationStore`
protocol the run is written against: `latest`, `record`, `record_publication`. Two
implementations follow it: `por.store.store.Store` (SQLite / PostgreSQL, files) and
`por.store.memory.MemoryStore` (tests). Both apply the same checks before recording —
`check_record_inputs` and `check_link` below — so the fake refuses what the real store
refuses.

No SQLAlchemy, no numpy, no I/O: `por.service.run` imports this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from por.core.attestation import PAYLOAD_TYPE, Attestation, decode_attestation
from por.core.dsse import Envelope
from por.core.tlog import Checkpoint
from por.errors import ChainLinkError, InputError, MismatchError, StoreError

if TYPE_CHECKING:  # the sum tree pulls in numpy; only its type is needed here
    from por.core.sumtree import SumTree

SignCheckpoint = Callable[[Checkpoint], str]
"""Signs a checkpoint of the attestation log; returns the signed note (C2SP)."""


class UnknownSequenceError(InputError):
    """No attestation (or log entry) with that sequence or size."""


class SequenceConflictError(StoreError):
    """Another writer recorded this sequence first, or `previous` does not name the latest."""


# --- values handed out by a store ---------------------------------------------------------


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
    kind: str = "regular"  # or "point-in-time" (never the oracle's latest)

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


PUBLISHED = "published"  # our transaction put the round on the oracle
ALREADY_PUBLISHED = "already_published"  # it was there before we looked
PENDING = "pending"  # not (yet) on the oracle; `error` says why, retried with backoff
SUPERSEDED = "superseded"  # the oracle took a newer round first; it can never take this one
PUBLICATION_STATUSES = (PUBLISHED, ALREADY_PUBLISHED, PENDING, SUPERSEDED)
SETTLED_STATUSES = (PUBLISHED, ALREADY_PUBLISHED, SUPERSEDED)
MAX_PUBLICATION_ERROR = 2000  # characters of a pending round's reason that are kept


def publication_status(status: str) -> str:
    """One of PUBLICATION_STATUSES: a receipt's status as is; anything else (an older
    caller's `failed: <reason>`) is `pending` — the reason goes to the error column."""
    return status if status in PUBLICATION_STATUSES else PENDING


@dataclass(frozen=True, slots=True, kw_only=True)
class Publication:
    """What the oracle on one chain holds for one attestation, as last recorded.

    `status` is one of PUBLICATION_STATUSES. A `pending` round carries its last `error`,
    how many `attempts` failed and when it is tried next (`retry_at`); a `superseded`
    one names the newer sequence the oracle holds (`superseded_by`).
    """

    chain_id: str
    sequence: int
    contract: str
    tx_hash: str | None
    block_number: int | None
    status: str
    updated_at: datetime
    error: str | None = None
    attempts: int = 0
    retry_at: datetime | None = None
    superseded_by: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedPublication:
    """One (chain, sequence) still to publish; `row` is its publication state, if any."""

    chain_id: str
    sequence: int
    row: Publication | None = None


def publication_queue(
    chain_ids: Sequence[str],
    regular_sequences: Sequence[int],
    rows: Sequence[Publication],
) -> list[QueuedPublication]:
    """What is still to publish, oldest sequence first (docs/storage.md, the queue).

    Per chain: every regular sequence after the newest settled one (published, already
    there, superseded) that is not settled itself. A chain with no row at all starts at
    the newest regular sequence (a target added later is not back-filled with history);
    a chain with rows but none settled starts at its oldest row.
    """
    by_chain: dict[str, dict[int, Publication]] = {c: {} for c in chain_ids}
    for r in rows:
        if r.chain_id in by_chain:
            by_chain[r.chain_id][r.sequence] = r
    ordered = sorted(regular_sequences)
    out: list[QueuedPublication] = []
    for chain_id in chain_ids:
        mine = by_chain[chain_id]
        settled = [q for q, r in mine.items() if r.status in SETTLED_STATUSES]
        if settled:
            start = max(settled) + 1
        elif mine:
            start = min(mine)
        elif ordered:
            start = ordered[-1]
        else:
            continue
        for q in ordered:
            if q >= start and (q not in mine or mine[q].status not in SETTLED_STATUSES):
                out.append(QueuedPublication(chain_id=chain_id, sequence=q, row=mine.get(q)))
    out.sort(key=lambda item: (item.sequence, chain_ids.index(item.chain_id)))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceDocument:
    """A raw source document a run read, with what was parsed from it (JSON)."""

    kind: str  # "custodian" | "ledger"
    source: str
    sha256: str
    format: str
    name: str
    as_of: datetime | None
    parsed_json: bytes


# --- what the run needs -------------------------------------------------------------------


class AttestationStore(Protocol):
    """The store as an attestation run sees it (`por.service.run.attest_once`)."""

    def latest(self) -> StoredAttestation | None:
        """The attestation with the highest sequence, or None when nothing is recorded."""
        ...

    def latest_regular(self) -> StoredAttestation | None:
        """The latest attestation that is not point-in-time: what the oracle and the
        publishers follow."""
        ...

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
        """Record one signed attestation, its tree and its log leaf, all or nothing.

        `matches` is the attestation's match list (`reconciliation.matches_sha256` names
        its SHA-256), stored in the same transaction.

        Raises SequenceConflictError unless `attestation.sequence` is latest + 1,
        ChainLinkError unless `previous` names the latest, MismatchError / InputError
        when the inputs do not belong together (`check_record_inputs`).
        """
        ...

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
        """Insert or update what the oracle on `chain_id` holds for `sequence`; a
        `pending` status counts one more failed attempt."""
        ...

    def publication_queue(self, chain_ids: Sequence[str]) -> list[QueuedPublication]:
        """What is still to publish to `chain_ids`, oldest first (`publication_queue`)."""
        ...

    def get(self, sequence: int) -> StoredAttestation:
        """One recorded attestation (UnknownSequenceError when there is none)."""
        ...


# --- the checks every store applies before recording --------------------------------------


def check_record_inputs(
    attestation: Attestation, envelope: Envelope, tree: SumTree, round_secret: bytes
) -> bytes:
    """Refuse inputs that do not belong together; return the attestation's canonical bytes."""
    seq = attestation.sequence
    payload = attestation.to_bytes()
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
    return payload


def check_matches_input(attestation: Attestation, matches: bytes | None) -> None:
    """A match list is stored exactly when the attestation reconciles, and is its own."""
    import hashlib

    recon = attestation.reconciliation
    if recon is None and matches is None:
        return
    if recon is None or matches is None:
        raise MismatchError(
            "a match list goes with a reconciliation section, and only with one",
            where=f"attestation {attestation.sequence}.reconciliation",
        )
    got = hashlib.sha256(matches).hexdigest()
    if got != recon.matches_sha256:
        raise MismatchError(
            "match list is not the one the attestation names",
            expected=recon.matches_sha256,
            computed=got,
            where=f"attestation {attestation.sequence}.reconciliation.matches_sha256",
        )


def check_link(att: Attestation, latest: tuple[int, str] | None) -> None:
    """`att` must be the next link after `latest` (sequence, digest); None: the store is empty."""
    if latest is None:
        if att.sequence != 1:
            raise SequenceConflictError(
                f"the store is empty, so the next sequence is 1, not {att.sequence}"
            )
        return
    latest_seq, latest_digest = latest
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


__all__ = [
    "ALREADY_PUBLISHED",
    "MAX_PUBLICATION_ERROR",
    "PENDING",
    "PUBLICATION_STATUSES",
    "PUBLISHED",
    "SETTLED_STATUSES",
    "SUPERSEDED",
    "AttestationStore",
    "LogConsistency",
    "LogInclusion",
    "Publication",
    "QueuedPublication",
    "Recorded",
    "SequenceConflictError",
    "SignCheckpoint",
    "SourceDocument",
    "StoredAttestation",
    "StoredCheckpoint",
    "UnknownSequenceError",
    "check_link",
    "check_matches_input",
    "check_record_inputs",
    "publication_queue",
    "publication_status",
]
