"""Cross-chain mint budgets on two anvil chains, through the real attestation run.

One issue, minted on chain 1 and chain 56 against one reserve pool. Each chain has its
ReserveOracle and consumers written the way real Proof-of-Reserve consumers are:

    chain 1:  StableToken guarded by SecureMintGuard (por's Secure Mint)
    chain 56: ExamplePorToken — TrueUSD / Chainlink-example style: the token itself checks
              `totalSupply + amount <= answer`, heartbeat, answer > 0
    both:     ExampleReserveAggregator + Executor — Aave style: backed iff answer >= totalSupply,
              freezes the asset otherwise
              PorConsumer — Chainlink-example `canMint`
              a SecureMintGuard as a view (on chain 56 it guards nothing, it only answers)

Attestations are made by `attest_once` with the real EVM readers (finalized blocks, the
Transfer index) and the real publishers (EIP-712, one transaction per chain), a fixed
reserve line standing in for the custodian. Whatever the consumers allow on each chain,
the total supply over both chains never exceeds the attested eligible reserves.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from por.chains.evm import EvmChainReader, MemoryCheckpointStore
from por.core.attestation import Attestation, ReserveEntry, StatementRef, Token
from por.core.budgets import verify_budgets
from por.core.dsse import Ed25519Signer, Envelope, KeyEntry, KeySet
from por.core.verify import PASS, Deferred, verify_report
from por.demo.anvil import (
    contract,
    deploy_consumer,
    deploy_contract,
    deploy_guard,
    deploy_oracle,
    deploy_stablecoin,
    impersonate,
    set_mint_guard,
)
from por.oracle.base import PublishDeferredError, PublishReceipt
from por.oracle.evm_publisher import BudgetGate, EvmPublisher
from por.oracle.intents import MemoryIntentStore
from por.service.run import ReserveResult, RunDeps, RunResult, attest_once
from por.store.memory import MemoryStore
from tests.evm.conftest import ATTESTOR_KEYS, World
from tests.evm.helpers import revert_name

pytestmark = [pytest.mark.anvil, pytest.mark.xdist_group("evm")]

U = 10**6  # one CNHC in base units
HEARTBEAT_S = 24 * 3600
ISSUER_KEY = Ed25519Signer(hashlib.sha256(b"budget test issuer").digest())


class Clock:
    """Attestation times: from 15 min ago, 2 s per call — increasing, never ahead of anvil."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=15)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=2)
        return self.now


@dataclass
class Reserves:
    """The custodian, as the test sets it: eligible reserves and degraded reasons."""

    eligible: int = 0
    reasons: tuple[str, ...] = ()

    def evaluate(self, *, as_of: datetime) -> ReserveResult:
        line = ReserveEntry(
            custodian="Harbour Trust Bank (Hong Kong) Limited",
            account="HK******4471",
            asset_class="cash",
            instrument=None,
            currency="CNH",
            amount=self.eligible,
            market_value=self.eligible,
            haircut_bps=0,
            eligible_value=self.eligible,
            ineligible_reason=None,
            statement=StatementRef(
                format="camt.053.001.08",
                id=f"S-{as_of:%H%M%S}",
                as_of=as_of - timedelta(hours=1),  # the bank's data is older than the run
                sha256=hashlib.sha256(as_of.isoformat().encode()).hexdigest(),
            ),
        )
        return ReserveResult(
            lines=(line,), eligible_total=self.eligible, degraded_reasons=self.reasons
        )


