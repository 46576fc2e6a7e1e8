"""BudgetGate on its own (no node): when a round that raises a chain's budget may go out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pytest

from por.errors import ConfigError, PublishError
from por.oracle.base import PublishDeferredError
from por.oracle.evm_publisher import BudgetGate, EvmPublisher
from por.oracle.report import OracleReport
from tests.evm.helpers import make_doc


@dataclass
class Peer:
    """What the gate reads of a publisher: its chain and the answer on that chain now."""

    chain_id: str
    answer: int | None  # None: the chain cannot be read
    gate: Any = None

    def current_budget(self) -> int:
        if self.answer is None:
            raise PublishError("connection refused", where=self.chain_id)
        return self.answer


def _gate(*peers: Peer) -> BudgetGate:
    gate = BudgetGate()
    for p in peers:
        gate.join(cast(EvmPublisher, p))
    return gate


# 1,000,000 of reserves; chain 1 circulates 300,000, chain 56 600,000, Solana 50,000.
DOC, DIGEST = make_doc(
    sequence=5,
    as_of=1_795_000_000,
    reserves=1_000_000,
    supply=[300_000, 600_000, 50_000],
    chains=("eip155:1", "eip155:56", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"),
)
REPORT = OracleReport.from_attestation(DOC, DIGEST)
B = {c.chain_id: c.budget for c in REPORT.chains}


def test_budgets_of_the_report() -> None:
    # H = 50,000 shared 300:600:50 -> 15,789 / 31,578 / 2,631 (floors)
    assert B == {
        "eip155:1": 315_789,
        "eip155:56": 631_578,
        "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp": 52_631,
    }


def test_a_budget_that_does_not_grow_never_waits() -> None:
    # even while the other chain still answers far more than it should
    gate = _gate(Peer("eip155:1", B["eip155:1"] + 1), Peer("eip155:56", 900_000))
    gate.check(REPORT, "eip155:1")


def test_an_increase_that_fits_goes_out() -> None:
    gate = _gate(Peer("eip155:1", 100_000), Peer("eip155:56", B["eip155:56"]))
    gate.check(REPORT, "eip155:1")  # 315,789 + 631,578 + 52,631 (Solana, from the doc)


def test_an_increase_waits_for_the_other_chains() -> None:
    # Chain 56 still answers its old, larger budget: 315,789 + 700,000 + 52,631 > 1,000,000.
    gate = _gate(Peer("eip155:1", 100_000), Peer("eip155:56", 700_000))
    with pytest.raises(PublishDeferredError) as ei:
        gate.check(REPORT, "eip155:1")
    msg = str(ei.value)
    assert "grows to 315789" in msg and "1068420 > eligible reserves 1000000" in msg
    assert "(not published)" in msg  # Solana has no oracle: the document's budget counts


def test_an_unreadable_peer_defers_the_increase() -> None:
    gate = _gate(Peer("eip155:1", 0), Peer("eip155:56", None))
    with pytest.raises(PublishDeferredError, match="cannot read the budgets in force"):
        gate.check(REPORT, "eip155:1")


def test_one_publisher_per_chain() -> None:
    gate = _gate(Peer("eip155:1", 0))
    with pytest.raises(ConfigError, match="two publishers"):
        gate.join(cast(EvmPublisher, Peer("eip155:1", 0)))
