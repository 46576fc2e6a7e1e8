"""EVM chain reader: token supply and every holder at the `finalized` block (DESIGN §7).

One snapshot:
 1. checks each RPC endpoint's chain id (wrong-chain endpoints are dropped and noted);
 2. resolves `finalized` per endpoint and takes the highest block a quorum has finalized,
    then its header (number, hash, time) by quorum;
 3. indexes `Transfer` logs from the checkpoint (block number + hash + balances, persisted
    by the caller through `IndexCheckpointStore`) up to that block, splitting a log range
    in half whenever a provider refuses it as too large; if the checkpoint's block hash is
    no longer canonical (a reorg below it) the index is rebuilt from `start_block`;
 4. reads `decimals()`, `totalSupply()` and the excluded accounts' `balanceOf` pinned to the
    block hash (EIP-1898, requireCanonical);
 5. compares holders + excluded with totalSupply, and asks `balanceOf` (pinned, by quorum)
    for a sample of indexed holders — the largest quarter of `spot_checks` and the rest
    drawn by the OS CSPRNG, so an endpoint cannot know which holders it may misreport —
    because a dropped or invented holder-to-holder log keeps the sum right and two
    balances wrong. Either difference is a `SupplyMismatch` in the snapshot (the run
    makes it DEGRADED), and the checkpoint is then NOT advanced.

Every read goes through `QuorumRpc`. I/O: JSON-RPC over HTTP only; the checkpoint store
given by the caller does the disk (file store) or nothing (memory store).
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from eth_utils.crypto import keccak

from por.chains.base import (
    EXCLUSION_REASONS,
    AsOfRefusedError,
    BalanceDifference,
    BlockRef,
    ChainSnapshot,
    EndpointNote,
    ExcludedAccount,
    HistoricalStateError,
    Holders,
    SupplyMismatch,
)
from por.chains.evm_rpc import (
    EvmAbiMismatchError,
    EvmChainError,
    EvmEndpointDownError,
    EvmMalformedAnswerError,
    EvmNoQuorumError,
    EvmRangeRefusedError,
    EvmRevertError,
    EvmRpcError,
    EvmWrongChainError,
    QuorumRpc,
    parse_data,
    parse_hash,
    parse_quantity,
)
from por.core.amounts import format_base_units, parse_base_units
from por.core.flows import ChainFlow, normalize_reference
from por.core.times import format_time
from por.errors import ConfigError, FormatError, StoreError
from por.fileio import write_atomic
from por.progress import Progress
from por.statekv import StateBlobs

log = logging.getLogger("por.chains.evm")

__all__ = [
    "TRANSFER_TOPIC",
    "BlobCheckpointStore",
    "EvmAbiMismatchError",
    "EvmChainError",
    "EvmChainReader",
    "EvmEndpointDownError",
    "EvmHistoricalStateError",
    "EvmMalformedAnswerError",
    "EvmNoQuorumError",
    "EvmRangeRefusedError",
    "EvmRevertError",
    "EvmRpcError",
    "EvmWrongChainError",
    "FileCheckpointStore",
    "IndexCheckpoint",
    "IndexCheckpointStore",
    "IndexRun",
    "MemoryCheckpointStore",
    "caip10",
]

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
# The token's own mint/burn events with a payment reference (por's StableToken emits them
# beside the Transfer from/to the zero address; `reference_events = true` reads them).
MINT_REF_TOPIC = "0x" + keccak(text="Mint(address,uint256,bytes32)").hex()
BURN_REF_TOPIC = "0x" + keccak(text="Burn(address,uint256,bytes32)").hex()
_HISTORICAL_RE = re.compile(
    r"missing trie node|header not found|historical state|state (is )?not available|"
    r"state unavailable|pruned|not available in (the )?database|required historical|"
    r"world state unavailable|state histor",
    re.IGNORECASE,
)
_SEL_TOTAL_SUPPLY = "0x" + keccak(text="totalSupply()")[:4].hex()
_SEL_BALANCE_OF = "0x" + keccak(text="balanceOf(address)")[:4].hex()
_SEL_DECIMALS = "0x" + keccak(text="decimals()")[:4].hex()


class EvmHistoricalStateError(HistoricalStateError, EvmChainError):
    """The node refused state at a past block: it is not an archive node."""


_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")
_ZERO = "0x" + "00" * 20


def _address(value: str, where: str) -> str:
    """0x-prefixed lowercase 20-byte address (checksum is not checked: config may be lower)."""
    if not isinstance(value, str) or not _ADDRESS_RE.fullmatch(value):
        raise ConfigError(f"not an EVM address: {value!r}", where=where)
    return value.lower()


def caip10(chain_id: int, address: str) -> str:
    """CAIP-10 account id with lowercase hex: eip155:<chain id>:0x<40 hex>."""
    return f"eip155:{chain_id}:{_address(address, 'address')}"


# ---------------------------------------------------------------- checkpoints


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexCheckpoint:
    """Where the Transfer index stopped: a finalized block and every balance after it."""

    chain_id: str  # CAIP-2
    token: str  # CAIP-10 of the token contract
    block_number: int
    block_hash: str  # lowercase hex without 0x
    balances: Mapping[str, int] = field(default_factory=dict)  # 0x-lowercase address -> > 0
    # every mint and burn since `flows_from_block` (None: this index does not collect them)
    flows: tuple[ChainFlow, ...] | None = None
    flows_from_block: int = 0

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": "por-evm-index-v1",
            "chain_id": self.chain_id,
            "token": self.token,
            "block": {"number": self.block_number, "hash": self.block_hash},
            "balances": {a: format_base_units(b) for a, b in sorted(self.balances.items())},
        }
        if self.flows is not None:
            d["flows"] = {
                "from_block": self.flows_from_block,
                "items": [f.to_dict() for f in self.flows],
            }
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "checkpoint") -> IndexCheckpoint:
        try:
            if d["format"] != "por-evm-index-v1":
                raise FormatError(f"unknown format {d['format']!r}", where=f"{where}.format")
            number = d["block"]["number"]
            block_hash = d["block"]["hash"]
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                raise FormatError(f"bad block number {number!r}", where=f"{where}.block.number")
            if not isinstance(block_hash, str) or not re.fullmatch(r"[0-9a-f]{64}", block_hash):
                raise FormatError(f"bad block hash {block_hash!r}", where=f"{where}.block.hash")
            balances = {
                _address(a, f"{where}.balances"): parse_base_units(b, where=f"{where}.balances.{a}")
                for a, b in d["balances"].items()
            }
            flows = None
            flows_from = 0
            if "flows" in d:
                flows = tuple(
                    ChainFlow.from_dict(f, where=f"{where}.flows[{i}]")
                    for i, f in enumerate(d["flows"]["items"])
                )
                flows_from = int(d["flows"]["from_block"])
            return cls(
                chain_id=d["chain_id"],
                token=d["token"],
                block_number=number,
                block_hash=block_hash,
                balances=balances,
                flows=flows,
                flows_from_block=flows_from,
            )
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise FormatError(f"malformed checkpoint: {e!r}", where=where) from e


class IndexCheckpointStore(Protocol):
    """Persists one checkpoint per (chain, token); the service may back it by its database."""

    def load(self, chain_id: str, token: str) -> IndexCheckpoint | None: ...

    def save(self, checkpoint: IndexCheckpoint) -> None: ...


class MemoryCheckpointStore:
    """In-memory checkpoints (tests, one-shot runs)."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], IndexCheckpoint] = {}

    def load(self, chain_id: str, token: str) -> IndexCheckpoint | None:
        return self._data.get((chain_id, token))

    def save(self, checkpoint: IndexCheckpoint) -> None:
        self._data[(checkpoint.chain_id, checkpoint.token)] = checkpoint


