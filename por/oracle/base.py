"""What every publisher is to the run: the `Publisher` protocol and its `PublishReceipt`.

A publisher puts one recorded attestation on one chain (the EVM ReserveOracle, a Solana
memo), exactly once per sequence: publishing a sequence that is already there returns
a receipt with status `already_published`, never a second copy. The run records each
receipt in the store's publication state (chain, sequence, contract, tx, block, status).

No I/O here, and no chain library: `por.service.run` imports this module on every run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

from por.errors import InputError, PublishError

PublishStatus = Literal["published", "already_published"]
"""`published`: our transaction put it there; `already_published`: it was there before."""

_STATUSES: tuple[str, ...] = get_args(PublishStatus)


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishReceipt:
    """Where one attestation landed on one chain.

    `tx_hash` is the transaction's id in its chain's own spelling: 0x-hex hash (EVM),
    base58 signature (Solana); None when the attestation is on chain but the transaction
    that put it there could not be found. `block_number` is the block (EVM) or slot
    (Solana) it landed in.
    """

    chain_id: str  # CAIP-2
    sequence: int
    tx_hash: str | None
    block_number: int | None
    status: PublishStatus

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "sequence": self.sequence,
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "status": self.status,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "receipt") -> PublishReceipt:
        try:
            status = d["status"]
            if status not in _STATUSES:
                raise InputError(f"unknown status {status!r}", where=f"{where}.status")
            return cls(
                chain_id=d["chain_id"],
                sequence=d["sequence"],
                tx_hash=d["tx_hash"],
                block_number=d["block_number"],
                status=status,
            )
        except KeyError as e:
            raise InputError(f"missing field {e.args[0]!r}", where=where) from e


class PublishDeferredError(PublishError):
    """Not yet: this chain's round must wait for other chains' rounds (a budget increase
    waits until the chains whose budgets shrink hold their new rounds, docs/budgets.md).
    The run tries a deferred publisher again after every other one has had its turn."""


class PublishSupersededError(PublishError):
    """Never: the oracle already holds a newer round (`newer`), and its rule that
    sequences strictly increase means it can never take this one. The publication
    queue marks the round `superseded` by `newer` instead of retrying it."""

    def __init__(self, message: str, *, newer: int, where: str | None = None) -> None:
        super().__init__(message, where=where)
        self.newer = newer


class Publisher(Protocol):
    """Publishes recorded attestations to one chain; idempotent per sequence.

    Raises a `por.errors.PublishError` when it cannot; the run records the failure and
    the next run (or `catch_up_publications`) tries again.
    """

    @property
    def chain_id(self) -> str:
        """The chain published to, as a CAIP-2 id (`eip155:56`, `solana:<genesis>`)."""
        ...

    @property
    def contract_label(self) -> str:
        """What the publication state shows as the contract (address, or the memo program)."""
        ...

    def publish(self, doc: Mapping[str, Any], digest_hex: str) -> PublishReceipt:
        """Publish attestation `doc` whose RFC 8785 SHA-256 is `digest_hex`."""
        ...


__all__ = [
    "PublishDeferredError",
    "PublishReceipt",
    "PublishStatus",
    "PublishSupersededError",
    "Publisher",
]
