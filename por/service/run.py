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
- a statement older than its maximum age: DEGRADED, reason from the policy;
- a ledger source (off-chain liabilities) that cannot be read or gives no usable export:
  NO attestation (its liabilities would be understated); a stale export: DEGRADED;
- mints or burns without their bank movement (or the reverse) beyond the configured age
  or tolerance: DEGRADED, naming them (the flow reconciliation, docs/ledger.md).

`attest_once(deps, as_of=T)` makes a point-in-time attestation (`kind: "point-in-time"`):
EVM chains at the last finalized block at or before T from an archive node, chains whose
nodes keep no history (Solana) from the nearest snapshot recorded at or before T, custodians
and ledgers from the documents stored that were valid at T. It is signed, recorded and
logged like any other, in the same hash chain, but never published to the oracles and
never the "latest" the oracle and the API's latest follow.

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
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from por.chains.base import ChainReader, ChainSnapshot, HistoricalStateError
from por.core.attestation import (
    KIND_POINT_IN_TIME,
    KIND_REGULAR,
    PAYLOAD_TYPE,
    AllocationPolicy,
    Attestation,
    ChainEntry,
    LedgerSection,
    Liabilities,
    PointInTime,
    PointInTimeChain,
    PreviousRef,
    ReconciliationSection,
    ReserveEntry,
    Token,
    chain_entry_from_values,
    decode_attestation,
    verify_consistency,
)
from por.core.budgets import with_budgets
from por.core.dsse import Signer, sign_envelope
from por.core.flows import BankEntry, ChainSource, FlowParams, in_range, reconcile
from por.core.mst_build import (
    AccountColumn,
    BalanceWords,
    balance_words,
    derive_salts,
    encode_accounts,
)
from por.core.policy import assess
from por.core.sumtree import SumTree
from por.core.times import format_time
from por.core.tlog import Checkpoint, NoteSigner, sign_checkpoint
from por.crashpoints import crashpoint
from por.deadline import RunCancelledError, RunDeadline, lifted_deadline, run_deadline
from por.deadline import current as current_deadline
from por.errors import ChainError, InputError, PorError, PublishError
from por.oracle.base import PublishDeferredError, Publisher, PublishSupersededError

if TYPE_CHECKING:  # importing por.store loads SQLAlchemy; the run needs only the protocol
    from por.store.base import AttestationStore, QueuedPublication

log = logging.getLogger("por.run")

DEFAULT_ALLOCATION = AllocationPolicy()  # headroom by circulating supply, excluded covered


class ReserveEvaluator(Protocol):
    """Fetches custodian data and values it; returns the attestation's reserve lines."""

    def evaluate(self, *, as_of: datetime) -> ReserveResult: ...


