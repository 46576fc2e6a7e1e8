"""ReserveOracle on anvil: accepted rounds, the Chainlink-style consumer, and every refusal."""

from __future__ import annotations

import time
from typing import Any

import pytest
from eth_account import Account
from web3.logs import DISCARD

from por.demo.anvil import contract
from por.oracle.report import (
    HALF_N,
    OracleReport,
    report_hash,
    sign_report,
    to_high_s,
)
from tests.evm.conftest import ATTESTOR_KEYS, NOT_ATTESTOR_KEY, Rounds, World
from tests.evm.helpers import make_doc, revert_name

pytestmark = [pytest.mark.anvil, pytest.mark.xdist_group("evm")]


def _report(
    rounds: Rounds,
    *,
    reserves: int = 10**12,
    supply: int = 9 * 10**11,
    as_of: int | None = None,
    sequence: int | None = None,
) -> OracleReport:
    seq, default_as_of = rounds.next()
    doc, digest = make_doc(
        sequence=sequence or seq, as_of=as_of or default_as_of, reserves=reserves, supply=supply
    )
    return OracleReport.from_attestation(doc, digest)


def _sigs(
    w: World,
    r: OracleReport,
    keys: list[str] | None = None,
    *,
    chain_id: int | None = None,
    contract_addr: str | None = None,
) -> list[bytes]:
    return [
        sign_report(
            r, chain_id=chain_id or w.chain_id, contract=contract_addr or w.oracle, private_key=k
        )
        for k in (keys or ATTESTOR_KEYS[:2])
    ]


def _submit_data(w: World, r: OracleReport, sigs: list[bytes]) -> str:
    oracle = contract(w.node.w3, "ReserveOracle", w.oracle)
    return str(oracle.encode_abi("submit", args=[r.as_abi_tuple(), sigs]))


def _refusal(w: World, r: OracleReport, sigs: list[bytes]) -> str | None:
    return revert_name(w.node.w3, w.oracle, _submit_data(w, r, sigs), w.issuer)


def _submit(w: World, r: OracleReport, sigs: list[bytes]) -> Any:
    w3 = w.node.w3
    h = w3.eth.send_transaction(
        {"from": w.issuer, "to": w.oracle, "data": _submit_data(w, r, sigs), "gas": 1_000_000}
    )
    rcpt = w3.eth.wait_for_transaction_receipt(h, poll_latency=0.01)
    assert rcpt["status"] == 1
    return rcpt


def test_eip712_hash_matches_contract(worlds: dict[int, World], rounds: Rounds) -> None:
    w = worlds[1]
    r = _report(rounds)
    oracle = contract(w.node.w3, "ReserveOracle", w.oracle)
    on_chain = oracle.functions.reportDigest(r.as_abi_tuple()).call()
    assert bytes(on_chain) == report_hash(r, chain_id=1, contract=w.oracle)


def test_round_is_stored_and_read_like_chainlink(worlds: dict[int, World], rounds: Rounds) -> None:
    for w in worlds.values():
        r = _report(rounds, reserves=5 * 10**12, supply=4 * 10**12)
        rcpt = _submit(w, r, _sigs(w, r))
        oracle = contract(w.node.w3, "ReserveOracle", w.oracle)
        round_id, answer, started, updated, answered = oracle.functions.latestRoundData().call()
        assert (answer, started, updated, answered) == (r.reserves, r.as_of, r.as_of, round_id)
        assert oracle.functions.decimals().call() == 6
        assert oracle.functions.latestSequence().call() == r.sequence
        rnd = oracle.functions.getRound(round_id).call()
        assert (rnd[0], rnd[1], rnd[3], rnd[4], bytes(rnd[5]), rnd[6], bytes(rnd[7])) == (
            r.sequence,
            r.as_of,
            r.reserves,
            r.circulating_supply,
            r.liabilities_root,
            r.liabilities_total,
            r.attestation_digest,
        )
        events = oracle.events.RoundSubmitted().process_receipt(rcpt, errors=DISCARD)
        assert len(events) == 1 and events[0]["args"]["sequence"] == r.sequence
        assert len(oracle.events.AnswerUpdated().process_receipt(rcpt, errors=DISCARD)) == 1
        # The Chainlink-PoR-style consumer reads it unchanged: fresh, positive, scaled.
        consumer = contract(w.node.w3, "PorConsumer", w.consumer)
        assert consumer.functions.reserves().call() == r.reserves
        token = contract(w.node.w3, "StableToken", w.token)
        room = r.reserves - token.functions.totalSupply().call()
        assert consumer.functions.canMint(room).call() is True
        assert consumer.functions.canMint(room + 1).call() is False


def test_consumer_refuses_stale_answer(worlds: dict[int, World], rounds: Rounds) -> None:
    # A feed that has not been updated within the heartbeat must stop mints: move the
    # chain's clock past the heartbeat on a throwaway snapshot and ask the consumer.
    w = worlds[56]
    r = _report(rounds)
    _submit(w, r, _sigs(w, r))
    snap = w.node.rpc("evm_snapshot")
    try:
        w.node.rpc("evm_increaseTime", [2 * 24 * 3600])
        w.node.mine(1)
        consumer = contract(w.node.w3, "PorConsumer", w.consumer)
        assert (
            revert_name(w.node.w3, w.consumer, consumer.encode_abi("reserves", args=[]))
            == "StaleAnswer"
        )
    finally:
        assert w.node.rpc("evm_revert", [snap]) is True