class FileCheckpointStore:
    """One JSON file per (chain, token) in `directory`, replaced atomically (fsync + rename)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, chain_id: str, token: str) -> Path:
        return self.directory / (token.replace(":", "_") + ".index.json")

    def load(self, chain_id: str, token: str) -> IndexCheckpoint | None:
        path = self.path(chain_id, token)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StoreError(f"cannot read checkpoint: {e}", where=str(path)) from e
        try:
            cp = IndexCheckpoint.from_dict(json.loads(raw), where=str(path))
        except json.JSONDecodeError as e:
            raise FormatError(f"malformed JSON: {e}", where=str(path)) from e
        if cp.chain_id != chain_id or cp.token != token:
            raise StoreError(f"checkpoint is for {cp.token}, expected {token}", where=str(path))
        return cp

    def save(self, checkpoint: IndexCheckpoint) -> None:
        path = self.path(checkpoint.chain_id, checkpoint.token)
        write_atomic(path, json.dumps(checkpoint.to_dict(), separators=(",", ":")).encode())


class BlobCheckpointStore:
    """One checkpoint per (chain, token) as a `StateBlobs` entry (the service's database
    with `[service] state = "database"`: any instance that takes over finds it)."""

    NAMESPACE = "evm-index"

    def __init__(self, blobs: StateBlobs) -> None:
        self._blobs = blobs

    def load(self, chain_id: str, token: str) -> IndexCheckpoint | None:
        raw = self._blobs.get(self.NAMESPACE, token)
        if raw is None:
            return None
        where = f"{self._blobs.where} {self.NAMESPACE}/{token}"
        try:
            cp = IndexCheckpoint.from_dict(json.loads(raw), where=where)
        except json.JSONDecodeError as e:
            raise FormatError(f"malformed JSON: {e}", where=where) from e
        if cp.chain_id != chain_id or cp.token != token:
            raise StoreError(f"checkpoint is for {cp.token}, expected {token}", where=where)
        return cp

    def save(self, checkpoint: IndexCheckpoint) -> None:
        self._blobs.put(
            self.NAMESPACE,
            checkpoint.token,
            json.dumps(checkpoint.to_dict(), separators=(",", ":")).encode(),
        )


# ---------------------------------------------------------------- parsing answers


@dataclass(frozen=True, slots=True)
class _Header:
    number: int
    hash: str
    timestamp: int


def _parse_header(raw: Any, what: str) -> _Header:
    if not isinstance(raw, dict):
        raise EvmMalformedAnswerError(f"{what}: expected a block object, got {raw!r}"[:200])
    try:
        return _Header(
            number=parse_quantity(raw["number"], f"{what}.number"),
            hash=parse_hash(raw["hash"], f"{what}.hash"),
            timestamp=parse_quantity(raw["timestamp"], f"{what}.timestamp"),
        )
    except KeyError as e:
        raise EvmMalformedAnswerError(f"{what}: block object lacks {e.args[0]!r}") from e


@dataclass(frozen=True, slots=True)
class _Transfer:
    block_number: int
    log_index: int
    block_hash: str
    sender: str  # 0x lowercase
    recipient: str
    value: int
    tx_hash: str = ""
    kind: str = "transfer"  # or "mint_ref" / "burn_ref": the token's own event
    reference: str | None = None


def _reference(word: bytes) -> str | None:
    """A bytes32 payment reference: ASCII text padded with zeros, else its hex."""
    text = word.rstrip(b"\x00")
    if not text:
        return None
    if all(0x20 < c < 0x7F for c in text):
        return normalize_reference(text.decode("ascii"))
    return word.hex()


def _topic_address(topic: Any, what: str) -> str:
    data = parse_data(topic, what)
    if len(data) != 32 or any(data[:12]):
        raise EvmAbiMismatchError(f"{what}: topic is not an ABI-encoded address")
    return "0x" + data[12:].hex()


def _parse_ref_event(log: dict[str, Any], topics: list[Any], what: str) -> _Transfer:
    kind = "mint_ref" if str(topics[0]).lower() == MINT_REF_TOPIC else "burn_ref"
    if len(topics) != 2:
        raise EvmAbiMismatchError(f"{what}: not Mint/Burn(address indexed, uint256, bytes32)")
    data = parse_data(log["data"], f"{what}.data")
    if len(data) != 64:
        raise EvmAbiMismatchError(f"{what}: Mint/Burn data is {len(data)} bytes, expected 64")
    account = _topic_address(topics[1], f"{what}.topics[1]")
    return _Transfer(
        block_number=parse_quantity(log["blockNumber"], f"{what}.blockNumber"),
        log_index=parse_quantity(log["logIndex"], f"{what}.logIndex"),
        block_hash=parse_hash(log["blockHash"], f"{what}.blockHash"),
        sender=_ZERO if kind == "mint_ref" else account,
        recipient=account if kind == "mint_ref" else _ZERO,
        value=int.from_bytes(data[:32], "big"),
        tx_hash=parse_hash(log["transactionHash"], f"{what}.transactionHash"),
        kind=kind,
        reference=_reference(data[32:]),
    )


def _parse_logs(raw: Any, token: str) -> tuple[_Transfer, ...]:
    if not isinstance(raw, list):
        raise EvmMalformedAnswerError(f"eth_getLogs: expected a list, got {type(raw).__name__}")
    out = []
    for i, log in enumerate(raw):
        what = f"eth_getLogs[{i}]"
        if not isinstance(log, dict):
            raise EvmMalformedAnswerError(f"{what}: not an object")
        try:
            if log.get("removed"):
                raise EvmMalformedAnswerError(f"{what}: removed log in a finalized range")
            if str(log["address"]).lower() != token:
                raise EvmMalformedAnswerError(f"{what}: log of {log['address']}, asked for {token}")
            topics = log["topics"]
            if (
                isinstance(topics, list)
                and topics
                and str(topics[0]).lower() in (MINT_REF_TOPIC, BURN_REF_TOPIC)
            ):
                out.append(_parse_ref_event(log, topics, what))
                continue
            if (
                not isinstance(topics, list)
                or len(topics) != 3
                or (str(topics[0]).lower() != TRANSFER_TOPIC)
            ):
                raise EvmAbiMismatchError(
                    f"{what}: not an ERC-20 Transfer(address indexed, address indexed, uint256)"
                )
            data = parse_data(log["data"], f"{what}.data")
            if len(data) != 32:
                raise EvmAbiMismatchError(
                    f"{what}: Transfer data is {len(data)} bytes, expected 32"
                )
            out.append(
                _Transfer(
                    block_number=parse_quantity(log["blockNumber"], f"{what}.blockNumber"),
                    log_index=parse_quantity(log["logIndex"], f"{what}.logIndex"),
                    block_hash=parse_hash(log["blockHash"], f"{what}.blockHash"),
                    sender=_topic_address(topics[1], f"{what}.topics[1]"),
                    recipient=_topic_address(topics[2], f"{what}.topics[2]"),
                    value=int.from_bytes(data, "big"),
                    tx_hash=parse_hash(log["transactionHash"], f"{what}.transactionHash")
                    if "transactionHash" in log
                    else "",
                )
            )
        except KeyError as e:
            raise EvmMalformedAnswerError(f"{what}: log lacks {e.args[0]!r}") from e
    out.sort(key=lambda t: (t.block_number, t.log_index))
    return tuple(out)


def _parse_uint(raw: Any, what: str, *, bits: int = 256) -> int:
    data = parse_data(raw, what)
    if len(data) == 0:
        raise EvmAbiMismatchError(f"{what} returned no data: no contract or no such function there")
    if len(data) != 32:
        raise EvmAbiMismatchError(f"{what} returned {len(data)} bytes, expected one 32-byte word")
    value = int.from_bytes(data, "big")
    if value >= 2**bits:
        raise EvmAbiMismatchError(f"{what} returned {value}, not a uint{bits}")
    return value


# ---------------------------------------------------------------- the reader


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexRun:
    """What one snapshot's indexing did (for logs, metrics and tests)."""

    from_block: int
    to_block: int
    transfers: int
    log_requests: int
    range_splits: int
    reindexed: bool
    reason: str = ""


