"""An in-memory ChainReader for tests and for configurations without a node.

It returns exactly the state it was given (holders, excluded accounts, supply), so tests
can stage a supply mismatch or a failing chain without a network. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from por.chains.base import BlockRef, ChainSnapshot, ExcludedAccount, Holders, SupplyMismatch
from por.errors import ChainError


@dataclass(slots=True)
class FakeChainReader:
    chain_id: str
    token_address: str
    holders: dict[str, int]
    excluded: Sequence[ExcludedAccount] = ()
    decimals: int = 6
    block_number: int = 1
    total_supply: int | None = None  # None: exactly the sum (no mismatch)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    fail_with: str | None = None  # a message: snapshot() raises ChainError

    def snapshot(self) -> ChainSnapshot:
        if self.fail_with:
            raise ChainError(self.fail_with, where=f"{self.chain_id} fake")
        indexed = sum(self.holders.values()) + sum(e.balance for e in self.excluded)
        supply = indexed if self.total_supply is None else self.total_supply
        mismatch = (
            None if supply == indexed else SupplyMismatch(total_supply=supply, indexed_sum=indexed)
        )
        self.block_number += 1
        return ChainSnapshot(
            chain_id=self.chain_id,
            token_address=self.token_address,
            decimals=self.decimals,
            block=BlockRef(
                number=self.block_number, hash=f"{self.block_number:064x}", time=self.clock()
            ),
            total_supply=supply,
            holders=Holders.from_items((a, b) for a, b in self.holders.items() if b > 0),
            excluded=tuple(self.excluded),
            mismatch=mismatch,
        )


def fake_holders(
    chain_id: str, count: int, *, seed: int = 1, max_balance: int = 10_000_000_000
) -> dict[str, int]:
    """Deterministic pseudo-random EVM-style holders (no randomness source needed)."""
    import hashlib

    out: dict[str, int] = {}
    for i in range(count):
        h = hashlib.sha256(f"{seed}:{chain_id}:{i}".encode()).digest()
        out[f"{chain_id}:0x{h[:20].hex()}"] = int.from_bytes(h[20:28], "big") % max_balance + 1
    return out
