"""Solana reader: a token's supply and every holder, at `finalized` commitment, at ONE slot.

DESIGN §7 ("getTokenSupply and token accounts of the mint at finalized commitment, at one
context slot"). One snapshot is:

1. `getGenesisHash` -> CAIP-2 chain id `solana:<first 32 chars of the genesis hash>`;
   refused if it differs from the configured chain id (wrong cluster).
2. `getTokenSupply(mint, finalized)` -> supply, decimals and context slot S.
3. `getProgramAccounts(program, jsonParsed, withContext, finalized, minContextSlot=S)` for
   SPL Token (filters dataSize 165 + memcmp mint@0) and Token-2022 (memcmp mint@0 only:
   accounts with extensions are longer than 165 bytes). Every answer must report context
   slot S; otherwise the supply is read again (bounded) and, if the slots never agree,
   `SolanaSlotSkewError` ("slot skew never settled") names the endpoint.
4. `getBlock(S, transactionDetails none)` -> the blockhash and blockTime OF SLOT S
   (not "latest blockhash"), so BlockRef pins exactly the bank the reads came from.

Every token account in an answer is checked (program, type, mint, decimals, canonical
amount, unique address) before it counts: a node that slips in an account of another
mint gets `SolanaForeignAccountError`, never a quietly wrong liability. Balances are
aggregated per OWNER (CAIP-10 `solana:<prefix>:<owner base58>`); configured treasury and
bridge-escrow owners are reported apart. If all accounts do not add up to the supply the
snapshot carries a `SupplyMismatch` (the run becomes DEGRADED), not an exception.

Transport: solana 0.41 ships only `AsyncClient`, whose getProgramAccounts has neither
`withContext` nor `minContextSlot`; so requests are built with solders' own request types
(`solders.rpc.requests`, the exact bodies the official client sends) and posted with a
synchronous httpx client. Answers are parsed strictly here (floats are never turned into
amounts; duplicate JSON keys are refused). This module does network I/O only through
that one client; it writes no files and reads no environment.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from solders.account_decoder import UiAccountEncoding
from solders.commitment_config import CommitmentLevel
from solders.pubkey import Pubkey
from solders.rpc.config import (
    RpcAccountInfoConfig,
    RpcBlockConfig,
    RpcProgramAccountsConfig,
)
from solders.rpc.filter import Memcmp
from solders.rpc.requests import GetBlock, GetGenesisHash, GetProgramAccounts, GetTokenSupply
from solders.transaction_status import TransactionDetails, UiTransactionEncoding

from por.chains.base import (
    EXCLUSION_REASONS,
    BlockRef,
    ChainSnapshot,
    ExcludedAccount,
    Holders,
    SupplyMismatch,
)
from por.core.amounts import parse_base_units
from por.core.flows import ChainFlow, normalize_reference
from por.deadline import Timeouts, http_exchange
from por.errors import AmountError, ChainError, ConfigError, FormatError, PorError, StoreError
from por.fileio import write_atomic
from por.statekv import StateBlobs

TOKEN_PROGRAM_ID = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"  # noqa: S105 - a program id
TOKEN_2022_PROGRAM_ID = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"  # noqa: S105 - a program id
# jsonParsed `program` names the node gives each token program's accounts.
PARSED_PROGRAM_NAMES = {TOKEN_PROGRAM_ID: "spl-token", TOKEN_2022_PROGRAM_ID: "spl-token-2022"}
SPL_TOKEN_ACCOUNT_LEN = 165
GENESIS_PREFIX_LEN = 32  # CAIP-30 (Solana namespace): first 32 chars of the genesis hash

# JSON-RPC error codes (solana rpc-client-api custom_error.rs / jsonrpc-core).
RPC_INVALID_PARAMS = -32602
RPC_MIN_CONTEXT_SLOT_NOT_REACHED = -32016


# ---- errors --------------------------------------------------------------------------


class SolanaRpcError(ChainError):
    """The endpoint failed: transport error, HTTP error, or a JSON-RPC error object."""

    def __init__(self, message: str, *, where: str | None = None, code: int | None = None) -> None:
        super().__init__(message, where=where)
        self.code = code


class SolanaUnknownMintError(SolanaRpcError):
    """getTokenSupply refused the mint: no such account, or not a token mint."""


class SolanaAnswerError(ChainError):
    """The endpoint answered, but not in the shape Solana's RPC documentation gives."""


