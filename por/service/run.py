"""One attestation run (DESIGN §1).

snapshot → reserves → sum tree → assess → sign → record → publish.

The run is a function of its inputs plus the clock and the randomness handed in through
`RunDeps`; every I/O is in an adapter (chain readers, custodian sources, the store, the
publishers). What happens on failure, by source:

- a chain that cannot be read: NO attestation, a ChainError that names the chain — its
  holders are liabilities we cannot see, and leaving them out would understate them;
- a chain whose indexed balances do not add up to its total supply: DEGRADED with the
  difference as reason (the supply figure, not the index, counts as circulating);
- a custodian that cannot be read: DEGRADED, and its reserves count as zero (never the
  last known figure);
- a statement older than its maximum age: DEGRADED, reason from the policy.

Crash consistency comes from the store: `Store.record` writes the tree file, then
commits attestation row + log leaf + checkpoint in one transaction. Publishing happens
after the commit and is idempotent per (chain, sequence), so a restart resumes it.

What the run is handed (`RunDeps`) is typed by small protocols: chain readers
(`por.chains.base.ChainReader`), a `ReserveEvaluator`, the store
(`por.store.base.AttestationStore`: latest, record, record_publication), signers
(`por.core.dsse.Signer`, `por.core.tlog.NoteSigner`) and publishers
(`por.oracle.base.Publisher`, each returning a `PublishReceipt`). The service wires the
real ones (`por.service.wiring`); tests hand in fakes such as `por.store.memory.MemoryStore`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from por.chains.base import ChainReader, ChainSnapshot
from por.core.attestation import (
    PAYLOAD_TYPE,
    Attestation,
    ChainEntry,
    Liabilities,
    PreviousRef,
    ReserveEntry,
    Token,
    chain_entry_from_values,
    decode_attestation,
    verify_consistency,
)
from por.core.dsse import Signer, sign_envelope
from por.core.mst_build import AccountColumn, BalanceWords, derive_salts
from por.core.policy import assess
from por.core.sumtree import SumTree
from por.core.tlog import Checkpoint, NoteSigner, sign_checkpoint
from por.crashpoints import crashpoint
from por.errors import ChainError, PorError
from por.oracle.base import Publisher

if TYPE_CHECKING:  # importing por.store loads SQLAlchemy; the run needs only the protocol
    from por.store.base import AttestationStore

log = logging.getLogger("por.run")


class ReserveEvaluator(Protocol):
    """Fetches custodian data and values it; returns the attestation's reserve lines."""

    def evaluate(self, *, as_of: datetime) -> ReserveResult: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ReserveResult:
    lines: tuple[ReserveEntry, ...]  # the attestation's `reserves[]`, in order
    eligible_total: int
    degraded_reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishOutcome:
    chain_id: str
    sequence: int
    ok: bool
    detail: str
    tx: str | None = None
    block_number: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    sequence: int
    digest: str
    status: str
    reasons: tuple[str, ...]
    publications: tuple[PublishOutcome, ...] = ()


@dataclass(slots=True, kw_only=True)
class RunDeps:
    token: Token
    chains: Sequence[ChainReader]
    reserves: ReserveEvaluator
    store: AttestationStore
    signers: Sequence[Signer]  # issuer first
    checkpoint_signer: NoteSigner  # signs the attestation log's checkpoints
    origin: str
    clock: Callable[[], datetime]
    random_bytes: Callable[[int], bytes]
    publishers: Sequence[Publisher] = ()
    tree_workers: int = 1
    on_recorded: Callable[[RunResult], None] | None = None


def snapshot_chains(chains: Sequence[ChainReader]) -> list[ChainSnapshot]:
    """Read every chain in parallel; any failure aborts the run naming the chain."""
    if not chains:
        return []
    with ThreadPoolExecutor(
        max_workers=min(8, len(chains)), thread_name_prefix="por-chain"
    ) as pool:
        futures = [(c.chain_id, pool.submit(c.snapshot)) for c in chains]
        out: list[ChainSnapshot] = []
        errors: list[str] = []
        for chain_id, f in futures:
            try:
                out.append(f.result())
            except PorError as e:
                errors.append(f"{chain_id}: {e}")
            except Exception as e:  # an adapter bug must not become a silent gap
                errors.append(f"{chain_id}: unexpected {type(e).__name__}: {e}")
    if errors:
        raise ChainError(
            "cannot snapshot every chain; no attestation recorded: " + "; ".join(errors)
        )
    return out


def _chain_entry(s: ChainSnapshot) -> ChainEntry:
    return chain_entry_from_values(
        chain_id=s.chain_id,
        token=s.token_address,
        block_number=s.block.number,
        block_hash=s.block.hash,
        block_time=s.block.time,
        total_supply=s.total_supply,
        excluded=[(e.account, e.balance, e.reason) for e in s.excluded],
        holders=len(s.holders),
    )


HolderParts = list[tuple[AccountColumn, BalanceWords]]


def holder_parts(snapshots: Sequence[ChainSnapshot]) -> HolderParts:
    """Each chain's holder columns (ids and balances were checked by the readers)."""
    return [s.holders.columns for s in snapshots]