@dataclass
class Side:
    """One chain of the issue."""

    world: World
    kind: str  # "guarded" (StableToken + SecureMintGuard) or "tusd" (ExamplePorToken)
    oracle: str
    token: str
    guard: str
    aggregator: str
    executor: str
    consumer: str
    treasury: str
    holders: list[str]
    start_block: int

    @property
    def w3(self) -> Web3:
        return self.world.node.w3

    @property
    def caip2(self) -> str:
        return f"eip155:{self.world.chain_id}"

    def supply(self) -> int:
        return int(self._token().functions.totalSupply().call())

    def answer(self) -> int:
        return int(contract(self.w3, "ReserveOracle", self.oracle).functions.latestAnswer().call())

    def _token(self) -> Any:
        name = "StableToken" if self.kind == "guarded" else "ExamplePorToken"
        return contract(self.w3, name, self.token)

    def mint_data(self, amount: int, to: str | None = None) -> str:
        return str(self._token().encode_abi("mint", args=[to or self.holders[0], amount]))

    def refusal(self, amount: int) -> str | None:
        """Why a mint of `amount` would revert now (None: it would pass)."""
        return revert_name(self.w3, self.token, self.mint_data(amount), self.world.issuer)

    def mint(self, amount: int, to: str | None = None) -> None:
        h = self.w3.eth.send_transaction(
            {
                "from": self.world.issuer,
                "to": self.token,
                "data": self.mint_data(amount, to),
                "gas": 300_000,
            }
        )
        assert self.w3.eth.wait_for_transaction_receipt(h, poll_latency=0.01)["status"] == 1

    def burst(self, amounts: Sequence[int]) -> list[bool]:
        """Send every mint at once (consecutive nonces, no waiting); which ones landed."""
        issuer = self.world.issuer
        nonce = self.w3.eth.get_transaction_count(issuer, "pending")
        hashes = [
            self.w3.eth.send_transaction(
                {
                    "from": issuer,
                    "to": self.token,
                    "data": self.mint_data(a, self.holders[i % len(self.holders)]),
                    "gas": 300_000,
                    "nonce": nonce + i,
                }
            )
            for i, a in enumerate(amounts)
        ]
        return [
            self.w3.eth.wait_for_transaction_receipt(h, poll_latency=0.01)["status"] == 1
            for h in hashes
        ]

    def greedy_mint(self) -> int:
        """Mint everything this chain's consumer allows now; return how much."""
        room = self.answer() - self.supply()
        if room > 0 and self.refusal(room) is None:
            self.mint(room)
            assert self.refusal(1) is not None  # the budget is used up
            return room
        return 0

    def backed_aave_style(self) -> bool:
        agg = contract(self.w3, "ExampleReserveAggregator", self.aggregator)
        backed, flags = agg.functions.areAllReservesBacked([self.token]).call()
        assert flags == [not backed]
        return bool(backed)

    def guard_refusal(self, amount: int) -> str | None:
        guard = contract(self.w3, "SecureMintGuard", self.guard)
        return revert_name(self.w3, self.guard, guard.encode_abi("checkMint", args=[amount]))

    def can_mint_chainlink_style(self, amount: int) -> bool | str:
        c = contract(self.w3, "PorConsumer", self.consumer)
        why = revert_name(self.w3, self.consumer, c.encode_abi("canMint", args=[amount]))
        return why if why is not None else bool(c.functions.canMint(amount).call())


@dataclass
class Watched:
    """A publisher that records what happened, and after each round it lands lets the
    minters of EVERY chain take all their consumers allow — the worst moment for a round
    to land chain by chain — then records the supply over both chains."""

    inner: EvmPublisher
    issue: Issue

    @property
    def chain_id(self) -> str:
        return self.inner.chain_id

    @property
    def contract_label(self) -> str:
        return self.inner.contract_label

    def publish(self, doc: Mapping[str, Any], digest_hex: str) -> PublishReceipt:
        try:
            receipt = self.inner.publish(doc, digest_hex)
        except PublishDeferredError:
            self.issue.events.append(("deferred", self.chain_id, 0))
            raise
        if self.issue.greedy:
            for side in self.issue.sides.values():
                side.greedy_mint()
        self.issue.events.append(("published", self.chain_id, self.issue.total_supply()))
        return receipt


@dataclass
class Issue:
    sides: dict[int, Side]
    reserves: Reserves
    store: MemoryStore
    deps: RunDeps
    clock: Clock
    events: list[tuple[str, str, int]] = field(default_factory=list)  # in order
    greedy: bool = False  # mint all that is allowed after each round lands

    def attest(
        self, eligible: int, reasons: tuple[str, ...] = (), *, greedy: bool = False
    ) -> tuple[RunResult, Attestation]:
        for s in self.sides.values():
            s.world.node.finalize()  # readers read the finalized block
        self.reserves.eligible = eligible
        self.reserves.reasons = reasons
        self.events.clear()
        self.greedy = greedy
        try:
            result = attest_once(self.deps)
        finally:
            self.greedy = False
        assert all(p.ok for p in result.publications), result.publications
        att = self.store.get(result.sequence).attestation
        for s in self.sides.values():
            budget = next(c.budget for c in att.chains if c.chain_id == s.caip2)
            assert s.answer() == budget
        return result, att

    def total_supply(self) -> int:
        return sum(s.supply() for s in self.sides.values())