class HistoricalReserves(Protocol):
    """Values the custodian documents stored that were valid at a past time."""

    def evaluate_at(self, *, as_of: datetime) -> ReserveResult: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ReserveResult:
    lines: tuple[ReserveEntry, ...]  # the attestation's `reserves[]`, in order
    eligible_total: int
    degraded_reasons: tuple[str, ...] = ()
    # booked statement entries (for the flow reconciliation; empty when it is off)
    entries: tuple[BankEntry, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerLeaf:
    account: str  # ledger:<issuer>:<id>
    balance: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LiabilityResult:
    """Off-chain liabilities: the leaves and the attestation's `ledger` section."""

    leaves: tuple[LedgerLeaf, ...]
    section: LedgerSection
    degraded_reasons: tuple[str, ...] = ()


class LedgerEvaluator(Protocol):
    """Reads the ledger sources (a failure raises: liabilities are never left out)."""

    def evaluate(self, *, as_of: datetime) -> LiabilityResult: ...

    def evaluate_at(self, *, as_of: datetime) -> LiabilityResult: ...


class SnapshotArchive(Protocol):
    """Snapshots of chains whose nodes keep no history, recorded by regular runs."""

    def record_chain_snapshot(self, snapshot: ChainSnapshot) -> None: ...

    def chain_snapshot_at(self, chain_id: str, when: datetime) -> ChainSnapshot | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowSettings:
    """`[reconciliation]`: from when, the time window, the age and amount limits."""

    start: datetime
    window_s: int = 86_400
    max_age_s: int = 172_800
    tolerance: int | None = None
    accounts: tuple[str, ...] | None = None  # account_refs of the flow accounts (None: all)
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishOutcome:
    chain_id: str
    sequence: int
    ok: bool
    detail: str
    tx: str | None = None
    block_number: int | None = None
    status: str = "published"  # published, already_published, pending, superseded


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    sequence: int
    digest: str
    status: str
    reasons: tuple[str, ...]
    publications: tuple[PublishOutcome, ...] = ()
    ratio: str | None = None
    durations_s: tuple[tuple[str, float], ...] = ()  # (phase, seconds) in run order
    kind: str = KIND_REGULAR
    reconciliation_reasons: tuple[str, ...] = ()  # unmatched flows (also in `reasons`)
    overdue: tuple[str, ...] = ()  # ids of unmatched flows older than the limit


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
    # another tree engine (por.service.tree_dask: `tree_engine = "dask"`): builds the same
    # tree from the chains' columns and the round secret; None: this process
    tree_builder: Callable[[HolderParts, bytes], SumTree] | None = None
    on_recorded: Callable[[RunResult], None] | None = None
    # Key rotation (por.service.signing.KeyRing): the issuer keys valid at the document's
    # issued_at sign it (None: `signers`); cosigners add their lines to every checkpoint.
    signers_at: Callable[[datetime], Sequence[Signer]] | None = None
    checkpoint_cosigners: Sequence[NoteSigner] = ()
    # issue 18: off-chain liabilities, the flow reconciliation, snapshots for the past
    ledger: LedgerEvaluator | None = None
    flows: FlowSettings | None = None
    snapshots: SnapshotArchive | None = None
    max_snapshot_gap_s: int = 3 * 3600  # a recorded snapshot further before the as-of: DEGRADED
    # the publication queue: a pending round waits base · 2^(n-1) s after its n-th failure
    publish_retry_base_s: int = 60
    publish_retry_max_s: int = 3600
    # [schedule] run_deadline_s: the run up to its record, at most this long (None: no limit)
    deadline_s: float | None = None


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


def holder_parts(
    snapshots: Sequence[ChainSnapshot], ledger: Sequence[LedgerLeaf] = ()
) -> HolderParts:
    """Each chain's holder columns (ids and balances were checked by the readers), then
    the off-chain ledger accounts as one more column (checked here, once)."""
    parts = [s.holders.columns for s in snapshots]
    if ledger:
        parts.append(
            (
                encode_accounts((leaf.account for leaf in ledger), where="ledger"),
                balance_words((leaf.balance for leaf in ledger), len(ledger)),
            )
        )
    return parts


def build_tree_parts(parts: HolderParts, round_secret: bytes, *, workers: int = 1) -> SumTree:
    """The liabilities tree over the chains' columns, one after another.

    The salts (keyed BLAKE2b in bulk, no second validation of the ids) are derived from
    the chains' columns in C threads, then the build hashes each chain's column where it
    lies (SumTree.build_parts): the columns are never joined into one, which at 10^7
    holders would touch ~0.8 GB of fresh memory. The tree keeps the columns; `parts` is
    emptied so only the tree holds them. Then the build, on `workers` cores."""
    salts = derive_salts(round_secret, [a for a, _ in parts], workers=workers)
    columns = list(parts)
    parts.clear()
    return SumTree.build_parts(columns, salts, workers=workers)


def build_tree(
    snapshots: Sequence[ChainSnapshot],
    round_secret: bytes,
    *,
    workers: int = 1,
    ledger: Sequence[LedgerLeaf] = (),
    builder: Callable[[HolderParts, bytes], SumTree] | None = None,
) -> SumTree:
    """The liabilities tree over every holder of every chain and every off-chain ledger
    account (CAIP-10 ids never collide: `ledger:` is a namespace of its own; an account
    twice would be refused as a duplicate). `builder`: another engine (Dask) that builds
    the same tree; the round secret stays in this process either way."""
    parts = holder_parts(snapshots, ledger)
    if builder is not None:
        return builder(parts, round_secret)
    return build_tree_parts(parts, round_secret, workers=workers)


def _snapshot_past(
    deps: RunDeps, when: datetime
) -> tuple[list[ChainSnapshot], list[PointInTimeChain], list[str]]:
    """Every chain as of `when`: archive state (EVM) or the nearest recorded snapshot."""
    snaps: list[ChainSnapshot] = []
    info: list[PointInTimeChain] = []
    reasons: list[str] = []
    for reader in deps.chains:  # the first chain that cannot be read refuses the whole run
        at = getattr(reader, "snapshot_at", None)
        if at is not None:
            snap: ChainSnapshot = at(when)
            source = "archive-state"
        else:
            found = (
                None
                if deps.snapshots is None
                else deps.snapshots.chain_snapshot_at(reader.chain_id, when)
            )
            if found is None:
                raise HistoricalStateError(
                    f"no snapshot recorded at or before {format_time(when)}: its node "
                    "keeps no account history, and por records one per regular run from "
                    "the time it is configured",
                    where=reader.chain_id,
                )
            snap, source = found, "recorded-snapshot"
        gap = int((when - snap.block.time).total_seconds())
        if source == "recorded-snapshot" and gap > deps.max_snapshot_gap_s:
            reasons.append(
                f"{snap.chain_id}: the nearest recorded snapshot (slot {snap.block.number}, "
                f"{format_time(snap.block.time)}) is {gap} s before the as-of (limit "
                f"{deps.max_snapshot_gap_s} s)"
            )
        snaps.append(snap)
        info.append(PointInTimeChain(chain_id=snap.chain_id, source=source, gap_s=max(0, gap)))
    return snaps, info, reasons


def _reconcile(
    deps: RunDeps, snapshots: Sequence[ChainSnapshot], entries: Sequence[BankEntry], as_of: datetime
) -> tuple[ReconciliationSection, bytes, tuple[str, ...], tuple[str, ...]] | None:
    """The flow reconciliation over [start, as_of]: section, match list, reasons, overdue."""
    if deps.flows is None:
        return None
    f = deps.flows
    read = [s for s in snapshots if s.flows_from_block is not None]
    params = FlowParams(
        from_time=min(f.start.astimezone(UTC).replace(microsecond=0), as_of),
        to_time=as_of,
        window_s=f.window_s,
        max_age_s=f.max_age_s,
        tolerance=f.tolerance,
        accounts=f.accounts,
        ignore=f.ignore,
        chains=tuple(
            ChainSource(
                chain_id=s.chain_id,
                token=s.token_address,
                from_block=s.flows_from_block or 0,
                to_block=s.block.number,
                block_hash=s.block.hash,
                reference_events=bool(getattr(reader, "reference_events", False)),
            )
            for reader, s in zip(deps.chains, snapshots, strict=True)
            if s.flows_from_block is not None
        ),
    )
    rec = reconcile([fl for s in read for fl in s.flows], entries, params)
    statements = sorted({e.statement for e in entries if in_range(params, e)})
    section = rec.section(statements=statements)
    return section, rec.document_bytes(), rec.reasons, rec.overdue


def attest_once(deps: RunDeps, *, as_of: datetime | None = None) -> RunResult:
    """Produce, sign, record and publish one attestation. Raises PorError on failure.

    With `as_of` (a past time): a point-in-time attestation, recorded but never published
    (module docstring).

    With `deps.deadline_s`, everything up to the record happens under that deadline
    (por.deadline): every network read is capped by what is left of it, and a run that
    reaches it — or is cancelled (SIGTERM) — stops with RunCancelledError naming the slow
    source(s), nothing recorded. Publishing comes after, under its own per-request limits
    (a round that is recorded is queued for publication, whatever happens then).
    """
    if deps.deadline_s is None or current_deadline() is not None:
        return _attest(deps, as_of=as_of)
    dl = RunDeadline(deps.deadline_s, label="attestation run")
    with run_deadline(dl):
        try:
            return _attest(deps, as_of=as_of)
        except RunCancelledError:
            raise
        except PorError as e:
            if dl.expired():  # the failure is the deadline's: say so, naming the source
                try:
                    dl.check("the run")
                except RunCancelledError as cancelled:
                    cancelled.message += f" (first error: {e})"
                    raise cancelled from e
            raise


def _check_deadline(phase: str) -> None:
    d = current_deadline()
    if d is not None:
        d.check(phase)


def _attest(deps: RunDeps, *, as_of: datetime | None = None) -> RunResult:  # noqa: PLR0912, PLR0915 - the pipeline, step by step
    phases: list[tuple[str, float]] = []
    mark = time.monotonic()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases.append((name, now - mark))
        mark = now

    past = as_of is not None
    pit_chains: list[PointInTimeChain] = []
    reasons: list[str] = []
    if as_of is None:
        # whole seconds in UTC, as the document says it (the reconciliation ends there too)
        as_of = deps.clock().astimezone(UTC).replace(microsecond=0)
        snapshots = snapshot_chains(deps.chains)
    else:
        now = deps.clock()
        if as_of.tzinfo is None:
            raise InputError("the as-of time needs a time zone", where="--as-of")
        as_of = as_of.astimezone(UTC).replace(microsecond=0)
        if as_of > now:
            raise InputError(
                f"{format_time(as_of)} is in the future (now {format_time(now)}): an "
                "attestation can only be made as of a time that has passed",
                where="--as-of",
            )
        snapshots, pit_chains, pit_reasons = _snapshot_past(deps, as_of)
        reasons.extend(pit_reasons)
    crashpoint("after_snapshot")
    phase("snapshot")
    _check_deadline("the chain snapshots")

    if past:
        historical = getattr(deps.reserves, "evaluate_at", None)
        if historical is None:
            raise InputError("this service keeps no stored statements to value as of a past time")
        reserves: ReserveResult = historical(as_of=as_of)
    else:
        reserves = deps.reserves.evaluate(as_of=as_of)
    liabilities: LiabilityResult | None = None
    if deps.ledger is not None:
        liabilities = (
            deps.ledger.evaluate_at(as_of=as_of) if past else deps.ledger.evaluate(as_of=as_of)
        )
    crashpoint("after_reserves")
    phase("reserves")
    # a custodian cut off by the deadline would count as zero (DEGRADED): stop instead
    _check_deadline("the custodian and ledger reads")

    round_secret = deps.random_bytes(32)
    holders = sum(len(s.holders) for s in snapshots)
    if holders >= 100_000:
        log.info("building the liabilities tree over %d holders", holders)
    tree = build_tree(
        snapshots,
        round_secret,
        workers=deps.tree_workers,
        ledger=() if liabilities is None else liabilities.leaves,
        builder=deps.tree_builder,
    )
    crashpoint("after_tree")
    phase("tree")

    reasons.extend(s.mismatch.reason(s.chain_id) for s in snapshots if s.mismatch)
    reasons.extend(reserves.degraded_reasons)
    if liabilities is not None:
        reasons.extend(liabilities.degraded_reasons)
    recon = _reconcile(deps, snapshots, reserves.entries, as_of)
    if recon is not None:
        reasons.extend(recon[2])
    chains = tuple(_chain_entry(s) for s in snapshots)
    off_chain = 0 if liabilities is None else liabilities.section.total
    circulating = sum(c.circulating_supply for c in chains) + off_chain
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
        ledger=None if liabilities is None else liabilities.section,
        reconciliation=None if recon is None else recon[0],
        kind=KIND_POINT_IN_TIME if past else KIND_REGULAR,
        point_in_time=PointInTime(requested=as_of, chains=tuple(pit_chains)) if past else None,
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

    _check_deadline("recording")  # the last point where the run can still leave no trace
    deps.store.record(
        attestation=attestation,
        envelope=envelope,
        tree=tree,
        round_secret=round_secret,
        sign_checkpoint=_sign_cp,
        origin=deps.origin,
        matches=None if recon is None else recon[1],
    )
    crashpoint("after_record")
    phase("record")
    digest = attestation.digest()

    if not past:
        _record_snapshots(deps, snapshots)
    # a point-in-time attestation is never the oracle's round (module docstring)
    with lifted_deadline():  # recorded: publishing runs under its own limits
        pubs = [] if past else publish_pending(deps)
    phase("publish")
    result = RunResult(
        sequence=sequence,
        digest=digest,
        status=totals.status,
        reasons=totals.reasons,
        publications=tuple(pubs),
        ratio=totals.ratio,
        durations_s=tuple(phases),
        kind=attestation.kind,
        reconciliation_reasons=() if recon is None else recon[2],
        overdue=() if recon is None else recon[3],
    )
    _log_run(result, holders=tree.size)
    if deps.on_recorded and not past:
        deps.on_recorded(result)
    return result


def _record_snapshots(deps: RunDeps, snapshots: Sequence[ChainSnapshot]) -> None:
    """Keep the snapshots of chains that cannot be read in the past (Solana), so an
    attestation as of a later-chosen time can use them. Never fails the recorded run."""
    if deps.snapshots is None:
        return
    for reader, snap in zip(deps.chains, snapshots, strict=True):
        if getattr(reader, "snapshot_at", None) is not None:
            continue  # read from an archive node when asked
        try:
            deps.snapshots.record_chain_snapshot(snap)
        except PorError as e:
            log.warning("recording the %s snapshot failed: %s", snap.chain_id, e)


def _log_run(r: RunResult, *, holders: int) -> None:
    """The one line per run: sequence, status, ratio, publications, per-phase durations."""
    published = sum(p.ok for p in r.publications)
    timing = " ".join(f"{name}={seconds:.2f}s" for name, seconds in r.durations_s)
    total = sum(seconds for _, seconds in r.durations_s)
    log.log(
        logging.INFO if r.status == "FULLY_BACKED" else logging.WARNING,
        "attestation %d%s %s ratio=%s leaves=%d published=%d/%d %s total=%.2fs%s",
        r.sequence,
        "" if r.kind == KIND_REGULAR else f" ({r.kind})",
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
                "kind": r.kind,
                "status": r.status,
                "ratio": r.ratio,
                "digest": r.digest,
                "published": published,
                "publishers": len(r.publications),
                "durations_s": {name: round(sec, 4) for name, sec in r.durations_s},
            }
        },
    )


