"""EvmChainReader on anvil: 1,000+ holders, incremental index, range splitting, reorgs,
quorum against lying/down/wrong-chain endpoints, and bad answers."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from por.chains.base import ChainReader
from por.chains.evm import (
    BlobCheckpointStore,
    EvmChainReader,
    FileCheckpointStore,
    IndexCheckpoint,
    MemoryCheckpointStore,
)
from por.chains.evm_rpc import (
    EvmAbiMismatchError,
    EvmChainError,
    EvmEndpointDownError,
    EvmMalformedAnswerError,
    EvmNoQuorumError,
    EvmRevertError,
    EvmWrongChainError,
)
from por.demo.anvil import (
    contract,
    deploy_stablecoin,
    free_port,
    impersonate,
    mint_batch,
    transfer_batch,
)
from por.errors import ChainError, FormatError
from tests.evm.conftest import World
from tests.evm.helpers import RpcProxy

pytestmark = [pytest.mark.anvil, pytest.mark.xdist_group("evm")]


@dataclass
class TokenWorld:
    """A fresh token on one chain plus an independent Python ledger of who holds what."""

    w: World
    token: str
    bridge: str
    deployed_at: int
    ledger: dict[str, int] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def credit(self, addr: str, amount: int) -> None:
        a = addr.lower()
        self.ledger[a] = self.ledger.get(a, 0) + amount

    def debit(self, addr: str, amount: int) -> None:
        a = addr.lower()
        self.ledger[a] -= amount
        assert self.ledger[a] >= 0

    def mint(self, recipients: list[str], amounts: list[int]) -> None:
        mint_batch(
            self.w.node.w3, self.token, issuer=self.w.issuer, recipients=recipients, amounts=amounts
        )
        for r, a in zip(recipients, amounts, strict=True):
            self.credit(r, a)

    def transfer(self, sender: str, recipients: list[str], amounts: list[int]) -> None:
        impersonate(self.w.node, sender)
        transfer_batch(
            self.w.node.w3, self.token, sender=sender, recipients=recipients, amounts=amounts
        )
        for r, a in zip(recipients, amounts, strict=True):
            self.debit(sender, a)
            self.credit(r, a)

    def burn(self, amount: int) -> None:
        w3 = self.w.node.w3
        c = contract(w3, "StableToken", self.token)
        h = c.functions.burn(amount).transact({"from": self.w.issuer})
        assert w3.eth.wait_for_transaction_receipt(h, poll_latency=0.01)["status"] == 1
        self.debit(self.w.issuer, amount)

    def random_addresses(self, n: int) -> list[str]:
        return ["0x" + self.rng.randbytes(20).hex() for _ in range(n)]

    def reader(self, urls: list[str] | None = None, **kw: Any) -> EvmChainReader:
        return EvmChainReader(
            chain_id=self.w.chain_id,
            rpc_urls=urls or [self.w.node.url],
            token_address=self.token,
            excluded={self.w.treasury: "treasury", self.bridge: "bridge_escrow"},
            start_block=self.deployed_at,
            expected_decimals=6,
            **kw,
        )


def _token_world(w: World, holders: int = 1_000) -> TokenWorld:
    w3 = w.node.w3
    token = deploy_stablecoin(w3, issuer=w.issuer)
    tw = TokenWorld(w=w, token=token, bridge="0x" + "b7" * 20, deployed_at=w3.eth.block_number)
    people = tw.random_addresses(holders)
    tw.mint(people, [tw.rng.randrange(1, 10**9) for _ in people])
    tw.mint([w.treasury, tw.bridge, w.issuer], [10**13, 3 * 10**12, 10**9])
    # Holder-to-holder transfers: 20 holders each pay 25 others (some brand new).
    for sender in people[:20]:
        to = tw.rng.sample(people, 20) + tw.random_addresses(5)
        share = tw.ledger[sender.lower()] // 50
        tw.transfer(sender, to, [share] * len(to))
    # Redemptions: holders send to the issuer, who burns.
    for sender in people[20:30]:
        tw.transfer(sender, [w.issuer], [tw.ledger[sender.lower()] // 2])
    tw.burn(tw.ledger[w.issuer.lower()] // 3)
    w.node.finalize()
    return tw


@pytest.fixture(scope="module")
def tworlds(worlds: dict[int, World]) -> dict[int, TokenWorld]:
    return {cid: _token_world(w) for cid, w in worlds.items()}


def _check_against_chain(tw: TokenWorld, snap: Any) -> None:
    w3 = tw.w.node.w3
    c = contract(w3, "StableToken", tw.token)
    pin = "0x" + snap.block.hash
    cid = tw.w.chain_id
    excluded = {tw.w.treasury.lower(), tw.bridge}
    want = {f"eip155:{cid}:{a}": b for a, b in tw.ledger.items() if b > 0 and a not in excluded}
    assert dict(snap.holders) == want  # the independent ledger
    for account, balance in list(snap.holders.items())[:: max(1, len(snap.holders) // 200)]:
        addr = w3.to_checksum_address(account.split(":")[2])
        assert c.functions.balanceOf(addr).call(block_identifier=pin) == balance
    assert snap.total_supply == c.functions.totalSupply().call(block_identifier=pin)
    assert snap.total_supply == sum(tw.ledger.values())
    assert {e.account: (e.balance, e.reason) for e in snap.excluded} == {
        f"eip155:{cid}:{tw.w.treasury.lower()}": (tw.ledger[tw.w.treasury.lower()], "treasury"),
        f"eip155:{cid}:{tw.bridge}": (tw.ledger[tw.bridge], "bridge_escrow"),
    }
    assert snap.circulating_supply == sum(want.values())
    assert snap.mismatch is None


def test_snapshot_equals_chain_state(tworlds: dict[int, TokenWorld]) -> None:
    for cid, tw in tworlds.items():
        reader = tw.reader()
        assert isinstance(reader, ChainReader)
        snap = reader.snapshot()
        finalized = tw.w.node.w3.eth.get_block("finalized")
        assert snap.chain_id == f"eip155:{cid}"
        assert snap.token_address == f"eip155:{cid}:{tw.token.lower()}"
        assert (snap.block.number, snap.block.hash) == (
            finalized["number"],
            finalized["hash"].hex(),
        )
        assert snap.decimals == 6 and len(snap.holders) >= 1_000
        _check_against_chain(tw, snap)
        assert snap.endpoint_notes == ()
        reader.close()


@pytest.mark.parametrize("kept", ["files", "database"])
def test_incremental_index_reads_only_new_blocks(
    tworlds: dict[int, TokenWorld], tmp_path: Any, kept: str
) -> None:
    tw = tworlds[56]
    store: Any = FileCheckpointStore(tmp_path)
    other_machine: Any = store
    opened = []
    if kept == "database":  # [service] state = "database": the restart is on another machine
        from por.store import Store

        url = f"sqlite:///{tmp_path / 'por.db'}"
        for name in ("a", "b"):
            opened.append(
                Store.open(
                    url, data_dir=tmp_path / name, attestations_dir=tmp_path / name, migrate=True
                )
            )
        store, other_machine = (BlobCheckpointStore(s.state) for s in opened)
    proxy = RpcProxy(tw.w.node.url, max_log_range=10**9)
    try:
        first = tw.reader([proxy.url], checkpoint_store=store)
        snap1 = first.snapshot()
        cp = store.load(snap1.chain_id, snap1.token_address)
        assert cp is not None and (cp.block_number, cp.block_hash) == (
            snap1.block.number,
            snap1.block.hash,
        )
        # New activity, then a NEW reader (a restart) with the same store.
        people = [a for a in tw.ledger if a not in (tw.w.treasury.lower(), tw.bridge)][:5]
        tw.transfer(people[0], tw.random_addresses(3) + people[1:3], [1, 2, 3, 4, 5])
        tw.mint(tw.random_addresses(2), [10, 20])
        tw.w.node.finalize()
        proxy.log_requests.clear()
        second = tw.reader([proxy.url], checkpoint_store=other_machine)
        snap2 = second.snapshot()
        run = second.last_run
        assert run is not None and not run.reindexed
        assert run.from_block == snap1.block.number + 1 and run.transfers == 7
        assert proxy.log_requests and min(a for a, _ in proxy.log_requests) > snap1.block.number
        _check_against_chain(tw, snap2)
        first.close()
        second.close()
    finally:
        proxy.close()
        for opened_store in opened:
            opened_store.close()


def test_refused_ranges_are_split(tworlds: dict[int, TokenWorld]) -> None:
    # A provider that refuses eth_getLogs over more than 3 blocks ("query returned more
    # than 10000 results"): the reader halves the range until it is accepted.
    tw = tworlds[1]
    proxy = RpcProxy(tw.w.node.url, max_log_range=3)
    try:
        reader = tw.reader([proxy.url], max_log_range=10_000)
        snap = reader.snapshot()
        assert proxy.refused > 0 and reader.last_run and reader.last_run.range_splits > 0
        assert all(b - a + 1 <= 10_000 for a, b in proxy.log_requests)
        _check_against_chain(tw, snap)
        reader.close()
    finally:
        proxy.close()


def test_reorg_below_checkpoint_reindexes(worlds: dict[int, World]) -> None:
    # The checkpoint remembers block f by hash. The chain is rewound below f and rebuilt
    # differently (evm_revert + new blocks): the reader must notice that block f's hash
    # changed and rebuild the index from the token's deployment, never mix two histories.
    w = worlds[1]
    tw = _token_world(w, holders=30)
    store = MemoryCheckpointStore()
    snapshot_id = w.node.rpc("evm_snapshot")
    gone = tw.random_addresses(3)
    tw.mint(gone, [111, 222, 333])
    w.node.finalize()
    reader = tw.reader(checkpoint_store=store)
    before = reader.snapshot()
    assert all(f"eip155:1:{a}" in before.holders for a in gone)
    assert w.node.rpc("evm_revert", [snapshot_id]) is True
    for a, v in zip(gone, [111, 222, 333], strict=True):
        tw.debit(a, v)
    tw.mint(tw.random_addresses(2), [5, 6])
    w.node.mine(before.block.number - w.node.block_number() + 1)
    w.node.finalize()
    after = reader.snapshot()
    assert reader.last_run and reader.last_run.reindexed
    assert any("reorg below the checkpoint" in n.problem for n in after.endpoint_notes)
    assert not any(f"eip155:1:{a}" in after.holders for a in gone)
    _check_against_chain(tw, after)
    reader.close()


def test_quorum_outvotes_liar_down_and_wrong_chain(
    tworlds: dict[int, TokenWorld], worlds: dict[int, World]
) -> None:
    tw = tworlds[1]
    honest = RpcProxy(tw.w.node.url)
    liar = RpcProxy(tw.w.node.url, mode="lie")
    down = f"http://127.0.0.1:{free_port()}"
    wrong_chain = worlds[56].node.url
    try:
        urls = [tw.w.node.url, honest.url, liar.url, down, wrong_chain]
        reader = tw.reader(urls, quorum=2)
        snap = reader.snapshot()
        _check_against_chain(tw, snap)
        problems = {n.endpoint: n.problem for n in snap.endpoint_notes}
        assert "outvoted" in problems[liar.url]
        assert "serves chain id 56, expected 1" in problems[wrong_chain]
        assert "no answer" in problems[down]
        assert tw.w.node.url not in problems and honest.url not in problems
        reader.close()

        # One honest endpoint against one liar: no quorum of 2, and the error says so.
        reader = tw.reader([tw.w.node.url, liar.url], quorum=2)
        with pytest.raises(EvmNoQuorumError) as ei:
            reader.snapshot()
        assert "eip155:1" in str(ei.value) and liar.url in str(ei.value)
        assert tw.w.node.url in str(ei.value)
        reader.close()
    finally:
        honest.close()
        liar.close()


def test_liar_alone_gives_mismatch_not_a_silent_answer(tworlds: dict[int, TokenWorld]) -> None:
    # A single endpoint lying about totalSupply and balanceOf cannot be outvoted; the sum
    # check still catches it: the snapshot carries a SupplyMismatch (run -> DEGRADED) and
    # the checkpoint is not advanced.
    tw = tworlds[56]
    liar = RpcProxy(tw.w.node.url, mode="lie")
    store = MemoryCheckpointStore()
    try:
        reader = tw.reader([liar.url], checkpoint_store=store)
        snap = reader.snapshot()
        assert snap.mismatch is not None and snap.mismatch.difference != 0
        assert store.load(snap.chain_id, snap.token_address) is None
        reader.close()
    finally:
        liar.close()


def test_dropped_transfer_log_is_caught_by_balance_spot_checks(worlds: dict[int, World]) -> None:
    # An endpoint whose eth_getLogs omits one holder-to-holder transfer: the indexed sum
    # still equals totalSupply, so only asking balanceOf can notice. With every holder
    # sampled the snapshot carries the two wrong balances (run -> DEGRADED) and the
    # checkpoint is not advanced; the default sample always takes the largest holders.
    w = worlds[56]
    tw = _token_world(w, holders=30)
    dropper = RpcProxy(w.node.url, mode="drop_transfer")
    store = MemoryCheckpointStore()
    try:
        reader = tw.reader([dropper.url], checkpoint_store=store, spot_checks=10_000)
        snap = reader.snapshot()
        reader.close()
    finally:
        dropper.close()
    assert len(dropper.dropped) == 1
    log = dropper.dropped[0]
    sender, receiver = ("0x" + t[-40:] for t in log["topics"][1:])
    value = int(log["data"], 16)
    m = snap.mismatch
    assert m is not None and m.difference == 0
    got = {d.account: (d.indexed, d.on_chain) for d in m.sampled}
    pin = "0x" + snap.block.hash
    token = contract(w.node.w3, "StableToken", tw.token)

    def on_chain(a: str) -> int:
        return int(
            token.functions.balanceOf(w.node.w3.to_checksum_address(a)).call(block_identifier=pin)
        )

    assert got == {
        f"eip155:56:{sender}": (on_chain(sender) + value, on_chain(sender)),
        f"eip155:56:{receiver}": (on_chain(receiver) - value, on_chain(receiver)),
    }
    assert "balanceOf differs from the index for 2 sampled holder(s)" in m.reason(snap.chain_id)
    assert store.load(snap.chain_id, snap.token_address) is None

    # the same index through an honest endpoint reconciles, with the default sample
    honest = tw.reader(checkpoint_store=store)
    assert honest.snapshot().mismatch is None
    largest = max(tw.ledger, key=lambda a: tw.ledger[a] if a not in honest.excluded else -1)
    sample = honest.spot_check_sample({a: b for a, b in tw.ledger.items()})
    assert len(sample) == 16 and largest in sample and len(set(sample)) == 16
    honest.close()


@pytest.mark.parametrize(
    ("mode", "err"),
    [("malformed", EvmMalformedAnswerError), ("bad_result", EvmMalformedAnswerError)],
)
def test_malformed_answers_are_typed_errors(
    tworlds: dict[int, TokenWorld], mode: str, err: type[EvmChainError]
) -> None:
    tw = tworlds[1]
    proxy = RpcProxy(tw.w.node.url, mode=mode)
    try:
        reader = tw.reader([proxy.url])
        with pytest.raises(err) as ei:
            reader.snapshot()
        assert "eip155:1" in str(ei.value) and proxy.url in str(ei.value)
        reader.close()
    finally:
        proxy.close()


def test_bad_targets_are_typed_errors(worlds: dict[int, World]) -> None:
    w = worlds[1]
    # Reverted call: the oracle has decimals() but no totalSupply().
    r = EvmChainReader(chain_id=1, rpc_urls=[w.node.url], token_address=w.oracle)
    with pytest.raises(EvmRevertError) as ei:
        r.snapshot()
    assert "totalSupply()" in str(ei.value) and w.node.url in str(ei.value)
    # ABI mismatch: an account without code answers eth_call with no data.
    r = EvmChainReader(chain_id=1, rpc_urls=[w.node.url], token_address=w.treasury)
    with pytest.raises(EvmAbiMismatchError, match="no data") as ei2:
        r.snapshot()
    assert "eip155:1" in str(ei2.value)
    # Wrong chain: configured as chain 1, the node serves 56.
    r = EvmChainReader(chain_id=1, rpc_urls=[worlds[56].node.url], token_address=w.token)
    with pytest.raises(EvmWrongChainError, match="serves chain id 56") as ei3:
        r.snapshot()
    assert worlds[56].node.url in str(ei3.value)
    # Down.
    r = EvmChainReader(
        chain_id=1, rpc_urls=[f"http://127.0.0.1:{free_port()}"], token_address=w.token
    )
    with pytest.raises(EvmEndpointDownError):
        r.snapshot()
    # All of them are ChainErrors for the run.
    assert issubclass(EvmEndpointDownError, ChainError)


def test_checkpoint_round_trip_and_bad_file(tmp_path: Any) -> None:
    cp = IndexCheckpoint(
        chain_id="eip155:1",
        token="eip155:1:0x" + "11" * 20,
        block_number=7,
        block_hash="ab" * 32,
        balances={"0x" + "22" * 20: 5, "0x" + "33" * 20: 10**20},
    )
    assert IndexCheckpoint.from_dict(json.loads(json.dumps(cp.to_dict()))) == cp
    store = FileCheckpointStore(tmp_path)
    store.save(cp)
    assert store.load(cp.chain_id, cp.token) == cp
    path = store.path(cp.chain_id, cp.token)
    bad = cp.to_dict()
    bad["balances"]["0x" + "22" * 20] = "-5"
    path.write_text(json.dumps(bad))
    with pytest.raises(Exception, match="balances") as ei:
        store.load(cp.chain_id, cp.token)
    assert str(path) in str(ei.value)
    path.write_text("{not json")
    with pytest.raises(FormatError):
        store.load(cp.chain_id, cp.token)
