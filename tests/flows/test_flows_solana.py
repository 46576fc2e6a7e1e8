"""Solana on LiteSVM: mint-to/burn instructions reconciled, a frozen account still counted,
and attestations as of a past time from the recorded snapshots.

    mintTo A 1000 (memo S-50)   <- credit 1000 "S-50"      matched by reference
    mintTo B  300               <- credit  300             matched by amount and day
    mintTo C  200, then C is FROZEN (HKMA: frozen tokens stay in circulation)
    burn   A  100 (memo R-50)   <- debit 100 "R-50"        matched by reference
    ---- regular run 1 (snapshot recorded) ---- 20 minutes ---- regular run 2 ----
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from solders.keypair import Keypair

from por.chains.base import HistoricalStateError
from por.chains.solana import SolanaReader
from por.core.mst import verify_inclusion
from por.demo.solana_sim import SolanaSim
from por.demo.statements import camt053
from por.service.run import attest_once
from tests.flows.helpers import ACCOUNT, HKT, UNIT, Clock, Harness

pytestmark = [pytest.mark.xdist_group("flows-solana")]


@dataclass
class World:
    sim: SolanaSim
    mint: str
    owners: dict[str, Keypair]
    harness: Harness
    run1: Any
    run2: Any


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    start = int((datetime.now(UTC) - timedelta(days=3)).timestamp())
    with SolanaSim(start_time_s=start) as sim:
        mint = sim.create_mint(decimals=6, freeze_authority=True)
        owners = {n: Keypair() for n in "ABC"}
        accounts = {n: sim.create_token_account(mint, k.pubkey()) for n, k in owners.items()}
        sim.airdrop(owners["A"].pubkey(), 10**9)
        sim.mint_to(mint, accounts["A"], 1000 * UNIT, memo="S-50")
        sim.mint_to(mint, accounts["B"], 300 * UNIT)
        sim.mint_to(mint, accounts["C"], 200 * UNIT)
        sim.freeze(mint, accounts["C"])
        sim.burn(mint, accounts["A"], owners["A"], 100 * UNIT, memo="R-50")
        _, t = sim.block(sim.slot)
        day = datetime.fromtimestamp(t, HKT).date()
        statements = [
            (
                "day-1.xml",
                camt053(
                    account=ACCOUNT, day=day - timedelta(days=1), opening_minor=10**10, entries=[]
                ),
            ),
            (
                "day.xml",
                camt053(
                    account=ACCOUNT,
                    day=day,
                    opening_minor=10**10,
                    entries=[
                        ("credit", 1000 * 100, "SUBSCRIPTION S-50", "HS0001"),
                        ("credit", 300 * 100, "SUBSCRIPTION", "HS0002"),
                        ("credit", 200 * 100, "SUBSCRIPTION", "HS0003"),
                        ("debit", 100 * 100, "REDEMPTION R-50", "HS0004"),
                    ],
                ),
            ),
        ]
        reader = SolanaReader(sim.url, str(mint), chain_id=sim.chain_id, collect_flows=True)
        end_of_day = datetime(day.year, day.month, day.day, tzinfo=HKT) + timedelta(days=1)
        h = Harness(
            root=tmp_path_factory.mktemp("sol"),
            chains=[reader],
            clock=Clock(end_of_day.astimezone(UTC) + timedelta(hours=1)),
            flows_start=datetime.fromtimestamp(start, UTC) - timedelta(hours=1),
            documents=statements,
        )
        deps = h.deps()
        run1 = attest_once(deps)
        sim.advance_slots(3000)  # 20 minutes of the sim's clock
        sim.mint_to(mint, accounts["B"], 50 * UNIT)
        h.clock.now += timedelta(minutes=30)
        run2 = attest_once(deps)
        yield World(sim=sim, mint=str(mint), owners=owners, harness=h, run1=run1, run2=run2)
        reader.close()


def _caip(w: World, name: str) -> str:
    return f"{w.sim.chain_id}:{w.owners[name].pubkey()}"


def test_mint_to_and_burn_instructions_are_reconciled(world: World) -> None:
    att = world.harness.store.get(world.run1.sequence).attestation
    r = att.reconciliation
    assert r is not None
    assert (r.mints.matched, r.mints.unmatched, r.burns.matched, r.burns.unmatched) == (3, 0, 1, 0)
    assert (r.credits.matched, r.credits.unmatched, r.debits.matched) == (3, 0, 1)
    assert att.totals.status == "FULLY_BACKED", att.totals.reasons
    doc = world.harness.store.matches(world.run1.sequence)
    assert doc is not None and b'"reference":"S-50"' in doc and b'"reference":"R-50"' in doc


def test_a_frozen_account_stays_counted(world: World) -> None:
    att = world.harness.store.get(world.run1.sequence).attestation
    assert att.chains[0].total_supply == 1400 * UNIT  # C's 200 are frozen, not gone
    proof = world.harness.store.tree(world.run1.sequence).prove(_caip(world, "C"))
    verify_inclusion(proof)
    assert proof.balance == 200 * UNIT


def test_a_fresh_unmatched_mint_is_pending_not_degraded(world: World) -> None:
    att = world.harness.store.get(world.run2.sequence).attestation
    r = att.reconciliation
    assert r is not None and (r.mints.unmatched, r.mints.unmatched_sum, r.overdue) == (
        1,
        50 * UNIT,
        0,
    )
    assert att.totals.status == "FULLY_BACKED"


def test_as_of_uses_the_nearest_recorded_snapshot_and_says_how_far(world: World) -> None:
    store = world.harness.store
    first = store.get(world.run1.sequence).attestation.chains[0]
    when = first.block.time + timedelta(minutes=10)
    deps = world.harness.deps()
    pit = attest_once(deps, as_of=when)
    att = store.get(pit.sequence).attestation
    assert att.kind == "point-in-time" and att.point_in_time is not None
    c = att.point_in_time.chains[0]
    assert (c.source, c.gap_s) == ("recorded-snapshot", 600)
    assert att.chains[0].block.number == first.block.number
    assert att.chains[0].total_supply == 1400 * UNIT  # the 50 minted later are not there
    assert store.latest_regular().sequence == world.run2.sequence  # type: ignore[union-attr]
    # a limit below the gap makes it DEGRADED, naming the distance
    deps.max_snapshot_gap_s = 60
    again = store.get(attest_once(deps, as_of=when).sequence).attestation
    assert any("600 s before the as-of" in r for r in again.totals.reasons)


def test_as_of_before_any_recorded_snapshot_is_refused(world: World) -> None:
    first = world.harness.store.get(world.run1.sequence).attestation.chains[0]
    with pytest.raises(HistoricalStateError, match="no snapshot recorded"):
        attest_once(world.harness.deps(), as_of=first.block.time - timedelta(seconds=1))