def retry_delay_s(attempts: int, *, base_s: int, max_s: int) -> int:
    """Seconds before attempt `attempts + 1` of a pending round: base · 2^(attempts-1),
    at most `max_s` (attempts counts the failures so far, >= 1)."""
    return int(min(max_s, base_s * 2 ** min(max(attempts - 1, 0), 30)))


def publish_pending(deps: RunDeps, *, now: datetime | None = None) -> list[PublishOutcome]:
    """Work through the publication queue: every regular round not yet settled on every
    configured target, oldest first (docs/storage.md, the publication queue).

    Per target the order is kept: a round that fails (or waits for its retry time) holds
    the newer rounds of that target back until it is published, so no round is
    overtaken by accident; it stays `pending` with its reason and is retried with
    backoff on later ticks. Targets are independent: one target's failure never stops
    another's. A round the oracle can never take because it already holds a newer one
    (`PublishSupersededError`) is marked `superseded`, naming the newer sequence.
    """
    if not deps.publishers:
        return []
    now = deps.clock() if now is None else now
    by_chain = {p.chain_id: p for p in deps.publishers}
    queue = deps.store.publication_queue(list(by_chain))
    blocked: dict[str, int] = {}  # chain -> the older sequence it waits behind
    outcomes: list[PublishOutcome] = []
    rounds: dict[int, list[QueuedPublication]] = {}
    for item in queue:
        rounds.setdefault(item.sequence, []).append(item)
    for sequence in sorted(rounds):
        ready: list[tuple[Publisher, int]] = []
        for item in rounds[sequence]:
            behind = blocked.get(item.chain_id)
            row = item.row
            if behind is not None:
                detail = f"pending: waiting behind sequence {behind}"
            elif row is not None and row.retry_at is not None and row.retry_at > now:
                blocked[item.chain_id] = sequence
                detail = (
                    f"pending: retry {row.attempts + 1} after {format_time(row.retry_at)} "
                    f"(last error: {row.error})"
                )
            else:
                ready.append((by_chain[item.chain_id], 0 if row is None else row.attempts))
                continue
            outcomes.append(
                PublishOutcome(
                    chain_id=item.chain_id,
                    sequence=sequence,
                    ok=False,
                    detail=detail,
                    status="pending",
                )
            )
        if not ready:
            continue
        try:
            attestation = deps.store.get(sequence).attestation
        except PorError as e:  # the database is away: every target waits for the next tick
            log.warning("publication queue: cannot read attestation %d: %s", sequence, e)
            return outcomes
        for o in _publish_round(deps, ready, attestation, now):
            outcomes.append(o)
            if o.status == "pending":
                blocked[o.chain_id] = sequence
    return outcomes


