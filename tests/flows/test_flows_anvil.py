"""Flow reconciliation, off-chain liabilities and point-in-time attestations on anvil.

One anvil node of this module (its clock set a week back) carries a fresh StableToken,
with mints and burns placed on chosen Hong Kong days, against one camt.053 statement per
day. The stories, as an auditor would tell them:

    day 1  mint 1000 ref S-1   <- credit 1000 "S-1"           matched by reference
           mint  500           <- credit  500 (no reference)  matched by amount and day
    day 2  mint  777           (no credit)                     a mint with no money behind it
           burn  300 ref R-1   (no debit; the ledger owes it)  a burn never paid out
    ---- between the two batches: the as-of time of the point-in-time attestation ----
    day 3  burn  200 ref R-2   <- debit 200 "R-2" TWICE        a redemption paid twice
           mint  400 ref S-3 TWICE <- credit 400 "S-3"         a subscription minted twice
    day 4  mint  650           credit 650 booked on day 0      out of the one-day window
    day 5  mint  900           <- credit 900 (no reference)    matched by amount and day
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from por.chains.base import AsOfRefusedError, HistoricalStateError
from por.chains.evm import EvmChainReader, EvmHistoricalStateError
from por.core.canonical import loads_strict
from por.core.flows import parse_matches
from por.core.mst import verify_inclusion
from por.core.verify import Deferred, check_reconciliation
from por.demo.anvil import AnvilNode, contract, deploy_stablecoin
from por.demo.statements import camt053
from por.errors import InputError, MismatchError
from por.service.alerts import Alerter
from por.service.run import attest_once
from tests.flows.helpers import ACCOUNT, HKT, UNIT, Clock, Harness, hk_noon, ledger_export

pytestmark = [pytest.mark.anvil, pytest.mark.xdist_group("flows-evm")]

OPENING = 10_000_000 * 100  # cents


def _ts(t: datetime) -> int:
    return int(t.timestamp())


@dataclass
class Timeline:
    node: AnvilNode
    token: str
    start_block: int
    d0: date
    as_of: datetime  # between the batches
    now: datetime  # the regular run's clock
    at_as_of: dict[str, int]  # balances after batch 1 (kept apart from the reader)
    at_end: dict[str, int]
    statements: list[tuple[str, bytes]]
    people: dict[str, str]


def _day(d0: date, k: int) -> date:
    return d0 + timedelta(days=k)


@pytest.fixture(scope="module")
def timeline() -> Iterator[Timeline]:
    d0 = (datetime.now(HKT) - timedelta(days=7)).date()
    genesis = datetime(d0.year, d0.month, d0.day, 0, 0, tzinfo=HKT)
    node = AnvilNode(chain_id=31337, extra_args=["--timestamp", str(_ts(genesis))]).start()
    try:
        w3 = node.w3
        issuer, alice, bob, carol, dave, erin, frank = node.accounts[:7]
        people = {"alice": alice, "bob": bob, "carol": carol, "dave": dave, "erin": erin}
        people["frank"] = frank
        balances: dict[str, int] = {}

        def at(t: datetime) -> None:
            node.rpc("evm_setNextBlockTimestamp", [_ts(t)])

        def send(fn: Any, sender: str) -> None:
            h = fn.transact({"from": sender})
            w3.eth.wait_for_transaction_receipt(h, timeout=30, poll_latency=0.02)

        def credit(who: str, amount: int) -> None:
            balances[who.lower()] = balances.get(who.lower(), 0) + amount

        def debit(who: str, amount: int) -> None:
            balances[who.lower()] -= amount
            if not balances[who.lower()]:
                del balances[who.lower()]

        at(genesis + timedelta(hours=6))
        token = deploy_stablecoin(w3, issuer=issuer)
        start_block = node.block_number()
        c = contract(w3, "StableToken", token)
        ref = lambda s: s.encode().ljust(32, b"\0")  # noqa: E731

        at(hk_noon(_day(d0, 1)))
        send(c.functions.mintWithReference(alice, 1000 * UNIT, ref("S-1")), issuer)
        credit(alice, 1000 * UNIT)
        at(hk_noon(_day(d0, 1)) + timedelta(minutes=5))
        send(c.functions.mint(bob, 500 * UNIT), issuer)
        credit(bob, 500 * UNIT)
        at(hk_noon(_day(d0, 2)))
        send(c.functions.mint(carol, 777 * UNIT), issuer)
        credit(carol, 777 * UNIT)
        at(hk_noon(_day(d0, 2)) + timedelta(minutes=5))
        send(c.functions.transfer(issuer, 500 * UNIT), alice)
        debit(alice, 500 * UNIT)
        credit(issuer, 500 * UNIT)
        at(hk_noon(_day(d0, 2)) + timedelta(minutes=10))
        send(c.functions.burnWithReference(300 * UNIT, ref("R-1")), issuer)
        debit(issuer, 300 * UNIT)
        at_as_of = dict(balances)

        at(hk_noon(_day(d0, 3)))
        send(c.functions.burnWithReference(200 * UNIT, ref("R-2")), issuer)
        debit(issuer, 200 * UNIT)
        for minutes in (5, 10):
            at(hk_noon(_day(d0, 3)) + timedelta(minutes=minutes))
            send(c.functions.mintWithReference(dave, 400 * UNIT, ref("S-3")), issuer)
            credit(dave, 400 * UNIT)
        at(hk_noon(_day(d0, 4)))
        send(c.functions.mint(erin, 650 * UNIT), issuer)
        credit(erin, 650 * UNIT)
        at(hk_noon(_day(d0, 5)))
        send(c.functions.mint(frank, 900 * UNIT), issuer)
        credit(frank, 900 * UNIT)
        at(hk_noon(_day(d0, 5)) + timedelta(hours=1))
        node.mine(24)  # finalize, and leave the as-of block well behind the head

        cents = 100
        days: dict[int, list[tuple[str, int, str, str]]] = {
            0: [
                ("credit", 650 * cents, "SUBSCRIPTION LATE", "HT0001"),
                ("credit", 1234, "INTEREST CREDIT", "HT0002"),
            ],
            1: [
                ("credit", 1000 * cents, "SUBSCRIPTION S-1", "HT1001"),
                ("credit", 500 * cents, "SUBSCRIPTION BOB", "HT1002"),
            ],
            2: [],
            3: [
                ("debit", 200 * cents, "REDEMPTION PAYOUT R-2", "HT3001"),
                ("debit", 200 * cents, "REDEMPTION PAYOUT R-2", "HT3002"),
                ("credit", 400 * cents, "SUBSCRIPTION S-3", "HT3003"),
            ],
            4: [],
            5: [("credit", 900 * cents, "SUBSCRIPTION FRANK", "HT5001")],
        }
        statements = []
        opening = OPENING
        for k in range(6):
            data = camt053(account=ACCOUNT, day=_day(d0, k), opening_minor=opening, entries=days[k])
            opening += sum(a if kind == "credit" else -a for kind, a, _, _ in days[k])
            statements.append((f"camt053-day{k}.xml", data))
        yield Timeline(
            node=node,
            token=token,
            start_block=start_block,
            d0=d0,
            as_of=datetime(d0.year, d0.month, d0.day, 23, 0, tzinfo=HKT).astimezone(UTC)
            + timedelta(days=2),
            now=datetime(d0.year, d0.month, d0.day, 9, 0, tzinfo=HKT).astimezone(UTC)
            + timedelta(days=6),
            at_as_of=at_as_of,
            at_end=dict(balances),
            statements=statements,
            people=people,
        )
    finally:
        node.stop()


def _reader(tl: Timeline, url: str | None = None) -> EvmChainReader:
    return EvmChainReader(
        chain_id=31337,
        rpc_urls=[url or tl.node.url],
        token_address=tl.token,
        start_block=tl.start_block,
        expected_decimals=6,
        collect_flows=True,
        reference_events=True,
        spot_checks=4,
    )


@pytest.fixture(scope="module")
def harness(timeline: Timeline, tmp_path_factory: pytest.TempPathFactory) -> Harness:
    root = tmp_path_factory.mktemp("flows")
    d0 = timeline.d0
    tron = {
        "chain_id": "tron:0x2b6653dc",
        "token": "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf",
        "block": "70000000",
        "block_hash": "00" * 32,
    }
    a = ledger_export(
        root / "ledger-a.json",
        ledger_id="KDM-L-A",
        as_of=datetime(d0.year, d0.month, d0.day, 20, 0, tzinfo=HKT) + timedelta(days=2),
        accounts=[
            {"account": "ledger:kdm:R-1", "category": "pending_redemption", "balance": "300"},
            {
                "account": "ledger:kdm:tron",
                "category": "other_chain_supply",
                "balance": "1000",
                "evidence": tron,
            },
        ],
    )
    b = ledger_export(
        root / "ledger-b.json",
        ledger_id="KDM-L-B",
        as_of=datetime(d0.year, d0.month, d0.day, 20, 0, tzinfo=HKT) + timedelta(days=5),
        accounts=[
            {"account": "ledger:kdm:R-1", "category": "pending_redemption", "balance": "300"},
            {
                "account": "ledger:kdm:tron",
                "category": "other_chain_supply",
                "balance": "1200",
                "evidence": tron,
            },
            {
                "account": "ledger:kdm:F-1",
                "category": "frozen",
                "balance": "25",
                "evidence": {"chain_id": "eip155:1", "tx": "0x" + "ab" * 32},
            },
        ],
    )
    h = Harness(
        root=root,
        chains=[_reader(timeline)],
        clock=Clock(timeline.now),
        flows_start=hk_noon(d0) - timedelta(hours=12),
        documents=list(timeline.statements),
        ledger_files=[a, b],
    )
    return h


@pytest.fixture(scope="module")
def regular(harness: Harness) -> Any:
    deps = harness.deps()
    result = attest_once(deps)
    return result, harness.store.get(result.sequence).attestation, deps


def test_every_mint_and_burn_is_matched_or_named(regular: Any, timeline: Timeline) -> None:
    result, att, _ = regular
    r = att.reconciliation
    assert r is not None
    t = {
        k: (x.matched, x.matched_sum // UNIT, x.unmatched, x.unmatched_sum // UNIT)
        for k, x in (
            ("mints", r.mints),
            ("burns", r.burns),
            ("credits", r.credits),
            ("debits", r.debits),
        )
    }
    assert t == {
        "mints": (4, 2800, 3, 777 + 400 + 650),  # carol, the second S-3, erin
        "burns": (1, 200, 1, 300),  # R-1 never paid
        "credits": (4, 2800, 1, 650),  # the day-0 credit, out of erin's window
        "debits": (1, 200, 1, 200),  # R-2 paid twice
    }
    assert r.ignored == 1  # the interest credit: listed, never matched
    assert r.overdue == 6 and r.overdue_sum == (777 + 400 + 650 + 300 + 650 + 200) * UNIT
    assert att.totals.status == "DEGRADED"
    assert any(x.startswith("reconciliation: 6 unmatched") for x in att.totals.reasons)
    assert result.reconciliation_reasons and len(result.overdue) == 6


def test_the_match_list_names_each_story(regular: Any, harness: Harness) -> None:
    result, _, _ = regular
    data = harness.store.matches(result.sequence)
    assert data is not None
    doc = parse_matches(data)
    flows = {f["id"]: f for f in doc["chain_flows"]}
    entries = {e["id"]: e for e in doc["bank_entries"]}
    by = {m["chain"]: (entries[m["bank"]], m["by"]) for m in doc["matches"]}
    unmatched = {u["id"] for u in doc["unmatched"]}

    def flow(kind: str, amount: int) -> list[dict[str, Any]]:
        return [
            f for f in flows.values() if f["kind"] == kind and f["amount"] == str(amount * UNIT)
        ]

    s1 = flow("mint", 1000)[0]
    assert s1["reference"] == "S-1" and by[s1["id"]][1] == "reference"
    assert by[flow("mint", 500)[0]["id"]][1] == "amount"
    assert flow("mint", 777)[0]["id"] in unmatched  # no money behind it
    r1 = flow("burn", 300)[0]
    assert r1["reference"] == "R-1" and r1["id"] in unmatched  # never paid out
    twice = flow("mint", 400)
    assert len(twice) == 2 and sum(f["id"] in unmatched for f in twice) == 1
    paid = [e for e in entries.values() if e["kind"] == "debit" and "R-2" in e["references"]]
    assert len(paid) == 2 and sum(e["id"] in unmatched for e in paid) == 1
    late = next(e for e in entries.values() if e["amount"] == str(650 * UNIT))
    assert late["id"] in unmatched and flow("mint", 650)[0]["id"] in unmatched
    assert by[flow("mint", 900)[0]["id"]][1] == "amount"
    interest = [e for e in entries.values() if e["ignored"] == "INTEREST"]
    assert len(interest) == 1 and interest[0]["id"] not in unmatched


def test_off_chain_liabilities_are_leaves_and_count(
    regular: Any, harness: Harness, timeline: Timeline
) -> None:
    result, att, _ = regular
    led = att.ledger
    assert led is not None and led.sources[0].id == "KDM-L-B"
    assert dict(led.categories) == {
        "pending_redemption": 300 * UNIT,
        "pending_subscription": 0,
        "frozen": 25 * UNIT,
        "other_chain_supply": 1200 * UNIT,
    }
    assert [e.account for e in led.evidence] == ["ledger:kdm:F-1", "ledger:kdm:tron"]
    supply = sum(timeline.at_end.values())
    assert att.chains[0].total_supply == supply
    assert att.totals.circulating_supply == supply + led.total
    assert att.liabilities.total == supply + led.total
    # no chain budget for them: the chain's budget stays within its own supply (DEGRADED)
    assert att.chains[0].budget is not None and att.chains[0].budget <= supply
    proof = harness.store.tree(result.sequence).prove("ledger:kdm:R-1")
    verify_inclusion(proof)
    assert proof.balance == 300 * UNIT


def test_an_alert_is_raised_for_the_overdue_flows(regular: Any) -> None:
    result, _, _ = regular
    alerter = Alerter(stale_after_s=3600, publication_lag_blocks=10)
    alerter.reconciliation(result)
    assert [a.kind for a in alerter.raised] == ["reconciliation"]
    assert len(alerter.raised[0].details["new_overdue"]) == 6
    alerter.reconciliation(result)  # the same overdue items: told once
    assert len(alerter.raised) == 1


def test_verify_rechecks_the_list_against_statements_and_chain(
    regular: Any, harness: Harness, timeline: Timeline, tmp_path: Path
) -> None:
    from por.cli.flows import read_entries, read_flows

    result, att, _ = regular
    data = harness.store.matches(result.sequence)
    assert data is not None
    for name, doc in timeline.statements:
        (tmp_path / name).write_bytes(doc)
    payload = att.to_bytes()
    ok = check_reconciliation(
        att,
        Deferred(name="matches", load=lambda: data),
        entries=Deferred(name="st", load=lambda: read_entries([str(tmp_path)], data, payload)),
        flows=Deferred(
            name="rpc", load=lambda: read_flows({"eip155:31337": timeline.node.url}, data)
        ),
    )
    assert ok.status == "pass", ok.detail
    assert "statements re-read, chains re-read" in ok.detail
    # a list that hides the second payout of R-2 is not the signed one, and not the rule's
    doc = loads_strict(data)
    doc["bank_entries"] = [
        e
        for e in doc["bank_entries"]
        if not ("R-2" in e["references"] and e["references"][0] == "HT3002")
    ]
    from por.core.canonical import canonical_bytes

    bad = check_reconciliation(att, Deferred(name="forged", load=lambda: canonical_bytes(doc)))
    assert bad.status == "fail" and "not the one the attestation signs" in bad.detail


def test_as_of_between_the_batches_equals_the_ledger_then(
    regular: Any, harness: Harness, timeline: Timeline
) -> None:
    _, _, deps = regular
    result = attest_once(deps, as_of=timeline.as_of)
    stored = harness.store.get(result.sequence)
    att = stored.attestation
    assert att.kind == "point-in-time" and stored.kind == "point-in-time"
    assert att.as_of == timeline.as_of
    assert att.point_in_time is not None
    assert att.point_in_time.chains[0].source == "archive-state"
    chain = att.chains[0]
    assert chain.block.time <= timeline.as_of
    assert chain.total_supply == sum(timeline.at_as_of.values())
    tree = harness.store.tree(result.sequence)
    leaves = {x["account"]: int(x["balance"]) for x in tree.export_leaves()}
    want = {f"eip155:31337:{a}": b for a, b in timeline.at_as_of.items()}
    want |= {"ledger:kdm:R-1": 300 * UNIT, "ledger:kdm:tron": 1000 * UNIT}  # export A
    assert leaves == want
    # custodians: only statements dated at or before the as-of (day 1 counts, day 0 is
    # superseded by it)
    assert {r.statement.id for r in att.reserves if r.eligible_value} == {
        f"HTBK-STMT-{timeline.d0 + timedelta(days=1):%Y%m%d}-4471"
    }
    assert {r.statement.id for r in att.reserves} == {
        f"HTBK-STMT-{timeline.d0 + timedelta(days=k):%Y%m%d}-4471" for k in (0, 1)
    }
    # flows up to then: carol and R-1 are pending (not overdue), the day-0 credit is overdue
    r = att.reconciliation
    assert r is not None and (r.mints.unmatched, r.burns.unmatched, r.overdue) == (1, 1, 1)
    # never the oracle's latest
    assert harness.store.latest_regular() is not None
    assert harness.store.latest_regular().sequence == result.sequence - 1  # type: ignore[union-attr]
    assert result.publications == ()


def test_as_of_in_the_future_or_before_deployment_is_refused(
    regular: Any, harness: Harness, timeline: Timeline
) -> None:
    _, _, deps = regular
    before = harness.store.latest().sequence  # type: ignore[union-attr]
    with pytest.raises(InputError, match="in the future"):
        attest_once(deps, as_of=timeline.now + timedelta(hours=1))
    genesis = datetime(timeline.d0.year, timeline.d0.month, timeline.d0.day, 3, tzinfo=HKT)
    with pytest.raises(AsOfRefusedError, match="before the token's deployment"):
        attest_once(deps, as_of=genesis.astimezone(UTC))
    assert harness.store.latest().sequence == before  # type: ignore[union-attr]


class PrunedProxy:
    """Forwards JSON-RPC to anvil, but answers state reads pinned to a block more than 16
    blocks below the head as a pruned geth does: `missing trie node`."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                out = proxy.handle(json.loads(body))
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _up(self, method: str, params: list[Any]) -> Any:
        r = requests.post(
            self.upstream,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            timeout=10,
        )
        return r.json()

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        method, params = req["method"], req.get("params") or []
        if method in ("eth_call", "eth_getCode", "eth_getBalance") and isinstance(params[-1], dict):
            block = self._up("eth_getBlockByHash", [params[-1]["blockHash"], False])["result"]
            head = int(self._up("eth_blockNumber", [])["result"], 16)
            if head - int(block["number"], 16) > 16:
                return {
                    "jsonrpc": "2.0",
                    "id": req["id"],
                    "error": {
                        "code": -32000,
                        "message": f"missing trie node {'7c' * 32} (path ) state "
                        f"{block['stateRoot']} is not available",
                    },
                }
        out = self._up(method, params)
        out["id"] = req["id"]
        return out

    def close(self) -> None:
        self.server.shutdown()


