"""What a chain reader hands to an attestation run, and the protocol every reader follows.

A snapshot is taken at ONE finalized block (EVM) or slot (Solana). Holders are keyed by
CAIP-10 account id; amounts are int base units. Excluded accounts (issuer treasury,
bridge escrow) are reported apart and are not liabilities. A snapshot whose indexed
holder balances do not add up to the total supply carries a SupplyMismatch, which the
run turns into a DEGRADED attestation: it is never silently "fixed".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # numpy loads with the first Holders, never with this module
    from por.core.mst_build import AccountColumn, BalanceWords

from por.core.flows import ChainFlow
from por.errors import ChainError

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


class Holders(Mapping[str, int]):
    """A snapshot's holders as columns: CAIP-10 ids checked once into one ASCII blob and
    balances as 64-bit words (por.core.mst_build), not a dict of str -> Python int.

    At 10^7 holders a dict costs ~1.8 GB and every id is checked again by the tree; these
    columns cost ~0.7 GB and go to the tree as they are (`columns`). It is a read-only
    Mapping for everything else: `len`, iteration in the reader's order, `items()`
    streamed; the first lookup by account builds an index (meant for tests and tools).
    """

    __slots__ = ("_accounts", "_balances", "_index")

    def __init__(self, accounts: AccountColumn, balances: BalanceWords) -> None:
        if len(accounts) != len(balances):
            raise ValueError(f"{len(accounts)} accounts but {len(balances)} balances")
        self._accounts = accounts
        self._balances = balances
        self._index: dict[str, int] | None = None

    @classmethod
    def from_items(cls, items: Iterable[tuple[str, int]], *, where: str = "holders") -> Holders:
        """(CAIP-10 id, balance) pairs streamed into columns; FormatError / AmountError
        name `where[i]` / `balances[i]` for a bad id or balance."""
        from por.core.mst_build import encode_holders

        return cls(*encode_holders(items, where=where))

    @property
    def columns(self) -> tuple[AccountColumn, BalanceWords]:
        """The checked columns, for the sum tree (por.service.run.build_tree)."""
        return self._accounts, self._balances

    @property
    def total(self) -> int:
        """The exact sum of the balances."""
        from por.core.mst_build import exact_total

        return exact_total(self._balances.lo, self._balances.hi)

    def __len__(self) -> int:
        return len(self._accounts)

    def __iter__(self) -> Iterator[str]:
        return iter(self._accounts)

    def __getitem__(self, account: str) -> int:
        if self._index is None:
            self._index = {a: i for i, a in enumerate(self._accounts)}
        return self._balances[self._index[account]]

    def items(self) -> Iterator[tuple[str, int]]:  # type: ignore[override]
        """(account, balance) in the reader's order, without building the index."""
        lo, hi = self._balances.lo, self._balances.hi
        for i, account in enumerate(self._accounts):
            yield account, int(lo[i]) | int(hi[i]) << 64

    def values(self) -> Iterator[int]:  # type: ignore[override]
        for _, balance in self.items():
            yield balance

    def __repr__(self) -> str:
        return f"Holders({len(self)} accounts)"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainSnapshot:
    chain_id: str  # CAIP-2, e.g. "eip155:1", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
    token_address: str  # CAIP-10 id of the token contract / mint
    decimals: int
    block: BlockRef
    total_supply: int
    holders: Holders  # CAIP-10 -> balance > 0, excluded accounts NOT included
    excluded: tuple[ExcludedAccount, ...] = ()
    mismatch: SupplyMismatch | None = None
    endpoint_notes: tuple[EndpointNote, ...] = field(default=())
    # Every mint and burn from `flows_from_block` up to `block` (only when the reader was
    # asked to collect them, for the flow reconciliation; docs/ledger.md §2).
    flows: tuple[ChainFlow, ...] = ()
    flows_from_block: int | None = None

    def __post_init__(self) -> None:
        # a plain mapping (tests, small fakes) becomes columns; readers pass Holders
        if not isinstance(self.holders, Holders):
            holders = Holders.from_items(self.holders.items())
            object.__setattr__(self, "holders", holders)

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


class HistoricalStateError(ChainError):
    """The node cannot serve the chain's state as of a past time (a pruned, non-archive
    node; or, for Solana, no recorded snapshot): an attestation as of that time is refused,
    never made of today's figures."""


class AsOfRefusedError(ChainError):
    """An as-of time the chain cannot be read at: in the future, or before the token existed."""


def snapshot_to_dict(s: ChainSnapshot) -> dict[str, object]:
    """A snapshot as JSON (recorded for chains whose nodes keep no history)."""
    from por.core.amounts import format_base_units
    from por.core.times import format_time

    return {
        "format": "por-chain-snapshot-v1",
        "chain_id": s.chain_id,
        "token": s.token_address,
        "decimals": s.decimals,
        "block": {
            "number": s.block.number,
            "hash": s.block.hash,
            "time": format_time(s.block.time),
        },
        "total_supply": format_base_units(s.total_supply),
        "holders": {a: format_base_units(b) for a, b in sorted(s.holders.items())},
        "excluded": [
            {"account": e.account, "balance": format_base_units(e.balance), "reason": e.reason}
            for e in s.excluded
        ],
        "mismatch": None
        if s.mismatch is None
        else {
            "total_supply": format_base_units(s.mismatch.total_supply),
            "indexed_sum": format_base_units(s.mismatch.indexed_sum),
        },
        "flows": None if s.flows_from_block is None else [f.to_dict() for f in s.flows],
        "flows_from_block": s.flows_from_block,
    }


def snapshot_from_dict(d: Mapping[str, object], *, where: str) -> ChainSnapshot:
    """The inverse of `snapshot_to_dict`; a FormatError names what is wrong."""
    from typing import Any

    from por.core.amounts import parse_base_units
    from por.core.times import parse_time
    from por.errors import FormatError

    o: Any = d
    try:
        if o["format"] != "por-chain-snapshot-v1":
            raise FormatError("not a por-chain-snapshot-v1 document", where=where)
        mm = o["mismatch"]
        flows = o["flows"]
        return ChainSnapshot(
            chain_id=o["chain_id"],
            token_address=o["token"],
            decimals=int(o["decimals"]),
            block=BlockRef(
                number=int(o["block"]["number"]),
                hash=o["block"]["hash"],
                time=parse_time(o["block"]["time"], where=f"{where}.block.time"),
            ),
            total_supply=parse_base_units(o["total_supply"], where=f"{where}.total_supply"),
            holders=Holders.from_items(
                (
                    (a, parse_base_units(b, where=f"{where}.holders"))
                    for a, b in o["holders"].items()
                ),
                where=f"{where}.holders",
            ),
            excluded=tuple(
                ExcludedAccount(
                    account=e["account"],
                    balance=parse_base_units(e["balance"], where=f"{where}.excluded"),
                    reason=e["reason"],
                )
                for e in o["excluded"]
            ),
            mismatch=None
            if mm is None
            else SupplyMismatch(
                total_supply=parse_base_units(mm["total_supply"], where=where),
                indexed_sum=parse_base_units(mm["indexed_sum"], where=where),
            ),
            flows=()
            if flows is None
            else tuple(
                ChainFlow.from_dict(f, where=f"{where}.flows[{i}]") for i, f in enumerate(flows)
            ),
            flows_from_block=o["flows_from_block"],
        )
    except (KeyError, TypeError, ValueError) as e:
        raise FormatError(f"malformed chain snapshot: {e!r}", where=where) from e