class SolanaForeignAccountError(SolanaAnswerError):
    """A listed account is not a token account of the mint that was asked for."""


class SolanaSlotSkewError(ChainError):
    """getTokenSupply and the account listings never reported the same context slot."""


class SolanaWrongChainError(ChainError):
    """The endpoint serves another cluster (genesis hash) than the configured one."""


# ---- small helpers -------------------------------------------------------------------


def endpoint_label(url: str) -> str:
    """The endpoint as shown in errors: scheme://host:port only.

    RPC providers put API keys in the query or the path (`/?api-key=…`, `/<token>/`);
    an error message must never carry them into logs or attestations.
    """
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return "<invalid url>"
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    suffix = "/…" if parts.path not in ("", "/") or parts.query else ""
    return f"{parts.scheme}://{host}{suffix}"


def chain_id_from_genesis(genesis_hash: str) -> str:
    """CAIP-2 id of a Solana cluster: `solana:` + the first 32 chars of its genesis hash."""
    return f"solana:{genesis_hash[:GENESIS_PREFIX_LEN]}"


def parse_pubkey(text: object, *, where: str, error: type[PorError] = SolanaAnswerError) -> str:
    """A canonical base58 32-byte public key, or raise `error` naming where."""
    if not isinstance(text, str) or not 32 <= len(text) <= 44:
        raise error(f"not a base58 public key: {text!r}", where=where)
    try:
        key = Pubkey.from_string(text)
    except ValueError as e:
        raise error(f"not a base58 public key: {text!r}", where=where) from e
    if str(key) != text:  # refuse non-canonical spellings (leading '1's are significant)
        raise error(f"non-canonical base58 public key: {text!r}", where=where)
    return text


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _field(obj: object, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """obj[key] checked to be of `kind` (bool is never an int here)."""
    if not isinstance(obj, dict):
        raise SolanaAnswerError(f"expected an object, got {type(obj).__name__}", where=where)
    if key not in obj:
        raise SolanaAnswerError(f"missing field {key!r}", where=where)
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise SolanaAnswerError(f"field {key!r} must be {kind}, got a bool", where=where)
    if not isinstance(value, kinds):
        raise SolanaAnswerError(
            f"field {key!r} must be {'/'.join(k.__name__ for k in kinds)}, "
            f"got {type(value).__name__} {value!r:.80}",
            where=where,
        )
    return value


def _amount(value: object, where: str) -> int:
    """A canonical decimal string of base units from a node's answer (a ChainError if not)."""
    try:
        return parse_base_units(value, where=where)
    except AmountError as e:
        raise SolanaAnswerError(e.message, where=where) from e


def _slot(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SolanaAnswerError(f"slot must be a non-negative integer, got {value!r}", where=where)
    return value


# ---- JSON-RPC transport --------------------------------------------------------------


class SolanaRpc:
    """A synchronous JSON-RPC client over httpx, speaking solders' request bodies.

    `call` returns the `result` member; every failure is a `SolanaRpcError` or
    `SolanaAnswerError` whose `where` is "<label> <endpoint> <method>".
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 30.0,
        client: httpx.Client | None = None,
        label: str = "solana",
    ) -> None:
        self.url = url
        self.endpoint = endpoint_label(url)
        self.label = label
        self._client = client or httpx.Client()
        self._owns_client = client is None
        self.timeouts = Timeouts(
            connect_s=min(5.0, timeout_s), read_s=min(10.0, timeout_s), total_s=timeout_s
        )
        self._next_id = 1

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def where(self, method: str) -> str:
        return f"{self.label} {self.endpoint} {method}"

    def read_chain_id(self, configured: str | None, *, error: type[PorError] = ChainError) -> str:
        """The endpoint's CAIP-2 id from getGenesisHash; `error` if it is not `configured`."""
        genesis = self.call(GetGenesisHash())
        parse_pubkey(genesis, where=self.where("getGenesisHash"))  # a 32-byte hash, base58
        chain_id = chain_id_from_genesis(genesis)
        if configured is not None and chain_id != configured:
            raise error(
                f"endpoint serves {chain_id}, configured {configured}",
                where=self.where("getGenesisHash"),
            )
        self.label = chain_id
        return chain_id

    def call(self, request: Any) -> Any:
        """Post a solders request object (anything with `to_json()`) and return `result`."""
        body = json.loads(request.to_json())
        body["id"] = self._next_id
        self._next_id += 1
        return self.call_raw(body)

    def call_raw(self, body: dict[str, Any]) -> Any:
        method = str(body.get("method"))
        where = self.where(method)
        # connect/read/total limits and the run's deadline (por.deadline): a node that
        # trickles its answer is cut off
        response = http_exchange(
            self._client,
            "POST",
            self.url,
            timeouts=self.timeouts,
            where=where,
            error=SolanaRpcError,
            failure="transport error",
            content=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        try:
            # Real nodes put floats in some fields (uiAmount); keep them as Decimal so no
            # float ever exists, and never read an amount from them anyway.
            answer = json.loads(
                response.body, parse_float=Decimal, object_pairs_hook=_no_duplicate_keys
            )
        except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, duplicate key
            if response.status_code != 200:
                raise SolanaRpcError(f"HTTP {response.status_code}", where=where) from e
            raise SolanaAnswerError(f"answer is not JSON: {e}", where=where) from e
        if not isinstance(answer, dict):
            raise SolanaAnswerError(
                f"answer must be a JSON-RPC object, got {type(answer).__name__}", where=where
            )
        error = answer.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else error
            raise SolanaRpcError(
                f"JSON-RPC error {code}: {message}",
                where=where,
                code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            )
        if response.status_code != 200:
            raise SolanaRpcError(f"HTTP {response.status_code}", where=where)
        if answer.get("jsonrpc") != "2.0" or answer.get("id") != body["id"]:
            raise SolanaAnswerError(
                f"not the answer to this request (jsonrpc {answer.get('jsonrpc')!r}, "
                f"id {answer.get('id')!r}, expected id {body['id']!r})",
                where=where,
            )
        if "result" not in answer:
            raise SolanaAnswerError("answer has neither 'result' nor 'error'", where=where)
        return answer["result"]


# ---- the reader ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenAccount:
    """One token account of the mint as read (and checked) from a listing."""

    address: str
    owner: str
    amount: int
    program: str


def _parse_exclusions(exclusions: Mapping[str, str]) -> dict[str, str]:
    """owner (base58 or CAIP-10 `solana:<prefix>:<owner>`) -> reason, checked."""
    out: dict[str, str] = {}
    for key, reason in exclusions.items():
        where = f"solana exclusions.{key}"
        if reason not in EXCLUSION_REASONS:
            raise ConfigError(
                f"reason must be one of {', '.join(EXCLUSION_REASONS)}, got {reason!r}",
                where=where,
            )
        owner = key.rsplit(":", 1)[-1] if key.startswith("solana:") else key
        parse_pubkey(owner, where=where, error=ConfigError)
        if owner in out:
            raise ConfigError("owner excluded twice", where=where)
        out[owner] = reason
    return out


class SolanaReader:
    """`ChainReader` for one SPL Token / Token-2022 mint on one Solana cluster."""

    def __init__(
        self,
        rpc_url: str,
        mint: str,
        *,
        chain_id: str | None = None,
        exclusions: Mapping[str, str] | None = None,
        expected_decimals: int | None = None,
        token_programs: Sequence[str] = (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID),
        max_slot_attempts: int = 5,
        retry_delay_s: float = 0.4,  # about one Solana slot
        timeout_s: float = 60.0,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        collect_flows: bool = False,
        flow_store: FlowStore | None = None,
    ) -> None:
        self.mint = parse_pubkey(mint, where="solana mint", error=ConfigError)
        if chain_id is not None and (
            not chain_id.startswith("solana:") or len(chain_id) != 7 + GENESIS_PREFIX_LEN
        ):
            raise ConfigError(
                f"chain_id must be 'solana:' + 32 chars of the genesis hash, got {chain_id!r}",
                where="solana chain_id",
            )
        for program in token_programs:
            if program not in PARSED_PROGRAM_NAMES:
                raise ConfigError(
                    f"not a token program: {program!r}", where="solana token_programs"
                )
        if not token_programs:
            raise ConfigError("at least one token program is needed", where="solana token_programs")
        if max_slot_attempts < 1:
            raise ConfigError("max_slot_attempts must be >= 1", where="solana max_slot_attempts")
        self._configured_chain_id = chain_id
        self._chain_id: str | None = None
        self.exclusions = _parse_exclusions(exclusions or {})
        self.expected_decimals = expected_decimals
        self.token_programs = tuple(token_programs)
        self.max_slot_attempts = max_slot_attempts
        self.retry_delay_s = retry_delay_s
        self._sleep = sleep
        self.rpc = SolanaRpc(
            rpc_url, timeout_s=timeout_s, client=http_client, label=chain_id or "solana"
        )
        # the flow reconciliation (docs/ledger.md): every mintTo/burn of the mint
        self.collect_flows = collect_flows
        self.flow_store: FlowStore = flow_store or MemoryFlowStore()

    # ChainReader.chain_id: the configured id, else learnt from the endpoint once.
    @property
    def chain_id(self) -> str:
        if self._configured_chain_id is not None:
            return self._configured_chain_id
        if self._chain_id is None:
            self._chain_id = self._read_chain_id()
        return self._chain_id

    def close(self) -> None:
        self.rpc.close()

    def __enter__(self) -> SolanaReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ---------------------------------------------------------------------

    def _read_chain_id(self) -> str:
        return self.rpc.read_chain_id(self._configured_chain_id, error=SolanaWrongChainError)

    def read_supply(self) -> tuple[int, int, int]:
        """(supply base units, decimals, context slot) at finalized commitment."""
        method = "getTokenSupply"
        try:
            result = self.rpc.call(
                GetTokenSupply(Pubkey.from_string(self.mint), CommitmentLevel.Finalized)
            )
        except SolanaRpcError as e:
            if e.code == RPC_INVALID_PARAMS:  # "could not find account" / "not a Token mint"
                raise SolanaUnknownMintError(
                    f"mint {self.mint} refused: {e.message}", where=e.where, code=e.code
                ) from e
            raise
        where = self.rpc.where(method)
        context = _field(result, "context", dict, where)
        slot = _slot(_field(context, "slot", int, f"{where} context"), f"{where} context.slot")
        value = _field(result, "value", dict, where)
        supply = _amount(_field(value, "amount", str, f"{where} value"), f"{where} value.amount")
        decimals = _field(value, "decimals", int, f"{where} value")
        if not 0 <= decimals <= 255:
            raise SolanaAnswerError(f"decimals out of range: {decimals}", where=where)
        if self.expected_decimals is not None and decimals != self.expected_decimals:
            raise SolanaAnswerError(
                f"mint has {decimals} decimals, configured {self.expected_decimals}", where=where
            )
        return supply, decimals, slot

    def list_accounts(
        self, program: str, *, min_context_slot: int, decimals: int
    ) -> tuple[int, list[TokenAccount]]:
        """(context slot, checked token accounts of the mint) owned by `program`."""
        filters: list[int | Memcmp] = [Memcmp(offset=0, bytes_=self.mint)]
        if program == TOKEN_PROGRAM_ID:
            # Token-2022 accounts with extensions are longer than 165 bytes: only the
            # classic program gets the dataSize filter (REFERENCE, Solana RPC).
            filters.insert(0, SPL_TOKEN_ACCOUNT_LEN)
        config = RpcProgramAccountsConfig(
            RpcAccountInfoConfig(
                encoding=UiAccountEncoding.JsonParsed,
                commitment=CommitmentLevel.Finalized,
                min_context_slot=min_context_slot,
            ),
            filters,
            with_context=True,
        )
        result = self.rpc.call(GetProgramAccounts(Pubkey.from_string(program), config))
        where = self.rpc.where("getProgramAccounts")
        context = _field(result, "context", dict, where)
        slot = _slot(_field(context, "slot", int, f"{where} context"), f"{where} context.slot")
        entries = _field(result, "value", list, where)
        return slot, [
            self._check_account(entry, program, decimals, f"{where} {program} value[{i}]")
            for i, entry in enumerate(entries)
        ]

    def _check_account(
        self, entry: object, program: str, decimals: int, where: str
    ) -> TokenAccount:
        address = parse_pubkey(_field(entry, "pubkey", str, where), where=f"{where}.pubkey")
        where = f"{where} ({address})"
        account = _field(entry, "account", dict, where)
        if _field(account, "owner", str, where) != program:
            raise SolanaForeignAccountError(
                f"account is owned by {account['owner']}, not by the program asked for {program}",
                where=where,
            )
        data = _field(account, "data", dict, f"{where}.account")  # jsonParsed, not base64
        if _field(data, "program", str, f"{where}.data") != PARSED_PROGRAM_NAMES[program]:
            raise SolanaForeignAccountError(
                f"parsed as {data['program']!r}, expected {PARSED_PROGRAM_NAMES[program]!r}",
                where=where,
            )
        parsed = _field(data, "parsed", dict, f"{where}.data")
        if _field(parsed, "type", str, f"{where}.data.parsed") != "account":
            raise SolanaForeignAccountError(
                f"not a token account (type {parsed['type']!r})", where=where
            )
        info = _field(parsed, "info", dict, f"{where}.data.parsed")
        mint = _field(info, "mint", str, f"{where}.info")
        if mint != self.mint:
            # A node that ignores the memcmp filter (or lies) must not add another
            # token's balances to this token's liabilities.
            raise SolanaForeignAccountError(
                f"account of mint {mint} in the listing for mint {self.mint}", where=where
            )
        owner = parse_pubkey(
            _field(info, "owner", str, f"{where}.info"), where=f"{where}.info.owner"
        )
        state = _field(info, "state", str, f"{where}.info")
        if state not in ("initialized", "frozen"):  # frozen tokens still circulate (REFERENCE)
            raise SolanaAnswerError(f"unexpected account state {state!r}", where=where)
        token_amount = _field(info, "tokenAmount", dict, f"{where}.info")
        amount = _amount(
            _field(token_amount, "amount", str, f"{where}.tokenAmount"),
            f"{where}.info.tokenAmount.amount",
        )
        if _field(token_amount, "decimals", int, f"{where}.tokenAmount") != decimals:
            raise SolanaAnswerError(
                f"account reports {token_amount['decimals']} decimals, the mint {decimals}",
                where=where,
            )
        return TokenAccount(address=address, owner=owner, amount=amount, program=program)

    def read_block(self, slot: int) -> BlockRef:
        """The blockhash and time of exactly `slot` (getBlock without transactions)."""
        where = self.rpc.where("getBlock")
        result = self.rpc.call(
            GetBlock(
                slot,
                RpcBlockConfig(
                    encoding=UiTransactionEncoding.Base64,
                    transaction_details=TransactionDetails.None_,
                    rewards=False,
                    commitment=CommitmentLevel.Finalized,
                    max_supported_transaction_version=0,
                ),
            )
        )
        blockhash = parse_pubkey(
            _field(result, "blockhash", str, where), where=f"{where}.blockhash"
        )
        block_time = result.get("blockTime")
        if isinstance(block_time, bool) or not isinstance(block_time, int):
            raise SolanaAnswerError(
                f"slot {slot} has no block time ({block_time!r}); cannot date the snapshot",
                where=where,
            )
        return BlockRef(
            number=slot, hash=blockhash, time=datetime.fromtimestamp(block_time, tz=UTC)
        )

    def _consistent_read(self) -> tuple[int, int, int, list[TokenAccount]]:
        """Supply and all listings at one context slot, retrying a bounded number of times."""
        seen: list[str] = []
        for attempt in range(self.max_slot_attempts):
            if attempt:
                self._sleep(self.retry_delay_s)
            supply, decimals, slot = self.read_supply()
            accounts: list[TokenAccount] = []
            skew: str | None = None
            for program in self.token_programs:
                try:
                    list_slot, listed = self.list_accounts(
                        program, min_context_slot=slot, decimals=decimals
                    )
                except SolanaRpcError as e:
                    if e.code != RPC_MIN_CONTEXT_SLOT_NOT_REACHED:
                        raise
                    skew = f"supply@{slot}, {program} listing below minContextSlot"
                    break
                if list_slot != slot:
                    skew = f"supply@{slot}, {program} listing@{list_slot}"
                    break
                accounts.extend(listed)
            if skew is None:
                return supply, decimals, slot, accounts
            seen.append(skew)
        raise SolanaSlotSkewError(
            f"slot skew never settled after {self.max_slot_attempts} attempts ({'; '.join(seen)})",
            where=self.rpc.where("getTokenSupply/getProgramAccounts"),
        )

    def snapshot(self) -> ChainSnapshot:
        chain_id = self._read_chain_id()  # every snapshot re-checks the cluster
        self._chain_id = chain_id
        supply, decimals, slot, accounts = self._consistent_read()
        block = self.read_block(slot)
        flows = self.flows_until(chain_id, slot) if self.collect_flows else None
        snap = build_snapshot(
            chain_id=chain_id,
            mint=self.mint,
            decimals=decimals,
            block=block,
            total_supply=supply,
            accounts=accounts,
            exclusions=self.exclusions,
            where=self.rpc.where("getProgramAccounts"),
        )
        if flows is None:
            return snap
        from dataclasses import replace

        return replace(snap, flows=tuple(flows), flows_from_block=0)

    # -- mints and burns ----------------------------------------------------------

    def _signatures(self, until: str | None, max_slot: int) -> list[tuple[str, int]]:
        """(signature, slot) of successful transactions touching the mint, newer than
        `until` and at or below `max_slot`, oldest first (getSignaturesForAddress pages)."""
        out: list[tuple[str, int]] = []
        before: str | None = None
        where = self.rpc.where("getSignaturesForAddress")
        while True:
            config: dict[str, Any] = {"commitment": "finalized", "limit": 1000}
            if before is not None:
                config["before"] = before
            if until is not None:
                config["until"] = until
            page = self.rpc.call_raw(
                {
                    "jsonrpc": "2.0",
                    "id": self.rpc._next_id,
                    "method": "getSignaturesForAddress",
                    "params": [self.mint, config],
                }
            )
            self.rpc._next_id += 1
            if not isinstance(page, list):
                raise SolanaAnswerError("expected a list of signatures", where=where)
            for i, item in enumerate(page):
                sig = _field(item, "signature", str, f"{where}[{i}]")
                slot = _slot(_field(item, "slot", int, f"{where}[{i}]"), f"{where}[{i}].slot")
                if item.get("err") is None and slot <= max_slot:
                    out.append((sig, slot))
            if len(page) < 1000:
                break
            before = page[-1]["signature"]
        out.reverse()
        return out

    def read_transaction_flows(self, chain_id: str, signature: str) -> list[ChainFlow]:
        """The mints and burns of the mint in one finalized transaction (jsonParsed)."""
        where = self.rpc.where("getTransaction")
        result = self.rpc.call_raw(
            {
                "jsonrpc": "2.0",
                "id": self.rpc._next_id,
                "method": "getTransaction",
                "params": [
                    signature,
                    {
                        "encoding": "jsonParsed",
                        "commitment": "finalized",
                        "maxSupportedTransactionVersion": 0,
                    },
                ],
            }
        )
        self.rpc._next_id += 1
        if result is None:
            raise SolanaAnswerError(f"transaction {signature} not found", where=where)
        return parse_transaction_flows(
            result, signature=signature, chain_id=chain_id, mint=self.mint, where=where
        )

    def flows_until(self, chain_id: str, slot: int) -> list[ChainFlow]:
        """Every mint and burn up to `slot`: the stored ones, then the new transactions."""
        state = self.flow_store.load(chain_id, self.mint)
        flows = list(state.flows) if state else []
        until = state.until_signature if state else None
        new = self._signatures(until, slot)
        for sig, _ in new:
            flows.extend(self.read_transaction_flows(chain_id, sig))
        if new:
            self.flow_store.save(
                FlowState(
                    chain_id=chain_id,
                    mint=self.mint,
                    until_signature=new[-1][0],
                    flows=tuple(flows),
                )
            )
        return [f for f in flows if f.block <= slot]


_MINT_TYPES = {"mintTo": "mint", "mintToChecked": "mint", "burn": "burn", "burnChecked": "burn"}


def parse_transaction_flows(
    result: object, *, signature: str, chain_id: str, mint: str, where: str
) -> list[ChainFlow]:
    """Mints and burns of `mint` in a jsonParsed getTransaction answer (top-level and inner
    instructions of the SPL Token programs); the transaction's first memo is their
    reference. A failed transaction has none."""
    meta = _field(result, "meta", dict, where)
    if meta.get("err") is not None:
        return []
    slot = _slot(_field(result, "slot", int, where), f"{where}.slot")
    block_time = result.get("blockTime") if isinstance(result, dict) else None
    if isinstance(block_time, bool) or not isinstance(block_time, int):
        raise SolanaAnswerError(f"transaction {signature} has no block time", where=where)
    tx = _field(result, "transaction", dict, where)
    message = _field(tx, "message", dict, f"{where}.transaction")
    top = _field(message, "instructions", list, f"{where}.message")
    numbered: list[tuple[str, Any]] = [(str(i), ix) for i, ix in enumerate(top)]
    for group in meta.get("innerInstructions") or []:
        idx = group.get("index") if isinstance(group, dict) else None
        for j, ix in enumerate(group.get("instructions") or [] if isinstance(group, dict) else []):
            numbered.append((f"{idx}.{j}", ix))
    memo: str | None = None
    for _, ix in numbered:
        if (
            isinstance(ix, dict)
            and ix.get("program") == "spl-memo"
            and isinstance(ix.get("parsed"), str)
        ):
            memo = normalize_reference(ix["parsed"])
            break
    out: list[ChainFlow] = []
    for pos, ix in numbered:
        if not isinstance(ix, dict) or ix.get("programId") not in PARSED_PROGRAM_NAMES:
            continue
        parsed = ix.get("parsed")
        if not isinstance(parsed, dict) or parsed.get("type") not in _MINT_TYPES:
            continue
        info = _field(parsed, "info", dict, f"{where} instruction {pos}")
        if info.get("mint") != mint:
            continue
        if "tokenAmount" in info:
            amount = _amount(_field(info["tokenAmount"], "amount", str, where), where)
        else:
            amount = _amount(_field(info, "amount", str, where), where)
        out.append(
            ChainFlow(
                id=f"{chain_id}:{signature}:{pos}",
                chain_id=chain_id,
                kind=_MINT_TYPES[parsed["type"]],
                block=slot,
                time=datetime.fromtimestamp(block_time, UTC),
                amount=amount,
                reference=memo,
            )
        )
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowState:
    """Where the Solana flow index stopped: the newest signature read, and every flow."""

    chain_id: str
    mint: str
    until_signature: str
    flows: tuple[ChainFlow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "por-solana-flows-v1",
            "chain_id": self.chain_id,
            "mint": self.mint,
            "until_signature": self.until_signature,
            "flows": [f.to_dict() for f in self.flows],
        }

    @classmethod
    def from_dict(cls, d: Any, *, where: str) -> FlowState:
        if not isinstance(d, dict) or d.get("format") != "por-solana-flows-v1":
            raise FormatError("not a por-solana-flows-v1 file", where=where)
        return cls(
            chain_id=str(d["chain_id"]),
            mint=str(d["mint"]),
            until_signature=str(d["until_signature"]),
            flows=tuple(
                ChainFlow.from_dict(f, where=f"{where}.flows[{i}]")
                for i, f in enumerate(d["flows"])
            ),
        )


class FlowStore(Protocol):
    def load(self, chain_id: str, mint: str) -> FlowState | None: ...

    def save(self, state: FlowState) -> None: ...


class MemoryFlowStore:
    def __init__(self) -> None:
        self._data: dict[tuple[str, str], FlowState] = {}

    def load(self, chain_id: str, mint: str) -> FlowState | None:
        return self._data.get((chain_id, mint))

    def save(self, state: FlowState) -> None:
        self._data[(state.chain_id, state.mint)] = state


class FileFlowStore:
    """One JSON file per (cluster, mint) in `directory`, replaced atomically."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, chain_id: str, mint: str) -> Path:
        return self.directory / f"{chain_id.replace(':', '_')}_{mint}.flows.json"

    def load(self, chain_id: str, mint: str) -> FlowState | None:
        path = self.path(chain_id, mint)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StoreError(f"cannot read the flow index: {e}", where=str(path)) from e
        try:
            return FlowState.from_dict(json.loads(raw), where=str(path))
        except (ValueError, KeyError, TypeError) as e:
            raise FormatError(f"malformed flow index: {e}", where=str(path)) from e

    def save(self, state: FlowState) -> None:
        write_atomic(
            self.path(state.chain_id, state.mint),
            json.dumps(state.to_dict(), separators=(",", ":")).encode(),
        )


class BlobFlowStore:
    """The flow index as a `StateBlobs` entry per (cluster, mint) (the service's database
    with `[service] state = "database"`)."""

    NAMESPACE = "solana-flows"

    def __init__(self, blobs: StateBlobs) -> None:
        self._blobs = blobs

    def load(self, chain_id: str, mint: str) -> FlowState | None:
        key = f"{chain_id}:{mint}"
        raw = self._blobs.get(self.NAMESPACE, key)
        if raw is None:
            return None
        where = f"{self._blobs.where} {self.NAMESPACE}/{key}"
        try:
            return FlowState.from_dict(json.loads(raw), where=where)
        except (ValueError, KeyError, TypeError) as e:
            raise FormatError(f"malformed flow index: {e}", where=where) from e

    def save(self, state: FlowState) -> None:
        self._blobs.put(
            self.NAMESPACE,
            f"{state.chain_id}:{state.mint}",
            json.dumps(state.to_dict(), separators=(",", ":")).encode(),
        )


def build_snapshot(
    *,
    chain_id: str,
    mint: str,
    decimals: int,
    block: BlockRef,
    total_supply: int,
    accounts: Iterable[TokenAccount],
    exclusions: Mapping[str, str],
    where: str,
) -> ChainSnapshot:
    """Aggregate checked token accounts per owner into a snapshot (no I/O)."""
    per_owner: dict[str, int] = {}
    seen: set[str] = set()
    for acc in accounts:
        if acc.address in seen:
            raise SolanaAnswerError(f"token account {acc.address} listed twice", where=where)
        seen.add(acc.address)
        per_owner[acc.owner] = per_owner.get(acc.owner, 0) + acc.amount
    indexed_sum = sum(per_owner.values())
    prefix = chain_id + ":"
    excluded = tuple(
        ExcludedAccount(account=prefix + owner, balance=per_owner.get(owner, 0), reason=reason)
        for owner, reason in sorted(exclusions.items())
    )
    holders = Holders.from_items(
        (prefix + owner, balance)
        for owner, balance in sorted(per_owner.items())
        if balance > 0 and owner not in exclusions
    )
    mismatch = (
        None
        if indexed_sum == total_supply
        else SupplyMismatch(total_supply=total_supply, indexed_sum=indexed_sum)
    )
    return ChainSnapshot(
        chain_id=chain_id,
        token_address=prefix + mint,
        decimals=decimals,
        block=block,
        total_supply=total_supply,
        holders=holders,
        excluded=excluded,
        mismatch=mismatch,
    )


__all__ = [
    "TOKEN_2022_PROGRAM_ID",
    "TOKEN_PROGRAM_ID",
    "BlobFlowStore",
    "FileFlowStore",
    "FlowState",
    "FlowStore",
    "MemoryFlowStore",
    "SolanaAnswerError",
    "SolanaForeignAccountError",
    "SolanaReader",
    "SolanaRpc",
    "SolanaRpcError",
    "SolanaSlotSkewError",
    "SolanaUnknownMintError",
    "SolanaWrongChainError",
    "TokenAccount",
    "build_snapshot",
    "chain_id_from_genesis",
    "endpoint_label",
    "parse_pubkey",
    "parse_transaction_flows",
]