def publish_all(deps: RunDeps, attestation: Attestation) -> list[PublishOutcome]:
    """Publish one attestation to every target now (no queue, no backoff)."""
    ready = [(p, 0) for p in deps.publishers]
    return _publish_round(deps, ready, attestation, deps.clock())


def _publish_round(
    deps: RunDeps,
    ready: Sequence[tuple[Publisher, int]],
    attestation: Attestation,
    now: datetime,
) -> list[PublishOutcome]:
    """Publish one round to `ready` (publisher, failed attempts so far); one failing
    target never blocks the others or the record.

    A publisher that defers (`PublishDeferredError`: its chain's budget grows and must
    wait until the chains whose budgets shrink hold the new round, docs/budgets.md) gets
    a second turn after all the others; deferring again leaves the round pending.
    """
    doc = attestation.to_dict()
    digest = attestation.digest()
    outcomes: dict[int, PublishOutcome] = {}
    deferred: list[int] = []
    for i, (p, attempts) in enumerate(ready):
        try:
            outcomes[i] = _publish_one(
                deps, p, doc, digest, attestation.sequence, attempts, now, may_defer=True
            )
        except PublishDeferredError as e:
            log.info("publishing %d to %s deferred: %s", attestation.sequence, p.chain_id, e)
            deferred.append(i)
    for i in deferred:
        p, attempts = ready[i]
        outcomes[i] = _publish_one(
            deps, p, doc, digest, attestation.sequence, attempts, now, may_defer=False
        )
    return [outcomes[i] for i in sorted(outcomes)]