def _side(w: World, kind: str, rng: random.Random) -> Side:
    w3, issuer = w.node.w3, w.issuer
    start_block = w3.eth.block_number
    oracle = deploy_oracle(
        w3,
        owner=issuer,
        attestors=[Account.from_key(k).address for k in ATTESTOR_KEYS],
        threshold=2,
    )
    if kind == "guarded":
        token = deploy_stablecoin(w3, issuer=issuer)
        guard = deploy_guard(w3, oracle=oracle, token=token, heartbeat_s=HEARTBEAT_S, owner=issuer)
        set_mint_guard(w3, token, guard, issuer=issuer)
    else:
        token = deploy_contract(
            w3, "ExamplePorToken", "CNH Coin", "CNHC", 6, oracle, HEARTBEAT_S, sender=issuer
        )
        guard = deploy_guard(w3, oracle=oracle, token=token, heartbeat_s=HEARTBEAT_S, owner=issuer)
    aggregator = deploy_contract(w3, "ExampleReserveAggregator", sender=issuer)
    agg = contract(w3, "ExampleReserveAggregator", aggregator)
    h = agg.functions.enableProofOfReserveFeed(token, oracle).transact({"from": issuer})
    w3.eth.wait_for_transaction_receipt(h, poll_latency=0.01)
    executor = deploy_contract(w3, "ExampleReserveExecutor", aggregator, [token], sender=issuer)
    consumer = deploy_consumer(w3, feed=oracle, token=token, heartbeat_s=HEARTBEAT_S, sender=issuer)
    return Side(
        world=w,
        kind=kind,
        oracle=oracle,
        token=token,
        guard=guard,
        aggregator=aggregator,
        executor=executor,
        consumer=consumer,
        treasury=Web3.to_checksum_address("0x" + rng.randbytes(20).hex()),
        holders=[Web3.to_checksum_address("0x" + rng.randbytes(20).hex()) for _ in range(8)],
        start_block=start_block,
    )


@pytest.fixture(scope="module")
def issue(worlds: dict[int, World]) -> Issue:
    """Shared by the tests that set up the state they need themselves."""
    return _make_issue(worlds, seed=13)


@pytest.fixture
def new_issue(worlds: dict[int, World]) -> Issue:
    """A new issue: fresh contracts on both chains, nothing minted yet."""
    return _make_issue(worlds, seed=14)


def _make_issue(worlds: dict[int, World], *, seed: int) -> Issue:
    rng = random.Random(seed)
    sides = {1: _side(worlds[1], "guarded", rng), 56: _side(worlds[56], "tusd", rng)}
    clock = Clock()
    store = MemoryStore(clock=clock)
    reserves = Reserves()
    readers = []
    gate = BudgetGate()
    pubs: list[EvmPublisher] = []
    for s in sides.values():
        node = s.world.node
        readers.append(
            EvmChainReader(
                chain_id=node.chain_id,
                rpc_urls=[node.url],
                token_address=s.token,
                excluded={s.treasury: "treasury"},
                checkpoint_store=MemoryCheckpointStore(),
                start_block=s.start_block,
                expected_decimals=6,
            )
        )
        pub = EvmPublisher(
            chain_id=node.chain_id,
            rpc_urls=[node.url],
            contract=s.oracle,
            sender_key=node.private_keys[7],
            attestor_keys=ATTESTOR_KEYS[:2],
            intent_store=MemoryIntentStore(),
            poll_interval_s=0.02,
        )
        gate.join(pub)
        pubs.append(pub)
    seeds = iter(hashlib.sha256(b"budget round %d" % i).digest() for i in range(1, 1000))
    deps = RunDeps(
        token=Token(symbol="CNHC", decimals=6, currency="CNH"),
        chains=readers,
        reserves=reserves,
        store=store,
        signers=[ISSUER_KEY],
        checkpoint_signer=ISSUER_KEY,
        origin="por.test/budgets",
        clock=clock,
        random_bytes=lambda n: next(seeds)[:n],
        publishers=pubs,
    )
    made = Issue(sides=sides, reserves=reserves, store=store, deps=deps, clock=clock)
    # Chain 1's publisher goes first: when chain 1's budget grows it must wait for 56.
    deps.publishers = [Watched(inner=p, issue=made) for p in pubs]
    return made


