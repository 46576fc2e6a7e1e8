"""attest_once against in-memory fakes only: chains, reserves, store, publishers.

No database, no files, no configuration: `RunDeps` is built by hand, the way a reader
of por.service.run sees it — chain readers → reserve lines (ReserveEntry) → sum tree →
assess → sign → `AttestationStore.record` → publishers (`PublishReceipt`) →
`record_publication`. tests/service/test_run.py runs the same pipeline end to end
through the configuration, the real store and SQLite.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from por.core.attestation import ReserveEntry, StatementRef, Token
from por.core.dsse import Ed25519Signer, Envelope, KeyEntry, KeySet
from por.core.mst import verify_inclusion
from por.core.tlog import verify_checkpoint
from por.core.verify import verify_attestation_envelope
from por.demo.fake_chain import FakeChainReader, fake_holders
from por.errors import ChainError, FormatError, PublishError
from por.oracle.base import PublishReceipt, PublishStatus
from por.service.run import (
    ReserveResult,
    RunDeps,
    attest_once,
    catch_up_publications,
    publish_pending,
)
from por.store.memory import MemoryStore

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ORIGIN = "por.test/memory"
ISSUER = Ed25519Signer(hashlib.sha256(b"attest_once issuer").digest())
LOG_KEY = Ed25519Signer(hashlib.sha256(b"attest_once log").digest())
TOKEN = Token(symbol="CNHC", decimals=6, currency="CNH")
CHAINS = ("eip155:1", "eip155:56")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def cash_line(amount: int, *, account: str = "HK******4471") -> ReserveEntry:
    return ReserveEntry(
        custodian="Harbour Trust Bank (Hong Kong) Limited",
        account=account,
        asset_class="cash",
        instrument=None,
        currency="CNH",
        amount=amount,
        market_value=amount,
        haircut_bps=0,
        eligible_value=amount,
        ineligible_reason=None,
        statement=StatementRef(format="camt.053.001.08", id="S-1", as_of=T0, sha256="ab" * 32),
    )


@dataclass
class StaticReserves:
    """A ReserveEvaluator that hands back fixed lines (counting its calls)."""

    lines: tuple[ReserveEntry, ...]
    reasons: tuple[str, ...] = ()
    calls: list[datetime] = field(default_factory=list)

    def evaluate(self, *, as_of: datetime) -> ReserveResult:
        self.calls.append(as_of)
        return ReserveResult(
            lines=self.lines,
            eligible_total=sum(line.eligible_value for line in self.lines),
            degraded_reasons=self.reasons,
        )


@dataclass
class MemoryPublisher:
    """A Publisher that keeps what it published; the same sequence twice is a no-op."""

    chain_id: str
    contract_label: str = "0x" + "0c" * 20
    published: dict[int, str] = field(default_factory=dict)

    def publish(self, doc: Mapping[str, Any], digest_hex: str) -> PublishReceipt:
        sequence = int(doc["sequence"])
        status: PublishStatus = "already_published" if sequence in self.published else "published"
        self.published[sequence] = digest_hex
        return PublishReceipt(
            chain_id=self.chain_id,
            sequence=sequence,
            tx_hash="0x" + digest_hex,
            block_number=100 + sequence,
            status=status,
        )


@dataclass
class DownPublisher:
    chain_id: str = "solana:down"
    contract_label: str = "spl-memo"

    def publish(self, doc: Mapping[str, Any], digest_hex: str) -> PublishReceipt:
        raise PublishError("RPC unreachable", where=self.chain_id)


@dataclass
class Run:
    deps: RunDeps
    store: MemoryStore
    readers: list[FakeChainReader]
    holders: dict[str, dict[str, int]]
    clock: Clock


@pytest.fixture
def run() -> Run:
    clock = Clock()
    holders = {c: fake_holders(c, 25) for c in CHAINS}
    readers = [
        FakeChainReader(chain_id=c, token_address=f"{c}:0x{'ab' * 20}", holders=h, clock=clock)
        for c, h in holders.items()
    ]
    supply = sum(sum(h.values()) for h in holders.values())
    store = MemoryStore(clock=clock)
    seeds = iter(hashlib.sha256(b"round %d" % i).digest() for i in range(1, 100))
    deps = RunDeps(
        token=TOKEN,
        chains=readers,
        reserves=StaticReserves(lines=(cash_line(supply * 3 // 5), cash_line(supply // 2))),
        store=store,
        signers=[ISSUER],
        checkpoint_signer=LOG_KEY,
        origin=ORIGIN,
        clock=clock,
        random_bytes=lambda n: next(seeds)[:n],
    )
    return Run(deps=deps, store=store, readers=readers, holders=holders, clock=clock)


def test_two_runs_form_a_chain_in_the_log(run: Run) -> None:
    r1 = attest_once(run.deps)
    r2 = attest_once(run.deps)
    assert (r1.sequence, r2.sequence) == (1, 2)
    assert r1.status == r2.status == "FULLY_BACKED", r1.reasons
    stored = run.store.get(2)
    assert stored.digest == r2.digest
    att = stored.attestation
    assert att.previous is not None and (att.previous.sequence, att.previous.digest) == (
        1,
        r1.digest,
    )
    # the signed envelope verifies with the issuer's published key
    keys = KeySet(keys=(KeyEntry.for_public_key(ISSUER.public_key_raw, role="issuer"),))
    verified = verify_attestation_envelope(
        Envelope.from_json_bytes(stored.envelope_json), keys, now=run.clock.now
    )
    assert verified == att
    # the log holds both, under a checkpoint signed by the log key
    cp = run.store.checkpoint()
    assert cp is not None and cp.size == 2
    verify_checkpoint(cp.note, key_name=ORIGIN, public_key_raw=LOG_KEY.public_key_raw)
    # liabilities: every holder of both chains, provable from the recorded tree
    total = sum(sum(h.values()) for h in run.holders.values())
    assert att.liabilities.total == total == att.totals.circulating_supply
    account, balance = next(iter(run.holders["eip155:56"].items()))
    proof = run.store.tree(2).prove(account)
    verify_inclusion(proof)
    assert proof.balance == balance and proof.root.hash.hex() == att.liabilities.root


def test_reserve_lines_reach_the_document_as_handed_over(run: Run) -> None:
    assert isinstance(run.deps.reserves, StaticReserves)
    r = attest_once(run.deps)
    att = run.store.get(r.sequence).attestation
    assert att.reserves == run.deps.reserves.lines
    assert att.totals.eligible_reserves == sum(x.eligible_value for x in att.reserves)
    assert run.deps.reserves.calls == [att.as_of]


def test_a_line_beyond_the_document_limits_is_refused_before_signing(run: Run) -> None:
    run.deps.reserves = StaticReserves(lines=(cash_line(10**12, account="X" * 65),))
    with pytest.raises(FormatError, match="account"):
        attest_once(run.deps)
    assert run.store.latest() is None


def test_supply_mismatch_degrades(run: Run) -> None:
    reader = run.readers[0]
    reader.total_supply = sum(reader.holders.values()) + 7
    r = attest_once(run.deps)
    assert r.status == "DEGRADED" and any("difference 7" in x for x in r.reasons)
    att = run.store.get(1).attestation
    assert att.totals.circulating_supply == att.liabilities.total + 7


def test_a_failing_chain_records_nothing(run: Run) -> None:
    run.readers[1].fail_with = "connection refused"
    with pytest.raises(ChainError, match=r"eip155:56.*connection refused"):
        attest_once(run.deps)
    assert run.store.latest() is None and run.store.checkpoint() is None


def test_each_receipt_becomes_publication_state(run: Run) -> None:
    evm = MemoryPublisher(chain_id="eip155:56")
    run.deps.publishers = [evm, DownPublisher()]
    r = attest_once(run.deps)
    ok, down = r.publications
    assert (ok.chain_id, ok.ok, ok.detail, ok.tx, ok.block_number) == (
        "eip155:56",
        True,
        "published",
        "0x" + r.digest,
        101,
    )
    assert (down.chain_id, down.ok) == ("solana:down", False) and "unreachable" in down.detail
    assert evm.published == {1: r.digest}
    pubs = {p.chain_id: p for p in run.store.publications()}
    assert (pubs["eip155:56"].contract, pubs["eip155:56"].tx_hash) == (
        evm.contract_label,
        "0x" + r.digest,
    )
    down_row = pubs["solana:down"]
    assert (down_row.status, down_row.tx_hash, down_row.attempts) == ("pending", None, 1)
    assert down_row.error == "solana:down: RPC unreachable" and down_row.retry_at is not None
    # after a restart the queue is worked through: the published target is settled and
    # not asked again; the failed one waits for its retry time (backoff), then is retried
    again = catch_up_publications(run.deps)
    assert [(o.chain_id, o.ok, o.status) for o in again] == [("solana:down", False, "pending")]
    assert "retry 2 after" in again[0].detail and evm.published == {1: r.digest}
    later = publish_pending(run.deps, now=down_row.retry_at + timedelta(seconds=1))
    assert [(o.chain_id, o.ok, o.detail) for o in later] == [
        ("solana:down", False, "solana:down: RPC unreachable")
    ]
    assert run.store.publication("solana:down", 1).attempts == 2  # type: ignore[union-attr]