def test_a_pruned_node_is_a_clear_error_never_todays_figures(
    regular: Any, harness: Harness, timeline: Timeline
) -> None:
    proxy = PrunedProxy(timeline.node.url)
    try:
        reader = _reader(timeline, proxy.url)
        reader.snapshot()  # today's state: served
        with pytest.raises(EvmHistoricalStateError) as e:
            reader.snapshot_at(timeline.as_of)
        msg = str(e.value)
        assert "archive node" in msg and "missing trie node" in msg
        assert isinstance(e.value, HistoricalStateError)
        h = Harness(
            root=harness.root,
            chains=[reader],
            clock=Clock(timeline.now),
            flows_start=harness.flows_start,
            documents=list(timeline.statements),
            ledger_files=list(harness.ledger_files),
            store=harness.store,
        )
        before = harness.store.latest().sequence  # type: ignore[union-attr]
        with pytest.raises(EvmHistoricalStateError):
            attest_once(h.deps(), as_of=timeline.as_of)
        assert harness.store.latest().sequence == before  # type: ignore[union-attr]
    finally:
        proxy.close()


def test_a_match_list_that_does_not_follow_the_rule_fails(regular: Any, harness: Harness) -> None:
    from por.core.canonical import canonical_bytes
    from por.core.flows import check_matches

    result, att, _ = regular
    data = harness.store.matches(result.sequence)
    assert data is not None
    doc = loads_strict(data)
    doc["matches"] = doc["matches"][1:]  # claim one matched pair is not matched
    forged = canonical_bytes(doc)
    recon = att.reconciliation
    assert recon is not None
    import dataclasses
    import hashlib

    signed = dataclasses.replace(recon, matches_sha256=hashlib.sha256(forged).hexdigest())
    with pytest.raises(MismatchError, match="not what por-flows-v1 gives"):
        check_matches(signed, forged)