def _race(issue: Issue, chunks: Mapping[int, Sequence[int]]) -> dict[int, int]:
    """Both chains mint their bursts at the same time; returns what landed per chain."""
    landed: dict[int, int] = {}
    errors: list[BaseException] = []

    def run(cid: int) -> None:
        try:
            oks = issue.sides[cid].burst(chunks[cid])
            landed[cid] = sum(a for a, ok in zip(chunks[cid], oks, strict=True) if ok)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(cid,)) for cid in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return landed


def test_concurrent_mint_race_never_exceeds_reserves(new_issue: Issue) -> None:
    # A new issue: 1,000,000 CNHC at the custodian, nothing minted yet on either chain.
    # Without budgets both chains would read "1,000,000" and could mint it twice.
    issue = new_issue
    assert issue.total_supply() == 0
    eligible = 1_000_000 * U
    _, att1 = issue.attest(eligible)
    b1 = {c.chain_id: c.budget or 0 for c in att1.chains}
    assert sum(b1.values()) <= eligible
    # Chain 1 mints 20,000 into its treasury (excluded from circulating, but part of
    # totalSupply, which is what the consumers compare). Race 1: both chains mint
    # 90,000-unit chunks as fast as they can, 12 each, at the same time.
    s1, s56 = issue.sides[1], issue.sides[56]
    assert s1.refusal(20_000 * U) is None, s1.refusal(20_000 * U)
    s1.mint(20_000 * U, to=s1.treasury)
    landed = _race(issue, {1: [90_000 * U] * 12, 56: [90_000 * U] * 12})
    assert landed[1] + 20_000 * U == s1.supply() and landed[56] == s56.supply()
    assert (s1.supply(), s56.supply()) == (470_000 * U, 450_000 * U)  # 500,000 budgets each
    for s in issue.sides.values():
        assert s.supply() <= b1[s.caip2]
        assert s.refusal(90_000 * U) is not None  # the race reached the budget
        assert s.backed_aave_style()  # every chain still reads backed
    assert issue.total_supply() <= eligible
    # Redemptions on chain 56 bring its supply down (burn), so attestation 2 moves
    # headroom from chain 56 to chain 1: chain 1's budget grows, 56's shrinks.
    token56 = contract(s56.w3, "ExamplePorToken", s56.token)
    to_burn = s56.supply() - 100_000 * U
    for holder in s56.holders:
        take = min(token56.functions.balanceOf(holder).call(), to_burn)
        if take:
            impersonate(s56.world.node, holder)
            h = token56.functions.burn(take).transact({"from": holder})
            s56.w3.eth.wait_for_transaction_receipt(h, poll_latency=0.01)
            to_burn -= take
    assert s56.supply() == 100_000 * U
    # Attestation 2, same reserves. Its rounds land chain by chain; after EACH landing
    # the minters of both chains take everything their consumers allow. Had chain 1's
    # larger budget landed while chain 56 still answered its old one, they could
    # together mint past the reserves; the gate makes chain 1 wait for chain 56.
    _, att2 = issue.attest(eligible, greedy=True)
    b2 = {c.chain_id: c.budget or 0 for c in att2.chains}
    assert b2["eip155:1"] > b1["eip155:1"] and b2["eip155:56"] < b1["eip155:56"]
    assert all(total <= eligible for _, _, total in issue.events), issue.events
    assert [(kind, chain) for kind, chain, _ in issue.events] == [
        ("deferred", "eip155:1"),
        ("published", "eip155:56"),
        ("published", "eip155:1"),
    ]
    # Race 2 against attestation 2's budgets: the minters took everything already.
    landed = _race(issue, {1: [10_000 * U] * 3, 56: [10_000 * U] * 3})
    assert landed == {1: 0, 56: 0}
    assert issue.total_supply() <= eligible
    for s in issue.sides.values():
        assert s.supply() <= b2[s.caip2]


def _ensure_supply(issue: Issue) -> None:
    """Both chains circulate something (whatever ran before on the shared issue)."""
    if all(s.supply() - _treasury(s) > 0 for s in issue.sides.values()):
        return
    issue.attest(issue.total_supply() + 1_000_000 * U)
    for s in issue.sides.values():
        s.mint(100_000 * U)