class EvmChainReader:
    """`ChainReader` for one ERC-20 on one EVM chain, read through a quorum of endpoints."""

    def __init__(
        self,
        *,
        chain_id: int,
        rpc_urls: Sequence[str],
        token_address: str,
        excluded: Mapping[str, str] | None = None,
        checkpoint_store: IndexCheckpointStore | None = None,
        start_block: int = 0,
        quorum: int | None = None,
        max_log_range: int = 10_000,
        expected_decimals: int | None = None,
        timeout_s: float = 10.0,
        spot_checks: int = 16,
        collect_flows: bool = False,
        reference_events: bool = False,
    ) -> None:
        self.chain_num = chain_id
        self.chain_id = f"eip155:{chain_id}"
        self.token = _address(token_address, f"{self.chain_id} token")
        self.token_caip10 = caip10(chain_id, self.token)
        self.excluded: dict[str, str] = {}
        for account, reason in (excluded or {}).items():
            addr = _address(account, f"{self.chain_id} excluded")
            if reason not in EXCLUSION_REASONS:
                raise ConfigError(
                    f"exclusion reason must be one of {EXCLUSION_REASONS}, got {reason!r}",
                    where=f"{self.chain_id} excluded {addr}",
                )
            self.excluded[addr] = reason
        self.store: IndexCheckpointStore = checkpoint_store or MemoryCheckpointStore()
        self.start_block = start_block
        if max_log_range < 1:
            raise ConfigError("max_log_range must be >= 1", where=self.chain_id)
        self.max_log_range = max_log_range
        self.expected_decimals = expected_decimals
        if isinstance(spot_checks, bool) or not isinstance(spot_checks, int) or spot_checks < 0:
            raise ConfigError(
                f"spot_checks must be an integer >= 0, got {spot_checks!r}", where=self.chain_id
            )
        self.spot_checks = spot_checks
        self.rpc = QuorumRpc(chain_id=chain_id, urls=rpc_urls, quorum=quorum, timeout_s=timeout_s)
        self.last_run: IndexRun | None = None
        # the flow reconciliation (docs/ledger.md): keep every mint and burn, with its time
        self.collect_flows = collect_flows
        self.reference_events = reference_events
        self._block_times: dict[int, int] = {}

    def close(self) -> None:
        self.rpc.close()

    # -- reads pinned to one block (EIP-1898)

    def _call_uint(self, data: str, block_hash: str, what: str, *, bits: int = 256) -> int:
        pin = {"blockHash": "0x" + block_hash, "requireCanonical": True}
        return self.rpc.call(
            "eth_call",
            [{"to": self.token, "data": data}, pin],
            lambda raw: _parse_uint(raw, what, bits=bits),
            what=what,
        )

    def balance_of(self, address: str, block_hash: str) -> int:
        addr = _address(address, "balanceOf")
        return self._call_uint(
            _SEL_BALANCE_OF + "00" * 12 + addr[2:], block_hash, f"balanceOf({addr})"
        )

    def header(self, tag_or_number: str | int) -> _Header:
        tag = hex(tag_or_number) if isinstance(tag_or_number, int) else tag_or_number
        what = f"eth_getBlockByNumber({tag})"
        return self.rpc.call(
            "eth_getBlockByNumber", [tag, False], lambda raw: _parse_header(raw, what), what=what
        )

    def finalized_header(self) -> _Header:
        """The highest block that at least `quorum` endpoints call finalized, by quorum."""
        answers = self.rpc.each(
            "eth_getBlockByNumber",
            ["finalized", False],
            lambda raw: _parse_header(raw, "finalized block"),
        )
        numbers = sorted((a.number for _, a in answers if isinstance(a, _Header)), reverse=True)
        for ep, a in answers:
            if isinstance(a, EvmChainError):
                self.rpc.note(ep.url, type(a).__name__, f"finalized block: {a.message}")
        if len(numbers) < self.rpc.quorum:
            raise self.rpc.no_quorum("finalized block", answers)
        # A liar cannot push the pin beyond what a quorum has finalized.
        head = self.header(numbers[self.rpc.quorum - 1])
        return head

    # -- the Transfer index

    def _logs(self, a: int, b: int) -> tuple[_Transfer, ...]:
        params = [
            {
                "address": self.token,
                "topics": [
                    [TRANSFER_TOPIC, MINT_REF_TOPIC, BURN_REF_TOPIC]
                    if self.reference_events
                    else TRANSFER_TOPIC
                ],
                "fromBlock": hex(a),
                "toBlock": hex(b),
            }
        ]
        return self.rpc.call(
            "eth_getLogs",
            params,
            lambda raw: _parse_logs(raw, self.token),
            what=f"eth_getLogs({a}..{b})",
        )

    def _index(
        self,
        balances: dict[str, int] | None,
        start: int,
        end: int,
        flows: list[ChainFlow] | None = None,
    ) -> tuple[int, int, int]:
        """Apply Transfers in [start, end] to `balances`; adaptive range splitting. With
        `flows`, every mint and burn found is appended to it (with its block's time)."""
        found: list[_Transfer] = []
        chunk = self.max_log_range
        transfers = requests = splits = 0
        good_in_a_row = 0
        a = start
        progress = Progress(
            log,
            f"{self.chain_id}: indexing Transfer logs {start}..{end}",
            total=max(0, end - start + 1),
            unit="blocks",
        )
        while a <= end:
            b = min(end, a + chunk - 1)
            requests += 1
            try:
                logs = self._logs(a, b)
            except EvmRangeRefusedError:
                if a == b:
                    raise  # a single block refused: nothing left to split
                chunk = max(1, (b - a + 1) // 2)
                splits += 1
                good_in_a_row = 0
                continue
            for t in logs:
                if not a <= t.block_number <= b:
                    raise EvmMalformedAnswerError(
                        f"eth_getLogs({a}..{b}) returned a log of block {t.block_number}",
                        where=self.rpc.where_all,
                    )
                if t.kind == "transfer" and balances is not None:
                    self._apply(balances, t)
                if flows is not None and _ZERO in (t.sender, t.recipient):
                    found.append(t)
            transfers += len(logs)
            progress.update(b - start + 1, blocks=b - start + 1, transfers=transfers)
            a = b + 1
            good_in_a_row += 1
            if good_in_a_row >= 4 and chunk < self.max_log_range:
                chunk = min(self.max_log_range, chunk * 2)  # probe back up, gently
                good_in_a_row = 0
        progress.done(f"{requests} eth_getLogs requests, {splits} range splits")
        if flows is not None:
            flows.extend(self._flows(found))
        return transfers, requests, splits

    def read_flows(self, from_block: int, to_block: int) -> tuple[str, list[ChainFlow]]:
        """(hash of `to_block`, every mint and burn in [from_block, to_block]) — what an
        auditor re-reads to check an attestation's match list (balances are not indexed)."""
        self.rpc.begin_session()
        head = self.header(to_block)
        flows: list[ChainFlow] = []
        self._index(None, from_block, to_block, flows)
        return head.hash, flows

    def block_time(self, number: int) -> int:
        """A block's timestamp (by quorum), cached: finalized blocks never change."""
        if number not in self._block_times:
            self._block_times[number] = self.header(number).timestamp
        return self._block_times[number]

    def _flows(self, found: Sequence[_Transfer]) -> list[ChainFlow]:
        """Mints and burns from Transfers from/to the zero address; the token's own
        Mint/Burn event of the same transaction, account and value gives the reference
        (an own event without its Transfer is a flow by itself)."""
        refs: dict[tuple[str, str, str, int], list[_Transfer]] = {}
        for t in found:
            if t.kind != "transfer":
                kind = "mint" if t.kind == "mint_ref" else "burn"
                account = t.recipient if kind == "mint" else t.sender
                refs.setdefault((t.tx_hash, kind, account, t.value), []).append(t)
        out: list[ChainFlow] = []
        for t in found:
            if t.kind != "transfer":
                continue
            if t.sender == _ZERO and t.recipient == _ZERO:
                continue  # moves nothing
            kind = "mint" if t.sender == _ZERO else "burn"
            account = t.recipient if kind == "mint" else t.sender
            own = refs.get((t.tx_hash, kind, account, t.value))
            ref = own.pop(0).reference if own else None
            out.append(self._flow(t, kind, ref))
        for leftover in refs.values():
            for t in leftover:
                out.append(self._flow(t, "mint" if t.kind == "mint_ref" else "burn", t.reference))
        return out

    def _flow(self, t: _Transfer, kind: str, reference: str | None) -> ChainFlow:
        return ChainFlow(
            id=f"{self.chain_id}:0x{t.tx_hash}:{t.log_index}",
            chain_id=self.chain_id,
            kind=kind,
            block=t.block_number,
            time=datetime.fromtimestamp(self.block_time(t.block_number), UTC),
            amount=t.value,
            reference=reference,
        )

    def _apply(self, balances: dict[str, int], t: _Transfer) -> None:
        if t.sender != _ZERO:
            have = balances.get(t.sender, 0)
            if have < t.value:
                raise EvmAbiMismatchError(
                    f"Transfer at block {t.block_number} log {t.log_index} moves {t.value} "
                    f"from {t.sender}, which holds {have} in the index: the index must start "
                    f"at or before the token's deployment block (start_block "
                    f"{self.start_block}) and the token must be a plain ERC-20",
                    where=self.rpc.where_all,
                )
            if have == t.value:
                del balances[t.sender]
            else:
                balances[t.sender] = have - t.value
        if t.recipient != _ZERO and t.value:
            balances[t.recipient] = balances.get(t.recipient, 0) + t.value

    # -- the snapshot

    def spot_check_sample(self, balances: Mapping[str, int]) -> list[str]:
        """The indexed addresses whose balanceOf is read: the largest quarter of
        `spot_checks`, then an unpredictable draw from the rest."""
        candidates = [a for a in balances if a not in self.excluded]
        k = min(self.spot_checks, len(candidates))
        if k == 0:
            return []
        top = heapq.nlargest(max(1, k // 4), candidates, key=balances.__getitem__)
        chosen = set(top)
        # at most len(top) of this draw are already chosen, so it leaves enough others
        draw = random.SystemRandom().sample(candidates, k)
        return top + [a for a in draw if a not in chosen][: k - len(top)]

    def _spot_check(
        self, balances: Mapping[str, int], head: _Header
    ) -> tuple[BalanceDifference, ...]:
        out = []
        for addr in self.spot_check_sample(balances):
            on_chain = self.balance_of(addr, head.hash)
            if on_chain != balances[addr]:
                out.append(
                    BalanceDifference(
                        account=caip10(self.chain_num, addr),
                        indexed=balances[addr],
                        on_chain=on_chain,
                    )
                )
        return tuple(out)

    def snapshot(self) -> ChainSnapshot:
        """Supply, excluded accounts and every holder at one finalized block."""
        self.rpc.begin_session()
        head = self.finalized_header()
        extra_notes: list[EndpointNote] = []

        checkpoint = self.store.load(self.chain_id, self.token_caip10)
        balances: dict[str, int] = {}
        flows: list[ChainFlow] | None = [] if self.collect_flows else None
        from_block = self.start_block
        reindexed, reason = False, ""
        if checkpoint is not None:
            if checkpoint.block_number > head.number:
                reindexed = True
                reason = (
                    f"checkpoint block {checkpoint.block_number} is above the finalized "
                    f"block {head.number}"
                )
            elif self.collect_flows and checkpoint.flows is None:
                reindexed = True
                reason = "the checkpoint holds no mints and burns (flow reconciliation is new)"
            else:
                at_cp = self.header(checkpoint.block_number)
                if at_cp.hash != checkpoint.block_hash:
                    reindexed = True
                    reason = (
                        f"reorg below the checkpoint: block {checkpoint.block_number} is "
                        f"now {at_cp.hash}, the checkpoint has {checkpoint.block_hash}"
                    )
                else:
                    balances = dict(checkpoint.balances)
                    from_block = checkpoint.block_number + 1
                    if flows is not None and checkpoint.flows is not None:
                        flows.extend(checkpoint.flows)
            if reindexed:
                extra_notes.append(
                    EndpointNote(
                        endpoint=self.rpc.where_all,
                        problem=f"index rebuilt from block {self.start_block}: {reason}",
                    )
                )

        transfers, requests, splits = self._index(balances, from_block, head.number, flows)
        self.last_run = IndexRun(
            from_block=from_block,
            to_block=head.number,
            transfers=transfers,
            log_requests=requests,
            range_splits=splits,
            reindexed=reindexed,
            reason=reason,
        )
        snap = self._read_at(head, balances, flows, notes=extra_notes)
        if snap.mismatch is None:
            # Only an index that adds up becomes the next run's starting point.
            self.store.save(
                IndexCheckpoint(
                    chain_id=self.chain_id,
                    token=self.token_caip10,
                    block_number=head.number,
                    block_hash=head.hash,
                    balances=balances,
                    flows=None if flows is None else tuple(flows),
                    flows_from_block=self.start_block,
                )
            )
        return snap

    def _read_at(
        self,
        head: _Header,
        balances: Mapping[str, int],
        flows: Sequence[ChainFlow] | None,
        *,
        notes: Sequence[EndpointNote] = (),
    ) -> ChainSnapshot:
        """Supply, decimals, excluded balances and spot checks pinned to `head`'s hash."""
        decimals = self._call_uint(_SEL_DECIMALS, head.hash, "decimals()", bits=8)
        if self.expected_decimals is not None and decimals != self.expected_decimals:
            raise EvmAbiMismatchError(
                f"token has {decimals} decimals, configured {self.expected_decimals}",
                where=self.rpc.where_all,
            )
        total_supply = self._call_uint(_SEL_TOTAL_SUPPLY, head.hash, "totalSupply()")
        excluded = tuple(
            ExcludedAccount(
                account=caip10(self.chain_num, addr),
                balance=self.balance_of(addr, head.hash),
                reason=reason_,
            )
            for addr, reason_ in sorted(self.excluded.items())
        )
        holders = Holders.from_items(
            (caip10(self.chain_num, a), b)
            for a, b in sorted(balances.items())
            if a not in self.excluded and b > 0
        )
        indexed_sum = holders.total + sum(e.balance for e in excluded)
        sampled = self._spot_check(balances, head)
        mismatch = None
        if indexed_sum != total_supply or sampled:
            mismatch = SupplyMismatch(
                total_supply=total_supply, indexed_sum=indexed_sum, sampled=sampled
            )
        return ChainSnapshot(
            chain_id=self.chain_id,
            token_address=self.token_caip10,
            decimals=decimals,
            block=BlockRef(
                number=head.number, hash=head.hash, time=datetime.fromtimestamp(head.timestamp, UTC)
            ),
            total_supply=total_supply,
            holders=holders,
            excluded=excluded,
            mismatch=mismatch,
            endpoint_notes=tuple(self.rpc.notes.values()) + tuple(notes),
            flows=() if flows is None else tuple(f for f in flows if f.block <= head.number),
            flows_from_block=None if flows is None else self.start_block,
        )

    # -- as of a past time (an archive node's state, pinned by hash)

    def block_at_or_before(self, when: datetime, head: _Header) -> _Header:
        """The last block at or before `when` among [start_block, head], by binary search
        over block timestamps (non-decreasing on every EVM chain)."""
        target = int(when.timestamp())
        first = self.header(self.start_block)
        if first.timestamp > target:
            raise AsOfRefusedError(
                f"{format_time(when)} is before the token's deployment: start_block "
                f"{self.start_block} is at "
                f"{format_time(datetime.fromtimestamp(first.timestamp, UTC))}",
                where=self.chain_id,
            )
        if head.timestamp <= target:
            return head
        lo, hi = self.start_block, head.number  # time(lo) <= target < time(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.header(mid).timestamp <= target:
                lo = mid
            else:
                hi = mid
        return self.header(lo)

    def snapshot_at(self, when: datetime) -> ChainSnapshot:
        """Supply and every holder at the last finalized block at or before `when`.

        The holder index is rebuilt from `start_block` up to that block (the stored
        checkpoint is neither used nor changed), and every state read is pinned to that
        block's hash. A node that has pruned that state refuses the read: that is an
        `EvmHistoricalStateError` naming the block (an archive node is needed), never a
        fallback to a later block.
        """
        self.rpc.begin_session()
        head = self.finalized_header()
        block = self.block_at_or_before(when, head)
        try:
            code = self.rpc.call(
                "eth_getCode",
                [self.token, {"blockHash": "0x" + block.hash, "requireCanonical": True}],
                lambda raw: parse_data(raw, "eth_getCode"),
                what=f"eth_getCode at block {block.number}",
            )
            if not code:
                raise AsOfRefusedError(
                    f"{format_time(when)} is before the token's deployment: no contract at "
                    f"{self.token} in block {block.number}",
                    where=self.chain_id,
                )
            balances: dict[str, int] = {}
            flows: list[ChainFlow] | None = [] if self.collect_flows else None
            self._index(balances, self.start_block, block.number, flows)
            return self._read_at(block, balances, flows)
        except EvmChainError as e:
            if isinstance(e, EvmHistoricalStateError) or not _HISTORICAL_RE.search(e.message):
                raise
            raise EvmHistoricalStateError(
                f"the node cannot serve the token's state at block {block.number} "
                f"({format_time(datetime.fromtimestamp(block.timestamp, UTC))}, the last "
                f"finalized block at or before {format_time(when)}): it keeps no state that "
                f"old (a pruned node); an attestation as of a past time needs an archive "
                f"node. The node said: {e.message}",
                where=e.where or self.rpc.where_all,
            ) from e


def load_checkpoint_json(text: str, *, where: str) -> IndexCheckpoint:
    """Parse a checkpoint file's text (for tools that inspect it)."""
    try:
        return IndexCheckpoint.from_dict(json.loads(text), where=where)
    except json.JSONDecodeError as e:
        raise FormatError(f"malformed JSON: {e}", where=where) from e