def _record_publication(deps: RunDeps, p: Publisher, sequence: int, **state: Any) -> None:
    """Keep a publication's state; a database that is away loses nothing: a round with
    no settled row stays in the queue, and the publisher is idempotent per sequence."""
    try:
        deps.store.record_publication(p.chain_id, sequence, contract=p.contract_label, **state)
    except PorError as e:
        log.warning(
            "recording the publication of %d to %s failed (it stays queued): %s",
            sequence,
            p.chain_id,
            e,
        )


def _publish_one(  # noqa: PLR0917 - one round to one target, with its retry state
    deps: RunDeps,
    p: Publisher,
    doc: dict[str, Any],
    digest: str,
    sequence: int,
    attempts: int,
    now: datetime,
    *,
    may_defer: bool,
) -> PublishOutcome:
    started = time.monotonic()
    try:
        r = p.publish(doc, digest)
    except PublishSupersededError as e:
        log.warning(
            "attestation %d is superseded on %s by sequence %d: %s",
            sequence,
            p.chain_id,
            e.newer,
            e,
            extra={"por": {"event": "superseded", "sequence": sequence, "newer": e.newer}},
        )
        _record_publication(
            deps,
            p,
            sequence,
            tx_hash=None,
            block_number=None,
            status="superseded",
            error=str(e),
            superseded_by=e.newer,
        )
        return PublishOutcome(
            chain_id=p.chain_id,
            sequence=sequence,
            ok=False,
            detail=f"superseded by sequence {e.newer}",
            status="superseded",
        )
    except PorError as e:
        if may_defer and isinstance(e, PublishDeferredError):
            raise
        return _failed(deps, p, sequence, e, time.monotonic() - started, attempts, now)
    except Exception as e:  # an adapter bug on one target must not stop the others
        log.exception("publisher for %s crashed", p.chain_id)
        err = PublishError(f"unexpected {type(e).__name__}: {e}", where=p.chain_id)
        return _failed(deps, p, sequence, err, time.monotonic() - started, attempts, now)
    log.info(
        "published %d to %s: %s tx=%s block=%s in %.1f s",
        sequence,
        p.chain_id,
        r.status,
        r.tx_hash,
        r.block_number,
        time.monotonic() - started,
    )
    _record_publication(
        deps, p, sequence, tx_hash=r.tx_hash, block_number=r.block_number, status=r.status
    )
    return PublishOutcome(
        chain_id=p.chain_id,
        sequence=sequence,
        ok=True,
        detail=r.status,
        tx=r.tx_hash,
        block_number=r.block_number,
        status=r.status,
    )


