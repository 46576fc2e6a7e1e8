"""Two anvil nodes for the whole EVM session: chain 1 (Ethereum) and chain 56 (BNB Chain).

Each gets the StableToken, a ReserveOracle (3 attestors, threshold 2) and a PorConsumer.
Every EVM test module is marked `xdist_group("evm")`, so one xdist worker owns the nodes;
the fixture stops them at the end of the session.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from eth_account import Account

from por.demo.anvil import (
    AnvilNode,
    deploy_consumer,
    deploy_oracle,
    deploy_stablecoin,
)

ATTESTOR_KEYS = ["0x" + bytes([0xA0 + i]).hex() * 32 for i in range(3)]
NOT_ATTESTOR_KEY = "0x" + "ee" * 32
HEARTBEAT_S = 24 * 3600


@dataclass
class World:
    node: AnvilNode
    token: str
    oracle: str
    consumer: str
    issuer: str
    treasury: str
    sender_key: str  # pays gas for submit; not an attestor
    attestor_keys: list[str] = field(default_factory=lambda: list(ATTESTOR_KEYS))

    @property
    def chain_id(self) -> int:
        return self.node.chain_id


@dataclass
class Rounds:
    """Hands out sequence numbers and as-of times shared by both chains (one attestation
    is published to every chain with the same sequence)."""

    start_s: int = field(default_factory=lambda: int(time.time()) - 3000)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next(self) -> tuple[int, int]:
        seq = next(self.counter)
        return seq, self.start_s + seq


def _world(chain_id: int) -> World:
    node = AnvilNode(chain_id=chain_id, gas_limit=100_000_000).start()
    w3 = node.w3
    issuer, treasury = node.accounts[0], node.accounts[1]
    token = deploy_stablecoin(w3, issuer=issuer)
    oracle = deploy_oracle(
        w3,
        owner=issuer,
        attestors=[Account.from_key(k).address for k in ATTESTOR_KEYS],
        threshold=2,
        decimals=6,
    )
    consumer = deploy_consumer(w3, feed=oracle, token=token, heartbeat_s=HEARTBEAT_S, sender=issuer)
    return World(
        node=node,
        token=token,
        oracle=oracle,
        consumer=consumer,
        issuer=issuer,
        treasury=treasury,
        sender_key=node.private_keys[9],
    )


@pytest.fixture(scope="session")
def worlds() -> Iterator[dict[int, World]]:
    made: dict[int, World] = {}
    try:
        for cid in (1, 56):
            made[cid] = _world(cid)
        yield made
    finally:
        for w in made.values():
            w.node.stop()


@pytest.fixture(scope="session")
def rounds() -> Rounds:
    return Rounds()