def test_consumer_refuses_zero_answer(worlds: dict[int, World], rounds: Rounds) -> None:
    w = worlds[1]
    r = _report(rounds, reserves=0)
    _submit(w, r, _sigs(w, r))
    consumer = contract(w.node.w3, "PorConsumer", w.consumer)
    assert (
        revert_name(w.node.w3, w.consumer, consumer.encode_abi("reserves", args=[]))
        == "NonPositiveAnswer"
    )


def test_replay_from_chain_1_on_chain_56_is_refused(
    worlds: dict[int, World], rounds: Rounds
) -> None:
    # Attack: the attestors sign a report for the oracle on chain 1; someone submits the
    # same report and signatures to the oracle on chain 56 (even at the same address).
    # The EIP-712 domain binds chainId, so the signers recovered on 56 are strangers.
    r = _report(rounds)
    sigs = _sigs(worlds[1], r, chain_id=1, contract_addr=worlds[56].oracle)
    assert _refusal(worlds[56], r, sigs) == "NotAttestor"
    assert _refusal(worlds[56], r, _sigs(worlds[56], r)) is None  # the honest one passes


def test_report_for_another_contract_is_refused(worlds: dict[int, World], rounds: Rounds) -> None:
    # Attack: signatures made for oracle A are replayed at oracle B on the same chain.
    w = worlds[1]
    r = _report(rounds)
    sigs = _sigs(w, r, contract_addr=w.token)  # any other address as verifyingContract
    assert _refusal(w, r, sigs) == "NotAttestor"


def test_high_s_signature_is_refused(worlds: dict[int, World], rounds: Rounds) -> None:
    # Attack: (r, n - s, v ^ 1) is a second valid ECDSA signature of the same digest
    # (malleability). The contract accepts only low s (EIP-2).
    w = worlds[1]
    r = _report(rounds)
    sigs = _sigs(w, r)
    high = [to_high_s(sigs[0]), sigs[1]]
    assert int.from_bytes(high[0][32:64], "big") > HALF_N  # really the high twin
    assert _refusal(w, r, high) == "HighS"


def test_fewer_signatures_than_threshold(worlds: dict[int, World], rounds: Rounds) -> None:
    w = worlds[56]
    r = _report(rounds)
    assert _refusal(w, r, _sigs(w, r, ATTESTOR_KEYS[:1])) == "NotEnoughSignatures"


def test_duplicate_signer_is_refused(worlds: dict[int, World], rounds: Rounds) -> None:
    # Attack: one attestor's signature given twice to reach a threshold of 2 alone.
    w = worlds[1]
    r = _report(rounds)
    sig = _sigs(w, r, ATTESTOR_KEYS[:1])[0]
    assert _refusal(w, r, [sig, sig]) == "DuplicateSigner"
    # ...and its high-s twin is not a way around it.
    assert _refusal(w, r, [sig, to_high_s(sig)]) == "HighS"


def test_signer_not_attestor_is_refused(worlds: dict[int, World], rounds: Rounds) -> None:
    w = worlds[1]
    r = _report(rounds)
    assert _refusal(w, r, _sigs(w, r, [ATTESTOR_KEYS[0], NOT_ATTESTOR_KEY])) == "NotAttestor"


def test_stale_and_future_as_of_are_refused(worlds: dict[int, World], rounds: Rounds) -> None:
    w = worlds[56]
    now = int(time.time())
    stale = _report(rounds, as_of=now - 8 * 24 * 3600)  # max report age is 7 days
    assert _refusal(w, stale, _sigs(w, stale)) == "StaleReport"
    future = _report(rounds, as_of=now + 3600)
    assert _refusal(w, future, _sigs(w, future)) == "AsOfInFuture"


def test_sequence_and_as_of_must_increase(worlds: dict[int, World], rounds: Rounds) -> None:
    w = worlds[1]
    r = _report(rounds)
    _submit(w, r, _sigs(w, r))
    # Attack: replaying the accepted round, or an older sequence with fresh signatures.
    assert _refusal(w, r, _sigs(w, r)) == "SequenceNotIncreasing"
    older = _report(rounds, sequence=r.sequence - 1 if r.sequence > 1 else r.sequence)
    assert _refusal(w, older, _sigs(w, older)) == "SequenceNotIncreasing"
    same_time = _report(rounds, as_of=r.as_of)
    assert _refusal(w, same_time, _sigs(w, same_time)) == "AsOfNotIncreasing"


def test_attestor_set_management(worlds: dict[int, World]) -> None:
    w = worlds[56]
    w3 = w.node.w3
    oracle = contract(w3, "ReserveOracle", w.oracle)
    newcomer = Account.from_key(NOT_ATTESTOR_KEY).address
    # Only the owner may change the set.
    data = oracle.encode_abi("addAttestor", args=[newcomer])
    assert revert_name(w3, w.oracle, data, w.treasury) == "NotOwner"
    assert (
        revert_name(w3, w.oracle, oracle.encode_abi("setThreshold", args=[4]), w.issuer)
        == "InvalidThreshold"
    )
    h = oracle.functions.addAttestor(newcomer).transact({"from": w.issuer})
    rcpt = w3.eth.wait_for_transaction_receipt(h, poll_latency=0.01)
    assert len(oracle.events.AttestorAdded().process_receipt(rcpt, errors=DISCARD)) == 1
    assert oracle.functions.isAttestor(newcomer).call() is True
    h = oracle.functions.removeAttestor(newcomer).transact({"from": w.issuer})
    rcpt = w3.eth.wait_for_transaction_receipt(h, poll_latency=0.01)
    assert len(oracle.events.AttestorRemoved().process_receipt(rcpt, errors=DISCARD)) == 1
    assert oracle.functions.isAttestor(newcomer).call() is False
    assert oracle.functions.attestorCount().call() == 3