def build_tree_parts(parts: HolderParts, round_secret: bytes, *, workers: int = 1) -> SumTree:
    """The liabilities tree over the chains' columns, one after another.

    The salts (keyed BLAKE2b in bulk, no second validation of the ids) are derived from
    the chains' columns in C threads while this thread joins the columns into one — at
    10^7 holders both take about a second, the join mostly in first-touch page faults.
    Consumes `parts`: the list is emptied once joined, so the chains' columns are freed
    before the tree grows. Then the build, on `workers` cores."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="por-salts") as pool:
        salts_job = pool.submit(derive_salts, round_secret, [a for a, _ in parts], workers=workers)
        accounts = AccountColumn.concat([a for a, _ in parts])
        balances = BalanceWords.concat([b for _, b in parts])
        salts = salts_job.result()
    parts.clear()
    return SumTree.build_columns(accounts, balances, salts, workers=workers)


def build_tree(
    snapshots: Sequence[ChainSnapshot], round_secret: bytes, *, workers: int = 1
) -> SumTree:
    """The liabilities tree over every holder of every chain (CAIP-10 ids never collide;
    an account on two chains would be refused as a duplicate)."""
    return build_tree_parts(holder_parts(snapshots), round_secret, workers=workers)


def attest_once(deps: RunDeps) -> RunResult:
    """Produce, sign, record and publish one attestation. Raises PorError on failure."""
    as_of = deps.clock()
    snapshots = snapshot_chains(deps.chains)
    crashpoint("after_snapshot")

    reserves = deps.reserves.evaluate(as_of=as_of)
    crashpoint("after_reserves")

    round_secret = deps.random_bytes(32)
    reasons: list[str] = [s.mismatch.reason(s.chain_id) for s in snapshots if s.mismatch]
    reasons.extend(reserves.degraded_reasons)
    chains = tuple(_chain_entry(s) for s in snapshots)
    reconciled = not any(s.mismatch for s in snapshots)
    parts = holder_parts(snapshots)
    # From here the holders live in `parts` only, which the build empties once it has
    # joined them: one copy of 10^7 ids during the build, not two.
    del snapshots
    tree = build_tree_parts(parts, round_secret, workers=deps.tree_workers)
    crashpoint("after_tree")

    circulating = sum(c.circulating_supply for c in chains)
    if tree.root.sum != circulating and reconciled:
        # Each chain's holders add up to its supply, so the tree must too; if not, a
        # reader lost a holder between its check and here — refuse rather than publish.
        raise ChainError(
            f"liabilities tree total {tree.root.sum} differs from circulating "
            f"supply {circulating} although every chain reconciled"
        )
    totals = assess(
        eligible_reserves=reserves.eligible_total,
        circulating_supply=circulating,
        degraded_reasons=reasons,
    )

    latest = deps.store.latest()
    previous = (
        None if latest is None else PreviousRef(sequence=latest.sequence, digest=latest.digest)
    )
    sequence = 1 if latest is None else latest.sequence + 1
    attestation = Attestation(
        sequence=sequence,
        issued_at=deps.clock(),
        as_of=as_of,
        token=deps.token,
        chains=chains,
        reserves=reserves.lines,
        liabilities=Liabilities(
            root=tree.root.hash.hex(), total=tree.root.sum, leaf_count=tree.size
        ),
        totals=totals,
        previous=previous,
    )
    verify_consistency(attestation)
    payload = attestation.to_bytes()
    # Sign only a document every verifier parses back as itself: reserve lines and chain
    # entries reach here as values, so the document model's limits (field lengths, asset
    # classes, amounts) are checked once, on the whole document, before the signature.
    decode_attestation(payload, where=f"attestation {sequence}")

    envelope = sign_envelope(payload, PAYLOAD_TYPE, list(deps.signers))
    crashpoint("after_sign")

    def _sign_cp(cp: Checkpoint) -> str:
        return sign_checkpoint(cp, key_name=deps.origin, signer=deps.checkpoint_signer)

    deps.store.record(
        attestation=attestation,
        envelope=envelope,
        tree=tree,
        round_secret=round_secret,
        sign_checkpoint=_sign_cp,
        origin=deps.origin,
    )
    crashpoint("after_record")
    digest = attestation.digest()
    log.info("attestation %d recorded: %s ratio=%s", sequence, totals.status, totals.ratio)

    pubs = publish_all(deps, attestation)
    result = RunResult(
        sequence=sequence,
        digest=digest,
        status=totals.status,
        reasons=totals.reasons,
        publications=tuple(pubs),
    )
    if deps.on_recorded:
        deps.on_recorded(result)
    return result


def publish_all(deps: RunDeps, attestation: Attestation) -> list[PublishOutcome]:
    """Publish to every sink; one failing sink never blocks the others or the record."""
    doc = attestation.to_dict()
    digest = attestation.digest()
    out: list[PublishOutcome] = []
    for p in deps.publishers:
        try:
            r = p.publish(doc, digest)
        except PorError as e:
            log.warning("publishing %d to %s failed: %s", attestation.sequence, p.chain_id, e)
            out.append(
                PublishOutcome(
                    chain_id=p.chain_id, sequence=attestation.sequence, ok=False, detail=str(e)
                )
            )
            deps.store.record_publication(
                p.chain_id,
                attestation.sequence,
                contract=p.contract_label,
                tx_hash=None,
                block_number=None,
                status=f"failed: {e}"[:500],
            )
            continue
        out.append(
            PublishOutcome(
                chain_id=p.chain_id,
                sequence=attestation.sequence,
                ok=True,
                detail=r.status,
                tx=r.tx_hash,
                block_number=r.block_number,
            )
        )
        deps.store.record_publication(
            p.chain_id,
            attestation.sequence,
            contract=p.contract_label,
            tx_hash=r.tx_hash,
            block_number=r.block_number,
            status=r.status,
        )
    return out


def catch_up_publications(deps: RunDeps) -> list[PublishOutcome]:
    """After a restart: publish the latest recorded attestation wherever it is missing.

    Publishers are idempotent per sequence (they read the contract / memo history
    first), so calling this when everything is published costs reads, not rounds.
    """
    latest = deps.store.latest()
    if latest is None:
        return []
    return publish_all(deps, latest.attestation)
