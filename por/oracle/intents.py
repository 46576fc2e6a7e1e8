"""Publish intents and where they are kept: what a publisher is about to do, made durable
before it does it (DESIGN §6).

An EVM publisher stores a `PublishIntent` (the signed transaction, its nonce and fees)
BEFORE broadcasting and updates it as the transaction is sent, replaced and mined, so a
restarted process resumes the same transaction instead of sending a second one. Intents
are keyed by EIP-155 chain id and attestation sequence.

Three stores follow the `IntentStore` protocol: `MemoryIntentStore` (tests),
`FileIntentStore` (one JSON file per intent) and `DbIntentStore` (the service: a row of
the store's database, through the store's raw `get_intent_json`/`put_intent_json`). The
intent model lives here, on the oracle side; the store keeps only bytes.

I/O: the intent files of `FileIntentStore`; `DbIntentStore` goes through the store.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from por.core.canonical import canonical_bytes, loads_strict
from por.errors import FormatError, StoreError
from por.fileio import write_atomic

__all__ = [
    "DbIntentStore",
    "FileIntentStore",
    "IntentRows",
    "IntentState",
    "IntentStore",
    "MemoryIntentStore",
    "PublishIntent",
    "SentTx",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SentTx:
    tx_hash: str  # 0x hex
    raw_tx: str  # 0x hex of the signed transaction
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    sent_at_block: int | None = None  # None: signed and stored, not yet broadcast

    def to_dict(self) -> dict[str, Any]:
        return {
            "tx_hash": self.tx_hash,
            "raw_tx": self.raw_tx,
            "max_fee_per_gas": str(self.max_fee_per_gas),
            "max_priority_fee_per_gas": str(self.max_priority_fee_per_gas),
            "sent_at_block": self.sent_at_block,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SentTx:
        return cls(
            tx_hash=d["tx_hash"],
            raw_tx=d["raw_tx"],
            max_fee_per_gas=int(d["max_fee_per_gas"]),
            max_priority_fee_per_gas=int(d["max_priority_fee_per_gas"]),
            sent_at_block=d["sent_at_block"],
        )


IntentState = Literal["signed", "broadcast", "confirmed", "abandoned"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishIntent:
    """What the publisher is about to do / did for one (chain, sequence)."""

    chain_id: int
    sequence: int
    contract: str  # checksum address
    attestation_digest: str  # hex without 0x
    sender: str
    nonce: int
    state: IntentState
    txs: tuple[SentTx, ...] = ()
    tx_hash: str | None = None  # the mined transaction
    block_number: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "por-publish-intent-v1",
            "chain_id": self.chain_id,
            "sequence": self.sequence,
            "contract": self.contract,
            "attestation_digest": self.attestation_digest,
            "sender": self.sender,
            "nonce": self.nonce,
            "state": self.state,
            "txs": [t.to_dict() for t in self.txs],
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "intent") -> PublishIntent:
        try:
            if d["format"] != "por-publish-intent-v1":
                raise FormatError(f"unknown format {d['format']!r}", where=where)
            if d["state"] not in ("signed", "broadcast", "confirmed", "abandoned"):
                raise FormatError(f"unknown state {d['state']!r}", where=f"{where}.state")
            return cls(
                chain_id=int(d["chain_id"]),
                sequence=int(d["sequence"]),
                contract=d["contract"],
                attestation_digest=d["attestation_digest"],
                sender=d["sender"],
                nonce=int(d["nonce"]),
                state=d["state"],
                txs=tuple(SentTx.from_dict(t) for t in d["txs"]),
                tx_hash=d["tx_hash"],
                block_number=d["block_number"],
            )
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"malformed intent: {e!r}", where=where) from e


class IntentStore(Protocol):
    """Durable record of publish intents, one per (chain id, sequence)."""

    def get(self, chain_id: int, sequence: int) -> PublishIntent | None: ...

    def put(self, intent: PublishIntent) -> None: ...


class MemoryIntentStore:
    def __init__(self) -> None:
        self._data: dict[tuple[int, int], PublishIntent] = {}

    def get(self, chain_id: int, sequence: int) -> PublishIntent | None:
        return self._data.get((chain_id, sequence))

    def put(self, intent: PublishIntent) -> None:
        self._data[(intent.chain_id, intent.sequence)] = intent


class FileIntentStore:
    """`<dir>/eip155_<chain>/<sequence>.json`, each written atomically with fsync."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, chain_id: int, sequence: int) -> Path:
        return self.directory / f"eip155_{chain_id}" / f"{sequence:012d}.json"

    def get(self, chain_id: int, sequence: int) -> PublishIntent | None:
        path = self.path(chain_id, sequence)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StoreError(f"cannot read intent: {e}", where=str(path)) from e
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise FormatError(f"malformed JSON: {e}", where=str(path)) from e
        return PublishIntent.from_dict(data, where=str(path))

    def put(self, intent: PublishIntent) -> None:
        write_atomic(
            self.path(intent.chain_id, intent.sequence),
            json.dumps(intent.to_dict(), indent=1, sort_keys=True).encode(),
        )


class IntentRows(Protocol):
    """Raw intent rows keyed by CAIP-2 chain id and sequence (`por.store.Store` has them)."""

    def get_intent_json(self, chain_id: str, sequence: int) -> bytes | None: ...

    def put_intent_json(self, chain_id: str, sequence: int, intent_json: bytes) -> None: ...


class DbIntentStore:
    """`IntentStore` over the store's intent table (canonical JSON per row).

    Rows are keyed by CAIP-2 chain id (`eip155:<n>`) and sequence; `put` commits before
    it returns, so an intent is durable before the publisher broadcasts.
    """

    def __init__(self, rows: IntentRows) -> None:
        self._rows = rows

    def get(self, chain_id: int, sequence: int) -> PublishIntent | None:
        raw = self._rows.get_intent_json(f"eip155:{chain_id}", sequence)
        if raw is None:
            return None
        where = f"publish intent eip155:{chain_id}/{sequence}"
        return PublishIntent.from_dict(loads_strict(raw, where=where), where=where)

    def put(self, intent: PublishIntent) -> None:
        self._rows.put_intent_json(
            f"eip155:{intent.chain_id}", intent.sequence, canonical_bytes(intent.to_dict())
        )
