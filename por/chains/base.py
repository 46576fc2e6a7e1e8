"""What a chain reader hands to an attestation run, and the protocol every reader follows.

A snapshot is taken at ONE finalized block (EVM) or slot (Solana). Holders are keyed by
CAIP-10 account id; amounts are int base units. Excluded accounts (issuer treasury,
bridge escrow) are reported apart and are not liabilities. A snapshot whose indexed
holder balances do not add up to the total supply carries a SupplyMismatch, which the
run turns into a DEGRADED attestation: it is never silently "fixed".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

EXCLUSION_REASONS = ("treasury", "bridge_escrow")


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockRef:
    """The finalized block (EVM) or slot (Solana) a snapshot is pinned to."""

    number: int
    hash: str  # lowercase hex without 0x (EVM) or base58 blockhash (Solana)
    time: datetime  # UTC


@dataclass(frozen=True, slots=True, kw_only=True)
class ExcludedAccount:
    account: str  # CAIP-10
    balance: int  # base units
    reason: str  # one of EXCLUSION_REASONS


@dataclass(frozen=True, slots=True, kw_only=True)
class BalanceDifference:
    """A sampled holder whose indexed balance is not what the token's balanceOf says."""

    account: str  # CAIP-10
    indexed: int
    on_chain: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SupplyMismatch:
    """The index does not reconcile with the chain: the indexed holder balances (incl.
    excluded) do not add up to the total supply, or sampled holders' balances differ
    from the chain's own answer (`sampled`, possibly with equal sums)."""

    total_supply: int
    indexed_sum: int
    sampled: tuple[BalanceDifference, ...] = ()

    @property
    def difference(self) -> int:
        return self.total_supply - self.indexed_sum

    def reason(self, chain_id: str) -> str:
        parts = []
        if self.difference:
            parts.append(
                f"indexed balances sum to {self.indexed_sum} but totalSupply is "
                f"{self.total_supply} (difference {self.difference})"
            )
        if self.sampled:
            shown = ", ".join(
                f"{d.account} indexed {d.indexed} on chain {d.on_chain}" for d in self.sampled[:3]
            )
            more = f" and {len(self.sampled) - 3} more" if len(self.sampled) > 3 else ""
            parts.append(
                f"balanceOf differs from the index for {len(self.sampled)} sampled "
                f"holder(s): {shown}{more}"
            )
        return f"{chain_id}: " + "; ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointNote:
    """What the quorum noticed about one RPC endpoint (outvoted, down, wrong chain...)."""

    endpoint: str
    problem: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainSnapshot:
    chain_id: str  # CAIP-2, e.g. "eip155:1", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
    token_address: str  # CAIP-10 id of the token contract / mint
    decimals: int
    block: BlockRef
    total_supply: int
    holders: Mapping[str, int]  # CAIP-10 -> balance > 0, excluded accounts NOT included
    excluded: tuple[ExcludedAccount, ...] = ()
    mismatch: SupplyMismatch | None = None
    endpoint_notes: tuple[EndpointNote, ...] = field(default=())

    @property
    def excluded_total(self) -> int:
        return sum(e.balance for e in self.excluded)

    @property
    def circulating_supply(self) -> int:
        """Supply that is a liability: total minus treasury and bridge escrow."""
        return self.total_supply - self.excluded_total


@runtime_checkable
class ChainReader(Protocol):
    """One chain's source of truth for an attestation run."""

    @property
    def chain_id(self) -> str:
        """CAIP-2 id of the chain this reader reads."""
        ...

    def snapshot(self) -> ChainSnapshot:
        """Read supply and every holder at one finalized block; raise ChainError on failure."""
        ...