def test_under_collateralized_and_degraded_rounds_stop_minting_everywhere(issue: Issue) -> None:
    _ensure_supply(issue)
    supply = issue.total_supply()
    circulating = sum(s.supply() - _treasury(s) for s in issue.sides.values())
    # UNDER_COLLATERALIZED: the custodian reports less than the circulating supply.
    result, att = issue.attest(circulating * 9 // 10)
    assert result.status == "UNDER_COLLATERALIZED", (circulating, att.totals, att.chains)
    for s in issue.sides.values():
        assert s.answer() < s.supply()  # every chain's budget is below its supply
        assert s.refusal(1) is not None  # neither token can mint one base unit
        assert s.guard_refusal(1) == "NotFullyBacked"
        assert s.can_mint_chainlink_style(1) is False
        assert not s.backed_aave_style()  # Aave-style reads "not backed" on every chain
        ex = contract(s.w3, "ExampleReserveExecutor", s.executor)
        h = ex.functions.executeEmergencyAction().transact({"from": s.world.issuer})
        s.w3.eth.wait_for_transaction_receipt(h, poll_latency=0.01)
        assert ex.functions.frozen(s.token).call() is True
    assert issue.sides[56].refusal(1) == "Error:PoR: total supply would exceed reserves after mint"
    assert issue.total_supply() == supply
    # DEGRADED (a stale statement) with reserves that would cover everything twice:
    # zero headroom — each budget is the chain's circulating supply, nothing mints.
    result, att = issue.attest(2 * supply + 10**6 * U, ("stale: statement S-1 is 3 days old",))
    assert result.status == "DEGRADED"
    for s in issue.sides.values():
        line = next(c for c in att.chains if c.chain_id == s.caip2)
        assert line.budget == line.circulating_supply
        assert s.refusal(1) is not None
        assert s.guard_refusal(1) == "NotFullyBacked"
        assert s.can_mint_chainlink_style(1) is False
    assert issue.total_supply() == supply


def test_stale_round_stops_minting(issue: Issue) -> None:
    result, _ = issue.attest(issue.total_supply() + 500_000 * U)
    assert result.status == "FULLY_BACKED"
    for s in issue.sides.values():
        assert s.guard_refusal(1) is None and s.refusal(1) is None  # fresh: mints pass
    # Past the heartbeat (24 h after the bank statement's as-of) every consumer stops.
    snaps = {cid: s.world.node.rpc("evm_snapshot") for cid, s in issue.sides.items()}
    try:
        for s in issue.sides.values():
            s.world.node.rpc("evm_increaseTime", [HEARTBEAT_S + 3600])
            s.world.node.mine(1)
        assert issue.sides[1].refusal(1) == "StaleRound"
        assert issue.sides[56].refusal(1) == "Error:PoR: answer too old"
        for s in issue.sides.values():
            assert s.guard_refusal(1) == "StaleRound"
            assert s.can_mint_chainlink_style(1) == "StaleAnswer"
    finally:
        for cid, s in issue.sides.items():
            assert s.world.node.rpc("evm_revert", [snaps[cid]]) is True


def test_por_verify_recomputes_every_published_budget(issue: Issue) -> None:
    if issue.store.latest() is None:
        issue.attest(issue.total_supply() + 10 * U)
    keys = KeySet(keys=(KeyEntry.for_public_key(ISSUER_KEY.public_key_raw, role="issuer"),))
    latest = issue.store.latest()
    assert latest is not None
    for seq in range(1, latest.sequence + 1):
        stored = issue.store.get(seq)
        verify_budgets(stored.attestation)
        env = Envelope.from_json_bytes(stored.envelope_json)
        report = verify_report(
            Deferred(name=f"#{seq}", load=lambda env=env: env),
            keys,
            now=issue.clock.now + timedelta(minutes=1),
        )
        budgets = next(c for c in report.checks if c.name == "budgets")
        assert budgets.status == PASS, budgets.detail


def _treasury(s: Side) -> int:
    name = "StableToken" if s.kind == "guarded" else "ExamplePorToken"
    return int(contract(s.w3, name, s.token).functions.balanceOf(s.treasury).call())
