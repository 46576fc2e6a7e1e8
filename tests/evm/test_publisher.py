"""EvmPublisher on anvil: killed at every step and restarted, exactly one round per
attestation on each chain; stuck transactions replaced with a fee bump; typed refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from eth_account import Account
from web3.logs import DISCARD

from por.demo.anvil import AnvilNode, contract, deploy_oracle
from por.oracle.base import PublishReceipt
from por.oracle.evm_publisher import (
    CRASH_POINTS,
    EvmPublisher,
    NotAttestorError,
    OracleRejectedError,
)
from por.oracle.intents import FileIntentStore, MemoryIntentStore, PublishIntent, SentTx
from tests.evm.conftest import ATTESTOR_KEYS, NOT_ATTESTOR_KEY, Rounds, World
from tests.evm.helpers import RpcProxy, make_doc

pytestmark = [pytest.mark.anvil, pytest.mark.xdist_group("evm")]
REPO = Path(__file__).resolve().parents[2]


def _rounds_for(w: World, sequence: int) -> int:
    """How many RoundSubmitted events the oracle ever emitted for `sequence`."""
    oracle = contract(w.node.w3, "ReserveOracle", w.oracle)
    logs = oracle.events.RoundSubmitted().get_logs(
        from_block=0, argument_filters={"sequence": sequence}
    )
    return len(logs)


def _run_child(cfg_path: Path, crash_at: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "POR_CRASH_AT"}
    if crash_at:
        env["POR_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "tests.evm.publisher_child", str(cfg_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("crash_at", CRASH_POINTS)
def test_killed_publisher_publishes_exactly_once(
    worlds: dict[int, World], rounds: Rounds, tmp_path: Path, crash_at: str
) -> None:
    # The publisher process is killed (SIGKILL, reported as exit 137) at one step while
    # publishing to chain 1, then restarted with the same intent directory. Whatever the
    # step, each chain must end with exactly one round for the attestation, and the
    # sender must have spent exactly one nonce per chain (no duplicate sent and reverted).
    seq, as_of = rounds.next()
    doc, digest = make_doc(sequence=seq, as_of=as_of, reserves=10**12, supply=10**11)
    cfg = {
        "chains": [
            {
                "chain_id": w.chain_id,
                "url": w.node.url,
                "oracle": w.oracle,
                "sender_key": w.sender_key,
            }
            for w in worlds.values()
        ],
        "attestor_keys": ATTESTOR_KEYS[:2],
        "intent_dir": str(tmp_path / "intents"),
        "doc": doc,
        "digest": digest,
    }
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg))
    senders = {cid: Account.from_key(w.sender_key).address for cid, w in worlds.items()}
    nonces = {cid: w.node.w3.eth.get_transaction_count(senders[cid]) for cid, w in worlds.items()}

    crashed = _run_child(cfg_path, crash_at)
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    # A second process that crashes at the same point on resume must not hurt either.
    again = _run_child(cfg_path, None)
    assert again.returncode == 0, again.stderr[-2000:]
    results = [PublishReceipt.from_dict(r) for r in json.loads(again.stdout)]
    assert [r.sequence for r in results] == [seq, seq]
    for r, w in zip(results, worlds.values(), strict=True):
        assert r.chain_id == f"eip155:{w.chain_id}"
        assert _rounds_for(w, seq) == 1
        assert w.node.w3.eth.get_transaction_count(senders[w.chain_id]) == nonces[w.chain_id] + 1
        oracle = contract(w.node.w3, "ReserveOracle", w.oracle)
        assert oracle.functions.latestSequence().call() == seq
        rcpt = w.node.w3.eth.get_transaction_receipt(r.tx_hash)
        assert rcpt["blockNumber"] == r.block_number and rcpt["status"] == 1
    # Chain 1 was interrupted; after a broadcast the restart finds its own tx.
    assert results[0].status == "published"
    # A third run is a no-op.
    third = _run_child(cfg_path, None)
    assert third.returncode == 0
    assert [r["status"] for r in json.loads(third.stdout)] == ["published", "published"]
    for w in worlds.values():
        assert _rounds_for(w, seq) == 1


def test_already_published_by_someone_else(worlds: dict[int, World], rounds: Rounds) -> None:
    # Anyone may submit a signed report. If another publisher got there first, ours sends
    # nothing and says so.
    w = worlds[56]
    seq, as_of = rounds.next()
    doc, digest = make_doc(sequence=seq, as_of=as_of, reserves=10**12, supply=10**11)
    other = EvmPublisher(
        chain_id=56,
        rpc_urls=w.node.url,
        contract=w.oracle,
        sender_key=w.node.private_keys[8],
        attestor_keys=ATTESTOR_KEYS[1:],
        intent_store=MemoryIntentStore(),
        poll_interval_s=0.02,
    )
    first = other.publish(doc, digest)
    assert first.status == "published"
    ours = EvmPublisher(
        chain_id=56,
        rpc_urls=w.node.url,
        contract=w.oracle,
        sender_key=w.sender_key,
        attestor_keys=ATTESTOR_KEYS[:2],
        intent_store=MemoryIntentStore(),
        poll_interval_s=0.02,
    )
    sender_nonce = w.node.w3.eth.get_transaction_count(ours.sender.address)
    second = ours.publish(doc, digest)
    assert second.status == "already_published" and second.tx_hash == first.tx_hash
    assert w.node.w3.eth.get_transaction_count(ours.sender.address) == sender_nonce
    assert _rounds_for(w, seq) == 1


def test_already_published_tx_is_found_without_a_wide_log_query(
    worlds: dict[int, World], rounds: Rounds
) -> None:
    # Behind a provider that refuses eth_getLogs over more than 3 blocks, the round's tx
    # is still found: the publisher narrows the range to the blocks stamped with the
    # round's publishedAt before it asks for logs.
    w = worlds[1]
    # history before the round, 2 s apart, so a scan from block 0 would be refused
    w.node.rpc("anvil_mine", [hex(20), hex(2)])
    seq, as_of = rounds.next()
    doc, digest = make_doc(sequence=seq, as_of=as_of, reserves=10**12, supply=10**11)
    other = EvmPublisher(
        chain_id=1,
        rpc_urls=w.node.url,
        contract=w.oracle,
        sender_key=w.node.private_keys[8],
        attestor_keys=ATTESTOR_KEYS[1:],
        intent_store=MemoryIntentStore(),
        poll_interval_s=0.02,
    )
    first = other.publish(doc, digest)
    w.node.rpc("anvil_mine", [hex(5), hex(2)])
    proxy = RpcProxy(w.node.url, max_log_range=3)
    try:
        ours = EvmPublisher(
            chain_id=1,
            rpc_urls=proxy.url,
            contract=w.oracle,
            sender_key=w.sender_key,
            attestor_keys=ATTESTOR_KEYS[:2],
            intent_store=MemoryIntentStore(),
            poll_interval_s=0.02,
        )
        second = ours.publish(doc, digest)
    finally:
        proxy.close()
    assert second.status == "already_published"
    assert (second.tx_hash, second.block_number) == (first.tx_hash, first.block_number)
    # only the blocks stamped with the round's second were asked for, never refused
    assert proxy.refused == 0 and proxy.log_requests
    assert all(a <= first.block_number <= b and b - a < 3 for a, b in proxy.log_requests)


def test_key_that_is_not_attestor(worlds: dict[int, World], rounds: Rounds) -> None:
    w = worlds[1]
    seq, as_of = rounds.next()
    doc, digest = make_doc(sequence=seq, as_of=as_of, reserves=10**12, supply=10**11)
    pub = EvmPublisher(
        chain_id=1,
        rpc_urls=w.node.url,
        contract=w.oracle,
        sender_key=w.sender_key,
        attestor_keys=[ATTESTOR_KEYS[0], NOT_ATTESTOR_KEY],
        intent_store=MemoryIntentStore(),
    )
    with pytest.raises(NotAttestorError) as ei:
        pub.publish(doc, digest)
    assert "eip155:1" in str(ei.value) and w.node.url in str(ei.value)
    assert Account.from_key(NOT_ATTESTOR_KEY).address in str(ei.value)


def test_digest_must_match_document(worlds: dict[int, World], rounds: Rounds) -> None:
    w = worlds[1]
    seq, as_of = rounds.next()
    doc, _ = make_doc(sequence=seq, as_of=as_of, reserves=10**12, supply=10**11)
    pub = EvmPublisher(
        chain_id=1,
        rpc_urls=w.node.url,
        contract=w.oracle,
        sender_key=w.sender_key,
        attestor_keys=ATTESTOR_KEYS[:2],
        intent_store=MemoryIntentStore(),
    )
    with pytest.raises(Exception, match="digest does not match"):
        pub.publish(doc, "00" * 32)


def test_stuck_transaction_is_replaced_with_fee_bump(tmp_path: Path) -> None:
    # The fee market spikes right after our broadcast: base fee 100x, our maxFeePerGas
    # is below it, the tx sits in the pool while blocks go by. After `stuck_after_blocks`
    # the publisher re-signs the same nonce with fees up by >= 20% (and at least the new
    # market) and stores that intent before sending. Exactly one round lands.
    with AnvilNode(chain_id=1, automine=False) as node:
        w3 = node.w3
        owner = node.accounts[0]
        node.rpc("evm_setAutomine", [True])
        oracle = deploy_oracle(
            w3,
            owner=owner,
            threshold=2,
            attestors=[Account.from_key(k).address for k in ATTESTOR_KEYS],
        )
        node.rpc("evm_setAutomine", [False])
        store = FileIntentStore(tmp_path)
        pub = EvmPublisher(
            chain_id=1,
            rpc_urls=node.url,
            contract=oracle,
            sender_key=node.private_keys[5],
            attestor_keys=ATTESTOR_KEYS[:2],
            intent_store=store,
            stuck_after_blocks=3,
            confirmations=3,
            poll_interval_s=0.02,
            receipt_timeout_s=60,
        )
        stop = threading.Event()
        spiked = threading.Event()

        def miner() -> None:
            # Once our tx is in the pool, spike the base fee and mine a block every 30 ms.
            # No block is mined before that: one mined between a look at the pool and
            # the spike could include the tx at the old fee.
            while not stop.is_set():
                if not spiked.is_set():
                    if not node.rpc("txpool_content")["pending"]:
                        time.sleep(0.01)
                        continue
                    node.rpc("anvil_setNextBlockBaseFeePerGas", [hex(100 * 10**9)])
                    spiked.set()
                node.mine(1)
                time.sleep(0.03)

        t = threading.Thread(target=miner, daemon=True)
        t.start()
        try:
            now = w3.eth.get_block("latest")["timestamp"]
            doc, digest = make_doc(sequence=1, as_of=now - 10, reserves=10**12, supply=10**11)
            result = pub.publish(doc, digest)
        finally:
            stop.set()
            t.join(timeout=5)
        intent = store.get(1, 1)
        assert intent is not None and intent.state == "confirmed"
        assert len(intent.txs) >= 2
        first, second = intent.txs[0], intent.txs[1]
        assert second.max_fee_per_gas * 100 >= first.max_fee_per_gas * 120
        assert second.max_priority_fee_per_gas * 100 >= first.max_priority_fee_per_gas * 120
        assert result.status == "published" and result.tx_hash == intent.tx_hash
        assert result.tx_hash != first.tx_hash
        assert w3.eth.get_transaction_count(pub.sender.address) == 1  # one nonce, one tx
        c = contract(w3, "ReserveOracle", oracle)
        assert len(c.events.RoundSubmitted().get_logs(from_block=0)) == 1
        rcpt = w3.eth.get_transaction_receipt(result.tx_hash)
        assert len(c.events.RoundSubmitted().process_receipt(rcpt, errors=DISCARD)) == 1


def test_intent_round_trip(tmp_path: Path) -> None:
    intent = PublishIntent(
        chain_id=56,
        sequence=3,
        contract="0x" + "Ab" * 20,
        attestation_digest="cd" * 32,
        sender="0x" + "12" * 20,
        nonce=4,
        state="broadcast",
        txs=(
            SentTx(
                tx_hash="0x" + "01" * 32,
                raw_tx="0x02f8",
                max_fee_per_gas=3 * 10**9,
                max_priority_fee_per_gas=10**9,
                sent_at_block=9,
            ),
        ),
    )
    assert PublishIntent.from_dict(json.loads(json.dumps(intent.to_dict()))) == intent
    store = FileIntentStore(tmp_path)
    store.put(intent)
    assert store.get(56, 3) == intent and store.get(56, 4) is None
    res = PublishReceipt(
        chain_id="eip155:56",
        sequence=3,
        tx_hash=None,
        block_number=None,
        status="already_published",
    )
    assert PublishReceipt.from_dict(res.to_dict()) == res
    store.path(56, 3).write_text("{")
    with pytest.raises(Exception, match="malformed JSON"):
        store.get(56, 3)


def test_refused_report_names_the_contract_error(worlds: dict[int, World], rounds: Rounds) -> None:
    # The publisher simulates submit before signing a transaction: a report the contract
    # would refuse (here: as-of older than the oracle's max report age) is a typed error
    # naming chain, endpoint and the contract's own error — and nothing is stored or sent.
    w = worlds[56]
    seq, _ = rounds.next()
    doc, digest = make_doc(
        sequence=seq, as_of=int(time.time()) - 30 * 24 * 3600, reserves=10**12, supply=10**11
    )
    store = MemoryIntentStore()
    pub = EvmPublisher(
        chain_id=56,
        rpc_urls=w.node.url,
        contract=w.oracle,
        sender_key=w.sender_key,
        attestor_keys=ATTESTOR_KEYS[:2],
        intent_store=store,
    )
    nonce = w.node.w3.eth.get_transaction_count(pub.sender.address)
    with pytest.raises(OracleRejectedError, match=r"StaleReport\(") as ei:
        pub.publish(doc, digest)
    assert "eip155:56" in str(ei.value) and w.node.url in str(ei.value)
    assert store.get(56, seq) is None
    assert w.node.w3.eth.get_transaction_count(pub.sender.address) == nonce


def test_a_round_overtaken_on_chain_is_superseded(worlds: dict[int, World], rounds: Rounds) -> None:
    """The oracle takes only increasing sequences: once it holds N+1 (sent by anyone),
    round N can never land. The publisher says so with the newer sequence, and the
    publication queue marks N `superseded` instead of retrying it for ever."""
    from por.oracle.base import PublishSupersededError

    w = worlds[56]
    older, older_as_of = rounds.next()
    newer, newer_as_of = rounds.next()
    old_doc, old_digest = make_doc(sequence=older, as_of=older_as_of, reserves=10**12, supply=1)
    new_doc, new_digest = make_doc(sequence=newer, as_of=newer_as_of, reserves=10**12, supply=1)
    pub = EvmPublisher(
        chain_id=56,
        rpc_urls=w.node.url,
        contract=w.oracle,
        sender_key=w.sender_key,
        attestor_keys=ATTESTOR_KEYS[:2],
        intent_store=MemoryIntentStore(),
        poll_interval_s=0.02,
    )
    assert pub.publish(new_doc, new_digest).status == "published"
    with pytest.raises(PublishSupersededError, match=f"already at sequence {newer}") as e:
        pub.publish(old_doc, old_digest)
    assert e.value.newer == newer and _rounds_for(w, older) == 0
