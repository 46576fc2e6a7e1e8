"""attest_once writes per-chain budgets with the configured policy; publish_all gives a
publisher that defers (a budget increase waiting for other chains) a second turn."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from por.core.attestation import AllocationPolicy
from por.core.budgets import budgets_for, verify_budgets
from por.oracle.base import PublishDeferredError, PublishReceipt
from por.service.run import attest_once
from tests.service.test_attest_once import CHAINS, MemoryPublisher, Run, run

__all__ = ["run"]  # the fixture, imported for pytest


def test_every_attestation_carries_budgets(run: Run) -> None:
    r = attest_once(run.deps)
    att = run.store.get(r.sequence).attestation
    assert att.allocation == AllocationPolicy()
    assert [c.chain_id for c in att.chains] == list(CHAINS)
    assert all(c.budget is not None and c.budget >= c.circulating_supply for c in att.chains)
    assert sum(c.budget or 0 for c in att.chains) <= att.totals.eligible_reserves
    verify_budgets(att)


def test_the_configured_policy_is_declared_and_applied(run: Run) -> None:
    policy = AllocationPolicy(weights=((CHAINS[0], 1), (CHAINS[1], 0)), headroom_share_bps=5000)
    run.deps.allocation = policy
    r = attest_once(run.deps)
    att = run.store.get(r.sequence).attestation
    assert att.allocation == policy
    assert tuple(c.budget for c in att.chains) == budgets_for(att, policy)
    # chain 56 has weight 0: it gets its circulating supply (and no headroom)
    assert att.chains[1].budget == att.chains[1].circulating_supply + att.chains[1].excluded_total


@dataclass
class Deferring:
    """Defers while `waiting_for` has not published the sequence yet."""

    chain_id: str
    waiting_for: MemoryPublisher
    times: int = 0
    contract_label: str = "0x" + "0d" * 20

    def publish(self, doc: Mapping[str, Any], digest_hex: str) -> PublishReceipt:
        if int(doc["sequence"]) not in self.waiting_for.published:
            self.times += 1
            raise PublishDeferredError("waiting for the other chain", where=self.chain_id)
        return PublishReceipt(
            chain_id=self.chain_id,
            sequence=int(doc["sequence"]),
            tx_hash="0x" + digest_hex,
            block_number=1,
            status="published",
        )


def test_a_deferred_publisher_gets_a_second_turn(run: Run) -> None:
    other = MemoryPublisher(chain_id=CHAINS[1])
    first = Deferring(chain_id=CHAINS[0], waiting_for=other)
    run.deps.publishers = [first, other]
    r = attest_once(run.deps)
    assert first.times == 1  # deferred once, then published after the other one
    assert [(p.chain_id, p.ok, p.detail) for p in r.publications] == [
        (CHAINS[0], True, "published"),
        (CHAINS[1], True, "published"),
    ]


def test_deferring_twice_is_recorded_as_a_failure(run: Run) -> None:
    never = MemoryPublisher(chain_id="eip155:137")
    stuck = Deferring(chain_id=CHAINS[0], waiting_for=never)
    run.deps.publishers = [stuck]
    r = attest_once(run.deps)
    assert stuck.times == 2
    (outcome,) = r.publications
    assert not outcome.ok and "waiting for the other chain" in outcome.detail