def _failed(  # noqa: PLR0917 - the failure and what the retry needs
    deps: RunDeps,
    p: Publisher,
    sequence: int,
    e: PorError,
    elapsed_s: float,
    attempts: int,
    now: datetime,
) -> PublishOutcome:
    delay = retry_delay_s(
        attempts + 1, base_s=deps.publish_retry_base_s, max_s=deps.publish_retry_max_s
    )
    retry_at = now + timedelta(seconds=delay)
    log.warning(
        "publishing %d to %s failed after %.1f s (attempt %d, retry after %s): %s",
        sequence,
        p.chain_id,
        elapsed_s,
        attempts + 1,
        format_time(retry_at),
        e.diagnostics(),
    )
    _record_publication(
        deps,
        p,
        sequence,
        tx_hash=None,
        block_number=None,
        status="pending",
        error=str(e),
        retry_at=retry_at,
    )
    return PublishOutcome(
        chain_id=p.chain_id, sequence=sequence, ok=False, detail=str(e), status="pending"
    )


def catch_up_publications(deps: RunDeps) -> list[PublishOutcome]:
    """After a restart (and on every tick): work through the publication queue.

    Publishers are idempotent per sequence (they read the contract / memo history
    first), so calling this when everything is published costs reads, not rounds.
    """
    return publish_pending(deps)
