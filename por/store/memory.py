"""An in-memory `AttestationStore`, so an attestation run is tested without a database.

`MemoryStore` keeps what `por.store.store.Store` keeps — attestations, their trees, the
attestation log with signed checkpoints, publication state — in dicts and lists. It
applies the same checks before recording (`check_record_inputs`, `check_link`), signs
the checkpoint before changing anything (a failing signer leaves it as it was), and
hands out the same value types. What it does not do: files, crash consistency, several
writers; those are the real store's and are tested there.

No I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from por.chains.base import ChainSnapshot
from por.core.attestation import KIND_REGULAR, Attestation
from por.core.dsse import Envelope
from por.core.sumtree import SumTree
from por.core.tlog import Checkpoint, LogTree, envelope_leaf_hash
from por.store.base import (
    MAX_PUBLICATION_ERROR,
    PENDING,
    Publication,
    QueuedPublication,
    Recorded,
    SignCheckpoint,
    SourceDocument,
    StoredAttestation,
    StoredCheckpoint,
    UnknownSequenceError,
    check_link,
    check_matches_input,
    check_record_inputs,
    publication_queue,
    publication_status,
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MemoryStore:
    """Follows `por.store.base.AttestationStore`, plus the reads a test needs."""

    def __init__(self, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._clock = clock
        self._attestations: list[StoredAttestation] = []
        self._trees: dict[int, SumTree] = {}
        self._round_secrets: dict[int, bytes] = {}
        self._leaves: list[bytes] = []
        self._checkpoints: list[StoredCheckpoint] = []
        self._publications: dict[tuple[str, int], Publication] = {}
        self._matches: dict[int, bytes] = {}
        self._documents: list[SourceDocument] = []
        self._snapshots: list[ChainSnapshot] = []

    # --- AttestationStore -------------------------------------------------------------

    def latest(self) -> StoredAttestation | None:
        return self._attestations[-1] if self._attestations else None

    def latest_regular(self) -> StoredAttestation | None:
        regular = [a for a in self._attestations if a.kind == "regular"]
        return regular[-1] if regular else None

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
        payload = check_record_inputs(attestation, envelope, tree, round_secret)
        check_matches_input(attestation, matches)
        latest = self.latest()
        check_link(attestation, None if latest is None else (latest.sequence, latest.digest))
        seq = attestation.sequence
        digest = attestation.digest()
        envelope_json = envelope.to_json_bytes()
        leaf = envelope_leaf_hash(envelope_json)
        log = LogTree([*self._leaves, leaf])
        checkpoint = Checkpoint(origin=origin, size=log.size, root_hash=log.root())
        note = sign_checkpoint(checkpoint)  # may raise: nothing has changed yet

        tree_bytes = tree.to_bytes()
        tree_name = f"{seq}-{tree.root.hash.hex()[:16]}-{digest[:8]}.mst"
        totals = attestation.totals
        self._attestations.append(
            StoredAttestation(
                sequence=seq,
                digest=digest,
                envelope_json=envelope_json,
                document_json=payload,
                status=totals.status,
                ratio=totals.ratio,
                eligible_reserves=str(totals.eligible_reserves),
                circulating_supply=str(totals.circulating_supply),
                liabilities_root=attestation.liabilities.root,
                tree_file=tree_name,
                tree_sha256=hashlib.sha256(tree_bytes).hexdigest(),
                kind=attestation.kind,
            )
        )
        if matches is not None:
            self._matches[seq] = matches
        self._trees[seq] = tree
        self._round_secrets[seq] = round_secret
        self._leaves.append(leaf)
        stored_cp = StoredCheckpoint(size=log.size, root_hash=checkpoint.root_hash, note=note)
        self._checkpoints.append(stored_cp)
        return Recorded(
            sequence=seq,
            digest=digest,
            leaf_index=log.size - 1,
            checkpoint=stored_cp,
            tree_file=tree_name,
        )

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
        normal = publication_status(status)
        if normal != status and error is None:
            error = status
        before = self._publications.get((chain_id, sequence))
        attempts = 0 if before is None else before.attempts
        self._publications[(chain_id, sequence)] = Publication(
            chain_id=chain_id,
            sequence=sequence,
            contract=contract,
            tx_hash=tx_hash,
            block_number=block_number,
            status=normal,
            updated_at=self._clock(),
            error=None if error is None else error[:MAX_PUBLICATION_ERROR],
            attempts=attempts + 1 if normal == PENDING else attempts,
            retry_at=retry_at if normal == PENDING else None,
            superseded_by=superseded_by,
        )

    def publication_queue(self, chain_ids: Sequence[str]) -> list[QueuedPublication]:
        regular = [a.sequence for a in self._attestations if a.kind == KIND_REGULAR]
        return publication_queue(chain_ids, regular, list(self._publications.values()))

    def publication(self, chain_id: str, sequence: int) -> Publication | None:
        return self._publications.get((chain_id, sequence))

    # --- reads, as por.store.store.Store names them -----------------------------------

    def get(self, sequence: int) -> StoredAttestation:
        if not 1 <= sequence <= len(self._attestations):
            raise UnknownSequenceError(f"no attestation with sequence {sequence}", where="sequence")
        return self._attestations[sequence - 1]

    def tree(self, sequence: int) -> SumTree:
        self.get(sequence)
        return self._trees[sequence]

    def round_secret(self, sequence: int) -> bytes:
        self.get(sequence)
        return self._round_secrets[sequence]

    def log_tree(self) -> LogTree:
        return LogTree(self._leaves)

    def checkpoint(self) -> StoredCheckpoint | None:
        return self._checkpoints[-1] if self._checkpoints else None

    def matches(self, sequence: int) -> bytes | None:
        return self._matches.get(sequence)

    def record_source_document(self, doc: SourceDocument) -> None:
        if not any(d.source == doc.source and d.sha256 == doc.sha256 for d in self._documents):
            self._documents.append(doc)

    def source_documents(self, kind: str, source: str) -> list[SourceDocument]:
        return [d for d in self._documents if d.kind == kind and d.source == source]

    def record_chain_snapshot(self, snapshot: ChainSnapshot) -> None:
        key = (snapshot.chain_id, snapshot.block.number)
        if all((s.chain_id, s.block.number) != key for s in self._snapshots):
            self._snapshots.append(snapshot)

    def chain_snapshot_at(self, chain_id: str, when: datetime) -> ChainSnapshot | None:
        found = [s for s in self._snapshots if s.chain_id == chain_id and s.block.time <= when]
        return max(found, key=lambda s: (s.block.time, s.block.number)) if found else None

    def publications(self) -> list[Publication]:
        """Per chain, the publication of the highest sequence, ordered by chain id."""
        newest: dict[str, Publication] = {}
        for (chain_id, sequence), p in self._publications.items():
            if chain_id not in newest or sequence > newest[chain_id].sequence:
                newest[chain_id] = p
        return [newest[c] for c in sorted(newest)]


__all__ = ["MemoryStore"]
