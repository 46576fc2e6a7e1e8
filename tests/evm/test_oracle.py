"""ReserveOracle on anvil: per-chain budget rounds read like Chainlink, and every refusal."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from web3.logs import DISCARD

from por.demo.anvil import contract, deploy_oracle
from por.oracle.report import (
    EIP712_NAME,
    EIP712_VERSION,
    HALF_N,
    REPORT_TYPES,
    ChainBudget,
    OracleReport,
    chain_key,
    report_hash,
    sign_report,
    to_high_s,
    to_low_s,
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
    **kw: Any,
) -> OracleReport:
    seq, default_as_of = rounds.next()
    doc, digest = make_doc(
        sequence=sequence or seq,
        as_of=as_of or default_as_of,
        reserves=reserves,
        supply=supply,
        **kw,
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


def _submit_data(w: World, r: OracleReport | tuple[Any, ...], sigs: list[bytes]) -> str:
    oracle = contract(w.node.w3, "ReserveOracle", w.oracle)
    report = r.as_abi_tuple() if isinstance(r, OracleReport) else r
    return str(oracle.encode_abi("submit", args=[report, sigs]))


def _refusal(w: World, r: OracleReport | tuple[Any, ...], sigs: list[bytes]) -> str | None:
    return revert_name(w.node.w3, w.oracle, _submit_data(w, r, sigs), w.issuer)


def _submit(w: World, r: OracleReport, sigs: list[bytes]) -> Any:
    w3 = w.node.w3
    h = w3.eth.send_transaction(
        {"from": w.issuer, "to": w.oracle, "data": _submit_data(w, r, sigs), "gas": 2_000_000}
    )
    rcpt = w3.eth.wait_for_transaction_receipt(h, poll_latency=0.01)
    assert rcpt["status"] == 1
    return rcpt


def _raw_sigs(w: World, report: tuple[Any, ...]) -> list[bytes]:
    """Attestor signatures over a raw `Report` tuple (for figures OracleReport refuses)."""
    names = [f["name"] for f in REPORT_TYPES["Report"]]
    message = dict(zip(names, report, strict=True))
    message["chains"] = [
        {"chain": c[0], "circulating": c[1], "budget": c[2]} for c in message["chains"]
    ]
    data = {
        "types": REPORT_TYPES,
        "primaryType": "Report",
        "domain": {
            "name": EIP712_NAME,
            "version": EIP712_VERSION,
            "chainId": w.chain_id,
            "verifyingContract": w.oracle,
        },
        "message": message,
    }
    signable = encode_typed_data(full_message=data)
    return [to_low_s(bytes(Account.sign_message(signable, k).signature)) for k in ATTESTOR_KEYS[:2]]


def test_eip712_hash_and_chain_key_match_contract(worlds: dict[int, World], rounds: Rounds) -> None:
    for w in worlds.values():
        r = _report(rounds)
        oracle = contract(w.node.w3, "ReserveOracle", w.oracle)
        on_chain = oracle.functions.reportDigest(r.as_abi_tuple()).call()
        assert bytes(on_chain) == report_hash(r, chain_id=w.chain_id, contract=w.oracle)
        assert bytes(oracle.functions.chainKey().call()) == chain_key(f"eip155:{w.chain_id}")


def test_round_answers_this_chains_budget(worlds: dict[int, World], rounds: Rounds) -> None:
    # One attestation, two chains: 5M reserves, 4M circulating split 2.4M / 1.6M. Each
    # oracle answers its own chain's budget; the global figures sit beside it.
    r = _report(rounds, reserves=5 * 10**12, supply=4 * 10**12, reserves_age_s=7200)
    assert sum(c.budget for c in r.chains) <= r.eligible_reserves
    for w in worlds.values():
        line = r.budget_for(f"eip155:{w.chain_id}")
        rcpt = _submit(w, r, _sigs(w, r))
        oracle = contract(w.node.w3, "ReserveOracle", w.oracle)
        round_id, answer, started, updated, answered = oracle.functions.latestRoundData().call()
        # updatedAt is the bank statement's as-of (2 h before the snapshot), not the
        # attestation time: a consumer's heartbeat bounds the age of the bank data.
        assert r.reserves_as_of == r.as_of - 7200
        assert (answer, started, updated, answered) == (
            line.budget,
            r.reserves_as_of,
            r.reserves_as_of,
            round_id,
        )
        assert oracle.functions.getRoundData(round_id).call()[1] == line.budget
        assert oracle.functions.decimals().call() == 6
        assert oracle.functions.version().call() == 2
        assert oracle.functions.latestSequence().call() == r.sequence
        assert oracle.functions.latestStatus().call() == 1  # FULLY_BACKED
        rnd = oracle.functions.getRound(round_id).call()
        assert rnd == (
            r.sequence,
            r.as_of,
            r.reserves_as_of,
            rnd[3],  # publishedAt: the block's time
            line.budget,
            line.circulating,
            r.eligible_reserves,
            r.total_circulating,
            r.liabilities_total,
            1,
            r.liabilities_root,
            r.attestation_digest,
        )
        # AggregatorInterface (V2) reads
        assert oracle.functions.latestAnswer().call() == line.budget
        assert oracle.functions.latestTimestamp().call() == r.reserves_as_of
        assert oracle.functions.latestRound().call() == round_id
        assert oracle.functions.getAnswer(round_id).call() == line.budget
        assert oracle.functions.getTimestamp(round_id).call() == r.reserves_as_of
        assert oracle.functions.getAnswer(round_id + 1).call() == 0
        assert oracle.functions.getTimestamp(2**100).call() == 0
        events = oracle.events.RoundSubmitted().process_receipt(rcpt, errors=DISCARD)
        assert len(events) == 1 and events[0]["args"]["sequence"] == r.sequence
        assert events[0]["args"]["budget"] == line.budget
        updated_events = oracle.events.AnswerUpdated().process_receipt(rcpt, errors=DISCARD)
        assert [e["args"]["current"] for e in updated_events] == [line.budget]
        # The Chainlink-PoR-style consumer reads it unchanged: fresh, positive, scaled.
        consumer = contract(w.node.w3, "PorConsumer", w.consumer)
        assert consumer.functions.reserves().call() == line.budget
        token = contract(w.node.w3, "StableToken", w.token)
        room = line.budget - token.functions.totalSupply().call()
        assert consumer.functions.canMint(room).call() is True
        assert consumer.functions.canMint(room + 1).call() is False
    # the two chains answer differently, and together stay within the reserves
    answers = [
        contract(w.node.w3, "ReserveOracle", w.oracle).functions.latestAnswer().call()
        for w in worlds.values()
    ]
    assert answers[0] != answers[1] and sum(answers) <= r.eligible_reserves


def test_before_the_first_round_consumers_see_zero(worlds: dict[int, World]) -> None:
    # Aave's aggregator reads every listed asset's feed in one call: a feed that reverts
    # before its first round would break the call for every other asset. Ours answers 0
    # with updatedAt 0, which every heartbeat and positive-answer check refuses.
    w = worlds[1]
    fresh = deploy_oracle(
        w.node.w3,
        owner=w.issuer,
        attestors=[Account.from_key(k).address for k in ATTESTOR_KEYS],
        threshold=2,
    )
    oracle = contract(w.node.w3, "ReserveOracle", fresh)
    assert oracle.functions.latestRoundData().call() == [0, 0, 0, 0, 0]
    assert oracle.functions.latestAnswer().call() == 0
    assert oracle.functions.latestTimestamp().call() == 0
    assert oracle.functions.latestRound().call() == 0
    assert oracle.functions.latestStatus().call() == 0
    assert oracle.functions.getAnswer(1).call() == 0
    data = oracle.encode_abi("getRoundData", args=[1])
    assert revert_name(w.node.w3, fresh, data) == "NoData"


def test_round_without_statements_is_stale_everywhere(
    worlds: dict[int, World], rounds: Rounds
) -> None:
    # No reserve line counts (no statement): reservesAsOf 0, updatedAt 0.
    w = worlds[56]
    r = dataclasses.replace(_report(rounds, reserves=0, supply=0), reserves_as_of=0)
    _submit(w, r, _sigs(w, r))
    oracle = contract(w.node.w3, "ReserveOracle", w.oracle)
    assert oracle.functions.latestRoundData().call()[3] == 0
    consumer = contract(w.node.w3, "PorConsumer", w.consumer)
    data = consumer.encode_abi("reserves", args=[])
    assert revert_name(w.node.w3, w.consumer, data) in ("NonPositiveAnswer", "StaleAnswer")


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
    r = _report(rounds, reserves=0)  # nothing eligible: UNDER_COLLATERALIZED, budgets 0
    assert r.status == "UNDER_COLLATERALIZED" and r.budget_for("eip155:1").budget == 0
    _submit(w, r, _sigs(w, r))
    consumer = contract(w.node.w3, "PorConsumer", w.consumer)
    assert (
        revert_name(w.node.w3, w.consumer, consumer.encode_abi("reserves", args=[]))
        == "NonPositiveAnswer"
    )


# --- reports whose figures do not add up ----------------------------------------------------


def test_budgets_above_reserves_are_refused(worlds: dict[int, World], rounds: Rounds) -> None:
    # Attack: correctly signed by the attestors, but the budgets add up to more than the
    # reserves (a bug or a compromised signing path). Per-chain consumers would then let
    # the chains together mint more than is backed. The contract recomputes the sum.
    w = worlds[1]
    r = _report(rounds, reserves=10**12, supply=9 * 10**11)
    inflated = dataclasses.replace(
        r,
        chains=tuple(dataclasses.replace(c, budget=c.budget + 10**11) for c in r.chains),
    )
    assert sum(c.budget for c in inflated.chains) > inflated.eligible_reserves
    assert _refusal(w, inflated, _sigs(w, inflated)) == "BudgetsExceedReserves"


def test_report_without_this_chains_budget_is_refused(
    worlds: dict[int, World], rounds: Rounds
) -> None:
    # A report that names only chain 56 budgets nothing for chain 1: refused on chain 1,
    # even though it is signed for chain 1's oracle.
    w = worlds[1]
    r = _report(rounds, chains=("eip155:56",), supply=[9 * 10**11])
    assert _refusal(w, r, _sigs(w, r)) == "NoBudgetForChain"
    assert _refusal(worlds[56], r, _sigs(worlds[56], r)) is None


def test_figures_that_disagree_are_refused(worlds: dict[int, World], rounds: Rounds) -> None:
    w = worlds[56]
    r = _report(rounds, reserves=10**12, supply=9 * 10**11)
    # the same chain twice (its budget would count once on chain, twice in the sum)
    twice = dataclasses.replace(r, chains=(r.chains[1], r.chains[1]))
    assert _refusal(w, twice, _sigs(w, twice)) == "DuplicateChain"
    # FULLY_BACKED with reserves below the total circulating supply
    short = dataclasses.replace(r, eligible_reserves=r.total_circulating - 1)
    assert _refusal(w, short, _sigs(w, short)) == "StatusDisagreesWithFigures"
    # UNDER_COLLATERALIZED, yet a chain gets headroom above its circulating supply
    under = _report(rounds, reserves=10**11, supply=9 * 10**11)
    assert under.status == "UNDER_COLLATERALIZED"
    head = dataclasses.replace(
        under,
        chains=(
            dataclasses.replace(under.chains[0], budget=under.chains[0].circulating + 1),
            dataclasses.replace(under.chains[1], budget=0),
        ),
    )
    assert _refusal(w, head, _sigs(w, head)) == "BudgetDisagreesWithStatus"
    # chains that circulate more than the total the status is judged against
    more = dataclasses.replace(r, total_circulating=r.total_circulating - 1)
    assert _refusal(w, more, _sigs(w, more)) in (
        "CirculatingExceedsTotal",
        "BudgetsExceedReserves",
    )
    more = dataclasses.replace(
        r,
        chains=(
            r.chains[0],
            ChainBudget(chain_id="eip155:56", circulating=r.chains[1].circulating + 1, budget=0),
        ),
    )
    assert _refusal(w, more, _sigs(w, more)) == "BudgetDisagreesWithStatus"
    # a status code the contract does not know, and an amount beyond 2^127 (raw tuples:
    # OracleReport itself refuses both)
    raw = list(r.as_abi_tuple())
    raw[3] = 4
    assert _refusal(w, tuple(raw), _raw_sigs(w, tuple(raw))) == "UnknownStatus"
    raw = list(r.as_abi_tuple())
    raw[4] = 2**127
    assert _refusal(w, tuple(raw), _raw_sigs(w, tuple(raw))) == "AmountOutOfRange"
    raw = list(r.as_abi_tuple())
    raw[9] = []
    assert _refusal(w, tuple(raw), _raw_sigs(w, tuple(raw))) == "BadChainCount"
    # and the honest report passes the same simulation
    assert _refusal(w, r, _sigs(w, r)) is None


# --- replay and forgery (unchanged by budgets) ---------------------------------------------


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


def test_a_signature_over_other_budgets_does_not_carry_over(
    worlds: dict[int, World], rounds: Rounds
) -> None:
    # Attack: take a valid, signed report and move headroom from chain 56 to chain 1
    # (the sum unchanged, within reserves). The budgets are inside the signed struct,
    # so the recovered signers are strangers.
    w = worlds[1]
    r = _report(rounds)
    sigs = _sigs(w, r)
    moved = dataclasses.replace(
        r,
        chains=(
            dataclasses.replace(r.chains[0], budget=r.chains[0].budget + 1000),
            dataclasses.replace(r.chains[1], budget=r.chains[1].budget - 1000),
        ),
    )
    assert _refusal(w, moved, sigs) == "NotAttestor"


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
