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
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from por.chains.base import ChainReader, ChainSnapshot
from por.core.attestation import (
    PAYLOAD_TYPE,
    AllocationPolicy,
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
from por.core.budgets import with_budgets
from por.core.dsse import Signer, sign_envelope
from por.core.mst import derive_salt
from por.core.policy import assess
from por.core.sumtree import SumTree
from por.core.tlog import Checkpoint, NoteSigner, sign_checkpoint
from por.crashpoints import crashpoint
from por.errors import ChainError, PorError
from por.oracle.base import PublishDeferredError, Publisher

if TYPE_CHECKING:  # importing por.store loads SQLAlchemy; the run needs only the protocol
    from por.store.base import AttestationStore

log = logging.getLogger("por.run")

DEFAULT_ALLOCATION = AllocationPolicy()  # headroom by circulating supply, excluded covered


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
    ratio: str | None = None
    durations_s: tuple[tuple[str, float], ...] = ()  # (phase, seconds) in run order


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
    allocation: AllocationPolicy = DEFAULT_ALLOCATION  # per-chain budgets (docs/budgets.md)
    tree_workers: int = 1
    on_recorded: Callable[[RunResult], None] | None = None
    # Key rotation (por.service.signing.KeyRing): the issuer keys valid at the document's
    # issued_at sign it (None: `signers`); cosigners add their lines to every checkpoint.
    signers_at: Callable[[datetime], Sequence[Signer]] | None = None
    checkpoint_cosigners: Sequence[NoteSigner] = ()


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


def build_tree(
    snapshots: Sequence[ChainSnapshot], round_secret: bytes, *, workers: int = 1
) -> SumTree:
    """The liabilities tree over every holder of every chain (CAIP-10 ids never collide)."""
    accounts: list[str] = []
    balances: list[int] = []
    for s in snapshots:
        for account, balance in s.holders.items():
            accounts.append(account)
            balances.append(balance)
    salts = b"".join(derive_salt(round_secret, a) for a in accounts)
    return SumTree.build_columns(accounts, balances, salts, workers=workers)


def attest_once(deps: RunDeps) -> RunResult:  # noqa: PLR0915 - the pipeline, step by step
    """Produce, sign, record and publish one attestation. Raises PorError on failure."""
    phases: list[tuple[str, float]] = []
    mark = time.monotonic()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases.append((name, now - mark))
        mark = now

    as_of = deps.clock()
    snapshots = snapshot_chains(deps.chains)
    crashpoint("after_snapshot")
    phase("snapshot")

    reserves = deps.reserves.evaluate(as_of=as_of)
    crashpoint("after_reserves")
    phase("reserves")

    round_secret = deps.random_bytes(32)
    holders = sum(len(s.holders) for s in snapshots)
    if holders >= 100_000:
        log.info("building the liabilities tree over %d holders", holders)
    tree = build_tree(snapshots, round_secret, workers=deps.tree_workers)
    crashpoint("after_tree")
    phase("tree")

    reasons: list[str] = [s.mismatch.reason(s.chain_id) for s in snapshots if s.mismatch]
    reasons.extend(reserves.degraded_reasons)
    chains = tuple(_chain_entry(s) for s in snapshots)
    circulating = sum(c.circulating_supply for c in chains)
    if tree.root.sum != circulating and not any(s.mismatch for s in snapshots):
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
    attestation = with_budgets(attestation, deps.allocation)
    verify_consistency(attestation)
    payload = attestation.to_bytes()
    # Sign only a document every verifier parses back as itself: reserve lines and chain
    # entries reach here as values, so the document model's limits (field lengths, asset
    # classes, amounts) are checked once, on the whole document, before the signature.
    decode_attestation(payload, where=f"attestation {sequence}")

    signers = deps.signers_at(attestation.issued_at) if deps.signers_at else deps.signers
    envelope = sign_envelope(payload, PAYLOAD_TYPE, list(signers))
    crashpoint("after_sign")
    phase("sign")

    def _sign_cp(cp: Checkpoint) -> str:
        note = sign_checkpoint(cp, key_name=deps.origin, signer=deps.checkpoint_signer)
        for cosigner in deps.checkpoint_cosigners:  # one more signature line each
            extra = sign_checkpoint(cp, key_name=deps.origin, signer=cosigner)
            note += extra[extra.rindex("\n\n") + 2 :]
        return note

    deps.store.record(
        attestation=attestation,
        envelope=envelope,
        tree=tree,
        round_secret=round_secret,
        sign_checkpoint=_sign_cp,
        origin=deps.origin,
    )
    crashpoint("after_record")
    phase("record")
    digest = attestation.digest()

    pubs = publish_all(deps, attestation)
    phase("publish")
    result = RunResult(
        sequence=sequence,
        digest=digest,
        status=totals.status,
        reasons=totals.reasons,
        publications=tuple(pubs),
        ratio=totals.ratio,
        durations_s=tuple(phases),
    )
    _log_run(result, holders=tree.size)
    if deps.on_recorded:
        deps.on_recorded(result)
    return result


def _log_run(r: RunResult, *, holders: int) -> None:
    """The one line per run: sequence, status, ratio, publications, per-phase durations."""
    published = sum(p.ok for p in r.publications)
    timing = " ".join(f"{name}={seconds:.2f}s" for name, seconds in r.durations_s)
    total = sum(seconds for _, seconds in r.durations_s)
    log.log(
        logging.INFO if r.status == "FULLY_BACKED" else logging.WARNING,
        "attestation %d %s ratio=%s leaves=%d published=%d/%d %s total=%.2fs%s",
        r.sequence,
        r.status,
        r.ratio,
        holders,
        published,
        len(r.publications),
        timing,
        total,
        "".join(f"; reason: {reason}" for reason in r.reasons),
        extra={
            "por": {
                "event": "run",
                "sequence": r.sequence,
                "status": r.status,
                "ratio": r.ratio,
                "digest": r.digest,
                "published": published,
                "publishers": len(r.publications),
                "durations_s": {name: round(sec, 4) for name, sec in r.durations_s},
            }
        },
    )


def publish_all(deps: RunDeps, attestation: Attestation) -> list[PublishOutcome]:
    """Publish to every sink; one failing sink never blocks the others or the record.

    A publisher that defers (`PublishDeferredError`: its chain's budget grows and must
    wait until the chains whose budgets shrink hold the new round, docs/budgets.md) gets
    a second turn after all the others; deferring again is then recorded as a failure.
    """
    doc = attestation.to_dict()
    digest = attestation.digest()
    outcomes: dict[int, PublishOutcome] = {}
    deferred: list[int] = []
    for i, p in enumerate(deps.publishers):
        try:
            outcomes[i] = _publish_one(deps, p, doc, digest, attestation.sequence, may_defer=True)
        except PublishDeferredError as e:
            log.info("publishing %d to %s deferred: %s", attestation.sequence, p.chain_id, e)
            deferred.append(i)
    for i in deferred:
        p = deps.publishers[i]
        outcomes[i] = _publish_one(deps, p, doc, digest, attestation.sequence, may_defer=False)
    return [outcomes[i] for i in sorted(outcomes)]


def _publish_one(
    deps: RunDeps,
    p: Publisher,
    doc: dict[str, Any],
    digest: str,
    sequence: int,
    *,
    may_defer: bool,
) -> PublishOutcome:
    started = time.monotonic()
    try:
        r = p.publish(doc, digest)
    except PorError as e:
        if may_defer and isinstance(e, PublishDeferredError):
            raise
        return _failed(deps, p, sequence, e, time.monotonic() - started)
    log.info(
        "published %d to %s: %s tx=%s block=%s in %.1f s",
        sequence,
        p.chain_id,
        r.status,
        r.tx_hash,
        r.block_number,
        time.monotonic() - started,
    )
    deps.store.record_publication(
        p.chain_id,
        sequence,
        contract=p.contract_label,
        tx_hash=r.tx_hash,
        block_number=r.block_number,
        status=r.status,
    )
    return PublishOutcome(
        chain_id=p.chain_id,
        sequence=sequence,
        ok=True,
        detail=r.status,
        tx=r.tx_hash,
        block_number=r.block_number,
    )


def _failed(
    deps: RunDeps, p: Publisher, sequence: int, e: PorError, elapsed_s: float
) -> PublishOutcome:
    log.warning(
        "publishing %d to %s failed after %.1f s: %s",
        sequence,
        p.chain_id,
        elapsed_s,
        e.diagnostics(),
    )
    deps.store.record_publication(
        p.chain_id,
        sequence,
        contract=p.contract_label,
        tx_hash=None,
        block_number=None,
        status=f"failed: {e}"[:500],
    )
    return PublishOutcome(chain_id=p.chain_id, sequence=sequence, ok=False, detail=str(e))


def catch_up_publications(deps: RunDeps) -> list[PublishOutcome]:
    """After a restart: publish the latest recorded attestation wherever it is missing.

    Publishers are idempotent per sequence (they read the contract / memo history
    first), so calling this when everything is published costs reads, not rounds.
    """
    latest = deps.store.latest()
    if latest is None:
        return []
    return publish_all(deps, latest.attestation)
