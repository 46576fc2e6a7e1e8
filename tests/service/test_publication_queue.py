"""Publication is a durable queue (issue 12).

    round:        1      2      3         (restart)        4         5 (another writer)
    oracle A:     ✓      ✗ down ✗ behind 2  2 ✓ then 3 ✓     …         4 superseded by 5
    oracle B:     ✓      ✓      ✓                           ✓

Before: a failure was written as "failed: …" into a String(32) status (PostgreSQL refused
it and the run aborted before the other targets), and only the latest round was caught
up, once, at start: round 2 stayed unpublished on A for good.

The oracles here keep the ReserveOracle's rule: a round's sequence must be higher than
the one it holds (por/oracle/ReserveOracle.sol); a lower one is refused for good.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from por.demo.fake_chain import FakeChainReader, fake_holders
from por.errors import PublishError
from por.oracle.base import PublishReceipt, PublishSupersededError
from por.service.alerts import PublicationMetrics
from por.service.run import RunDeps, attest_once, catch_up_publications
from por.store import Store
from tests.service.test_attest_once import (
    CHAINS,
    ISSUER,
    LOG_KEY,
    ORIGIN,
    TOKEN,
    Clock,
    StaticReserves,
    cash_line,
)
from tests.store.pg import PG_URL, pg_schema_url


@dataclass
class RuleOracle:
    """An oracle that takes only increasing sequences; `down` makes it unreachable."""

    chain_id: str
    contract_label: str = "0x" + "0c" * 20
    rounds: dict[int, str] = field(default_factory=dict)
    down: bool = False

    def publish(self, doc: Mapping[str, Any], digest_hex: str) -> PublishReceipt:
        if self.down:
            raise PublishError(
                "eth_sendRawTransaction: no answer (ConnectTimeout: timed out after 10 s "
                "connecting to https://rpc.example/v1/" + "k" * 40 + ")",
                where=self.chain_id,
            )
        seq = int(doc["sequence"])
        if seq in self.rounds:
            status = "already_published"
        elif self.rounds and max(self.rounds) > seq:
            raise PublishSupersededError(
                f"sequence {seq} was skipped: the oracle is already at sequence {max(self.rounds)}",
                newer=max(self.rounds),
                where=self.chain_id,
            )
        else:
            status = "published"
            self.rounds[seq] = digest_hex
        return PublishReceipt(
            chain_id=self.chain_id,
            sequence=seq,
            tx_hash="0x" + digest_hex,
            block_number=100 + seq,
            status=status,  # type: ignore[arg-type]
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'por.db'}"
        return
    if not PG_URL:
        pytest.skip("POR_TEST_PG_URL is not set (no PostgreSQL)")
    with pg_schema_url() as u:
        yield u


def _deps(store: Store, clock: Clock, publishers: list[RuleOracle]) -> RunDeps:
    holders = {c: fake_holders(c, 10) for c in CHAINS}
    readers = [
        FakeChainReader(chain_id=c, token_address=f"{c}:0x{'ab' * 20}", holders=h, clock=clock)
        for c, h in holders.items()
    ]
    supply = sum(sum(h.values()) for h in holders.values())
    seeds = (hashlib.sha256(b"round %d" % i).digest() for i in range(1, 1000))
    return RunDeps(
        token=TOKEN,
        chains=readers,
        reserves=StaticReserves(lines=(cash_line(supply * 11 // 10),)),
        store=store,
        signers=[ISSUER],
        checkpoint_signer=LOG_KEY,
        origin=ORIGIN,
        clock=clock,
        random_bytes=lambda n: next(seeds)[:n],
        publishers=list(publishers),
        publish_retry_base_s=60,
        publish_retry_max_s=600,
    )


def test_every_round_reaches_every_oracle_in_order_across_outage_and_restart(
    url: str, tmp_path: Path
) -> None:
    def open_store() -> Store:
        return Store.open(
            url, data_dir=tmp_path / "d", attestations_dir=tmp_path / "a", migrate=True
        )

    a, b = RuleOracle("eip155:1"), RuleOracle("eip155:56")
    clock = Clock()
    store = open_store()
    deps = _deps(store, clock, [a, b])
    attest_once(deps)
    a.down = True
    r2 = attest_once(deps)
    assert [(o.chain_id, o.status) for o in r2.publications] == [
        ("eip155:1", "pending"),
        ("eip155:56", "published"),
    ]  # A's failure (a long reason) did not stop B, and the round was recorded
    row = store.publication("eip155:1", 2)
    assert row is not None and row.status == "pending" and "ConnectTimeout" in (row.error or "")
    r3 = attest_once(deps)  # A's round 2 waits for its retry time; round 3 waits behind it
    assert {(o.chain_id, o.sequence, o.status) for o in r3.publications} == {
        ("eip155:1", 2, "pending"),
        ("eip155:1", 3, "pending"),
        ("eip155:56", 3, "published"),
    }
    assert sorted(a.rounds) == [1] and sorted(b.rounds) == [1, 2, 3]
    store.close()

    # restart: a new store and run on the same database; A is back; the backoff passed
    a.down = False
    clock.now += timedelta(minutes=5)
    store = open_store()
    deps = _deps(store, clock, [a, b])
    out = catch_up_publications(deps)
    assert [(o.chain_id, o.sequence, o.status) for o in out] == [
        ("eip155:1", 2, "published"),
        ("eip155:1", 3, "published"),
    ]
    assert list(a.rounds) == [1, 2, 3]  # oldest first, none skipped
    assert store.publication_queue(["eip155:1", "eip155:56"]) == []
    assert store.publication("eip155:1", 2).attempts == 1  # type: ignore[union-attr]

    # round 4 cannot reach A; meanwhile A's oracle takes round 5 from elsewhere
    a.down = True
    attest_once(deps)
    a.down = False
    a.rounds[5] = "ff" * 32
    clock.now += timedelta(minutes=5)
    out = catch_up_publications(deps)
    assert [(o.chain_id, o.sequence, o.status, o.detail) for o in out] == [
        ("eip155:1", 4, "superseded", "superseded by sequence 5")
    ]
    row = store.publication("eip155:1", 4)
    assert row is not None and (row.status, row.superseded_by) == ("superseded", 5)
    assert store.publication_queue(["eip155:1", "eip155:56"]) == []
    # reported: in /metrics (rounds per oracle and status) ...
    metrics = PublicationMetrics(store.publication_state.counts, lambda: {"eip155:1": 0})
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in metrics.collect()
        for s in family.samples
    }
    assert (
        samples[("por_publication_rounds", (("chain", "eip155:1"), ("status", "superseded")))] == 1
    )
    assert (
        samples[("por_publication_rounds", (("chain", "eip155:1"), ("status", "published")))] == 3
    )
    # ... and in /v1/oracles (the latest round per oracle, why it is not published)
    latest = {p.chain_id: p for p in store.publications()}
    assert (latest["eip155:1"].sequence, latest["eip155:1"].superseded_by) == (4, 5)
    store.close()
