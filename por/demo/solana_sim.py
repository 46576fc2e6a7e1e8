"""A loopback Solana JSON-RPC server backed by LiteSVM, for tests and `por demo`.

No Solana validator installs from the package registries here, so this serves the few
JSON-RPC methods por uses from real LiteSVM state (real SPL Token, Token-2022 and Memo
programs, real signed transactions), with answers shaped as Solana's RPC documentation
gives them (`context: {slot, apiVersion}`, JSON-RPC error objects with Solana's codes
and messages). The real reader and publisher therefore run unchanged over HTTP.

Served methods: getGenesisHash, getSlot, getBlockHeight, getTokenSupply,
getProgramAccounts (filters dataSize/memcmp, encodings jsonParsed and base64,
withContext, minContextSlot), getBlock (transactionDetails "none" only), getBlockTime,
getLatestBlockhash, sendTransaction (base64 or base58), getSignatureStatuses,
getSignaturesForAddress, getTransaction (base64, json, or jsonParsed: SPL Token
mintTo/mintToChecked/burn/burnChecked/freezeAccount/transfer(Checked) and SPL Memo are
parsed as Solana's RPC parses them, other instructions are left in their raw form).

Slots: LiteSVM has no blocks, so the sim makes one: every state change (a transaction,
an airdrop, `advance_slots`) seals a slot — the slot number and clock advance, the
blockhash rotates, and the slot's blockhash/time/height are recorded. There are no
forks: every sealed slot is finalized at once, so all commitments read the same bank.
Blockhashes stay valid for 150 blocks (as on Solana); the sim checks that itself.

Faults (`SolanaSim.faults`) let tests play a careless or hostile node: advance the chain
between getTokenSupply and the listings, ignore the mint filter, or rewrite any answer.

I/O: listens on 127.0.0.1 only (a free port), in a background thread; no disk.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import spl.token.instructions as token_ix
import spl.token.models as token_models
from solders.clock import Clock
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import (
    CreateAccountParams,
    CreateAccountWithSeedParams,
    create_account,
    create_account_with_seed,
)
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_metadata import TransactionMetadata

from por.chains.solana import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

MEMO_PROGRAM_IDS = (
    "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr",  # SPL Memo v2 (v3 program)
    "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo",  # SPL Memo v1
)
API_VERSION = "2.2.0"  # what `context.apiVersion` reports
MAX_PROCESSING_AGE = 150  # blocks a blockhash stays valid (solana-sdk clock.rs)
SLOT_MS = 400
DEFAULT_GENESIS = str(Hash(hashlib.sha256(b"por litesvm sim genesis").digest()))

_MINT_LEN = 82
_ACCOUNT_LEN = 165
_ACCOUNT_TYPE_OFFSET = 165  # Token-2022: 1 = mint, 2 = account, then TLV extensions
_EXTENSION_NAMES = {7: "immutableOwner"}
_TOKEN_PROGRAMS = {TOKEN_PROGRAM_ID: "spl-token", TOKEN_2022_PROGRAM_ID: "spl-token-2022"}


class RpcFaultError(Exception):
    """A JSON-RPC error object to answer with (code and message as Solana gives them)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


def _invalid_params(message: str) -> RpcFaultError:
    return RpcFaultError(-32602, message)


@dataclass(slots=True)
class SimFaults:
    """Misbehaviour switches; all off by default."""

    # Seal this many empty slots, one right after each getTokenSupply answer, so the
    # following listings see a later bank (the chain moved on between two calls).
    advance_slot_after_supply: int = 0
    # Answer getProgramAccounts with every account of the program, ignoring filters.
    ignore_filters: bool = False
    # method -> function rewriting the full JSON-RPC answer object before it is sent.
    rewrite: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Block:
    slot: int
    parent_slot: int
    height: int
    blockhash: str
    previous_blockhash: str
    time_s: int


@dataclass(frozen=True, slots=True)
class _TxRecord:
    signature: str
    slot: int
    raw: bytes
    version: object
    fee: int
    logs: list[str]
    account_keys: list[str]
    memo: str | None
    compute_units: int


@dataclass(frozen=True, slots=True)
class MintInfo:
    address: Pubkey
    program: Pubkey
    decimals: int


def parse_token_account(data: bytes) -> tuple[str, str, int, int] | None:
    """(mint, owner, amount, state) of a token account's bytes, or None if not one.

    SPL Token account layout: mint 0..32, owner 32..64, amount 64..72 (u64 LE),
    delegate COption 72..108, state 108 (0 uninitialized, 1 initialized, 2 frozen).
    Token-2022 adds account type 2 at byte 165 and TLV extensions after it.
    """
    if len(data) < _ACCOUNT_LEN or (len(data) > _ACCOUNT_LEN and data[_ACCOUNT_TYPE_OFFSET] != 2):
        return None
    mint = str(Pubkey.from_bytes(data[0:32]))
    owner = str(Pubkey.from_bytes(data[32:64]))
    amount = int.from_bytes(data[64:72], "little")
    return mint, owner, amount, data[108]


def _extensions(data: bytes) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pos = _ACCOUNT_TYPE_OFFSET + 1
    while pos + 4 <= len(data):
        ext_type = int.from_bytes(data[pos : pos + 2], "little")
        length = int.from_bytes(data[pos + 2 : pos + 4], "little")
        if ext_type == 0:
            break
        out.append({"extension": _EXTENSION_NAMES.get(ext_type, "unparseableExtension")})
        pos += 4 + length
    return out


def _ui_amount_string(amount: int, decimals: int) -> str:
    if decimals == 0:
        return str(amount)
    whole, frac = divmod(amount, 10**decimals)
    frac_s = f"{frac:0{decimals}d}".rstrip("0")
    return f"{whole}.{frac_s}" if frac_s else str(whole)


def _token_amount(amount: int, decimals: int) -> dict[str, Any]:
    ui = _ui_amount_string(amount, decimals)
    # uiAmount is a JSON float on Solana (f64); emitted as a raw number token below.
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": _RawNumber(ui),
        "uiAmountString": ui,
    }


class _RawNumber(str):
    """A number already spelled in decimal, written to JSON without quotes and without a float."""


class _Encoder(json.JSONEncoder):
    def encode(self, o: Any) -> str:
        return "".join(self.iterencode(o))

    def iterencode(self, o: Any, _one_shot: bool = False) -> Iterator[str]:
        if isinstance(o, _RawNumber):
            yield str.__str__(o) if "." in o else f"{o}.0"
            return
        if isinstance(o, dict):
            yield "{"
            for i, (k, v) in enumerate(o.items()):
                if i:
                    yield ","
                yield json.dumps(k)
                yield ":"
                yield from self.iterencode(v)
            yield "}"
            return
        if isinstance(o, list | tuple):
            yield "["
            for i, v in enumerate(o):
                if i:
                    yield ","
                yield from self.iterencode(v)
            yield "]"
            return
        yield json.dumps(o)


def _pubkey_param(value: object) -> Pubkey:
    if not isinstance(value, str):
        raise _invalid_params("Invalid param: WrongSize")
    try:
        return Pubkey.from_string(value)
    except ValueError as e:
        raise _invalid_params("Invalid param: Invalid") from e


def _config(params: list[Any], index: int) -> dict[str, Any]:
    if len(params) > index and params[index] is not None:
        if not isinstance(params[index], dict):
            raise _invalid_params("Invalid params: invalid type: expected a config map.")
        config: dict[str, Any] = params[index]
        return config
    return {}


class SolanaSim:
    """LiteSVM state behind a loopback Solana JSON-RPC endpoint.

    with SolanaSim() as sim:
        mint = sim.create_mint(decimals=6)
        acct = sim.create_token_account(mint, owner)
        sim.mint_to(mint, acct, 1_000_000)
        reader = SolanaReader(sim.url, str(mint))
    """

    def __init__(
        self,
        *,
        genesis_hash: str = DEFAULT_GENESIS,
        start_slot: int = 1_000,
        start_time_s: int = 1_767_225_600,  # 2026-01-01T00:00:00Z; the sim's clock is its own
    ) -> None:
        self._lock = threading.RLock()
        self.svm = LiteSVM().with_blockhash_check(False)  # the sim checks block age itself
        self.genesis_hash = genesis_hash
        self.chain_id = f"solana:{genesis_hash[:32]}"
        self.payer = Keypair.from_seed(hashlib.sha256(b"por sim payer").digest())
        self.faults = SimFaults()
        self.request_count: dict[str, int] = {}
        self._start_time_s = start_time_s
        self._start_slot = start_slot
        self._blocks: dict[int, _Block] = {}
        self._blockhash_height: dict[str, int] = {}
        self._txs: dict[str, _TxRecord] = {}
        self._by_address: dict[str, list[str]] = {}
        self._mints: dict[str, MintInfo] = {}
        self._seed_counter = 0
        self._slot = start_slot
        self._height = 0
        self._set_clock()
        genesis_block = _Block(
            slot=start_slot,
            parent_slot=start_slot,
            height=0,
            blockhash=str(self.svm.latest_blockhash()),
            previous_blockhash=str(Hash.default()),
            time_s=self._time_of(start_slot),
        )
        self._blocks[start_slot] = genesis_block
        self._blockhash_height[genesis_block.blockhash] = 0
        self._airdrop(self.payer.pubkey(), 10**14)  # LiteSVM's airdrop account holds < 10^15
        self._seal()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- server lifecycle ---------------------------------------------------------

    def start(self) -> SolanaSim:
        if self._server is not None:
            return self
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the reader makes many small calls

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, payload = sim.handle(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="solana-sim", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> SolanaSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("SolanaSim is not started")
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    @property
    def slot(self) -> int:
        return self._slot

    def block(self, slot: int) -> tuple[str, int]:
        """(blockhash, unix time) the sim recorded for a sealed slot."""
        with self._lock:
            b = self._blocks[slot]
            return b.blockhash, b.time_s

    def clear_faults(self) -> None:
        with self._lock:
            self.faults = SimFaults()

    @contextmanager
    def faulty(self, **changes: Any) -> Iterator[SimFaults]:
        """Switch faults on for a `with` block, then off again."""
        with self._lock:
            for k, v in changes.items():
                setattr(self.faults, k, v)
        try:
            yield self.faults
        finally:
            self.clear_faults()

    # ---- slots and clock ----------------------------------------------------------

    def _time_of(self, slot: int) -> int:
        return self._start_time_s + (slot - self._start_slot) * SLOT_MS // 1000

    def _set_clock(self) -> None:
        self.svm.set_clock(
            Clock(
                slot=self._slot,
                epoch_start_timestamp=self._start_time_s,
                epoch=0,
                leader_schedule_epoch=0,
                unix_timestamp=self._time_of(self._slot),
            )
        )

    def _seal(self) -> None:
        """Close the current slot: what was processed becomes the bank at the next slot."""
        parent = self._blocks[self._slot]
        self._slot += 1
        self._height += 1
        self._set_clock()
        self.svm.expire_blockhash()
        block = _Block(
            slot=self._slot,
            parent_slot=parent.slot,
            height=self._height,
            blockhash=str(self.svm.latest_blockhash()),
            previous_blockhash=parent.blockhash,
            time_s=self._time_of(self._slot),
        )
        self._blocks[self._slot] = block
        self._blockhash_height[block.blockhash] = block.height

    def advance_slots(self, n: int = 1) -> int:
        """Seal n empty slots; returns the new slot."""
        with self._lock:
            for _ in range(n):
                self._seal()
            return self._slot

    # ---- transactions -------------------------------------------------------------

    def latest_blockhash(self) -> Hash:
        with self._lock:
            return Hash.from_string(self._blocks[self._slot].blockhash)

    def submit(self, tx: Transaction | VersionedTransaction) -> str:
        """Process a signed transaction in a new slot; returns its signature.

        Raises RpcFaultError(-32002, ...) as a preflight failure would on Solana.
        """
        with self._lock:
            vtx = (
                tx if isinstance(tx, VersionedTransaction) else VersionedTransaction.from_legacy(tx)
            )
            signature = str(vtx.signatures[0])
            if signature in self._txs:
                raise RpcFaultError(
                    -32002,
                    "Transaction simulation failed: This transaction has already been processed",
                    {"err": "AlreadyProcessed"},
                )
            blockhash = str(vtx.message.recent_blockhash)
            height = self._blockhash_height.get(blockhash)
            if height is None or self._height > height + MAX_PROCESSING_AGE:
                raise RpcFaultError(
                    -32002,
                    "Transaction simulation failed: Blockhash not found",
                    {"err": "BlockhashNotFound", "logs": []},
                )
            result = self.svm.send_transaction(vtx)
            if not isinstance(result, TransactionMetadata):
                logs = list(result.meta().logs())
                raise RpcFaultError(
                    -32002,
                    f"Transaction simulation failed: {result.err()}",
                    {"err": str(result.err()), "logs": logs},
                )
            keys = [str(k) for k in vtx.message.account_keys]
            memos = self._memos_of(vtx)
            self._seal()
            record = _TxRecord(
                signature=signature,
                slot=self._slot,
                raw=bytes(vtx),
                version=vtx.version(),
                fee=result.fee(),
                logs=list(result.logs()),
                account_keys=keys,
                # getSignaturesForAddress formats memos as "[len] memo", joined by "; "
                memo="; ".join(f"[{len(m)}] {m}" for m in memos) if memos else None,
                compute_units=result.compute_units_consumed(),
            )
            self._txs[signature] = record
            for key in dict.fromkeys(keys):
                self._by_address.setdefault(key, []).append(signature)
            return signature

    @staticmethod
    def _memos_of(vtx: VersionedTransaction) -> list[str]:
        keys = vtx.message.account_keys
        out = []
        for ix in vtx.message.instructions:
            if str(keys[ix.program_id_index]) in MEMO_PROGRAM_IDS:
                out.append(bytes(ix.data).decode("utf-8", errors="replace"))
        return out

    def send(self, instructions: list[Any], *signers: Keypair) -> str:
        """Build, sign (payer first) and submit a legacy transaction."""
        with self._lock:
            blockhash = self.latest_blockhash()
            msg = Message.new_with_blockhash(instructions, self.payer.pubkey(), blockhash)
            all_signers = [self.payer, *[s for s in signers if s.pubkey() != self.payer.pubkey()]]
            return self.submit(Transaction(all_signers, msg, blockhash))

    def _airdrop(self, to: Pubkey, lamports: int) -> None:
        result = self.svm.airdrop(to, lamports)
        if not isinstance(result, TransactionMetadata):
            raise RuntimeError(f"LiteSVM airdrop failed: {result.err()}")

    def airdrop(self, to: Pubkey, lamports: int) -> None:
        with self._lock:
            self._airdrop(to, lamports)
            self._seal()

    def memos(self, address: Pubkey | str) -> list[str]:
        """Read-back: the memo texts of every transaction touching `address`, oldest first."""
        with self._lock:
            out: list[str] = []
            for sig in self._by_address.get(str(address), []):
                out.extend(self._memos_of(VersionedTransaction.from_bytes(self._txs[sig].raw)))
            return out

    # ---- SPL token helpers (spl.token builds the instructions; layouts in docs/solana.md)

    def create_mint(
        self,
        *,
        decimals: int,
        token_2022: bool = False,
        authority: Keypair | None = None,
        freeze_authority: bool = False,
    ) -> Pubkey:
        program = TOKEN_2022_PROGRAM_ID if token_2022 else TOKEN_PROGRAM_ID
        program_key = Pubkey.from_string(program)
        mint = Keypair.from_seed(hashlib.sha256(f"mint {self._next_seed()}".encode()).digest())
        auth = authority or self.payer
        with self._lock:
            rent = self.svm.minimum_balance_for_rent_exemption(_MINT_LEN)
            self.send(
                [
                    create_account(
                        CreateAccountParams(
                            from_pubkey=self.payer.pubkey(),
                            to_pubkey=mint.pubkey(),
                            lamports=rent,
                            space=_MINT_LEN,
                            owner=program_key,
                        )
                    ),
                    token_ix.initialize_mint2(
                        token_models.InitializeMint2Params(
                            decimals=decimals,
                            program_id=program_key,
                            mint=mint.pubkey(),
                            mint_authority=auth.pubkey(),
                            freeze_authority=auth.pubkey() if freeze_authority else None,
                        )
                    ),
                ],
                mint,
            )
            self._mints[str(mint.pubkey())] = MintInfo(
                address=mint.pubkey(), program=program_key, decimals=decimals
            )
        return mint.pubkey()

    def _next_seed(self) -> str:
        with self._lock:
            self._seed_counter += 1
            return f"por{self._seed_counter}"

    def mint_info(self, mint: Pubkey | str) -> MintInfo:
        return self._mints[str(mint)]

    def create_token_account(self, mint: Pubkey, owner: Pubkey) -> Pubkey:
        """A new token account of `mint` for `owner` (address derived with a seed from the payer).

        Token-2022 accounts get the ImmutableOwner extension (170 bytes, as associated
        token accounts have), so listings must not filter them by dataSize 165.
        """
        info = self.mint_info(mint)
        seed = self._next_seed()
        address = Pubkey.create_with_seed(self.payer.pubkey(), seed, info.program)
        is_2022 = str(info.program) == TOKEN_2022_PROGRAM_ID
        space = _ACCOUNT_LEN + 1 + 4 if is_2022 else _ACCOUNT_LEN
        with self._lock:
            ixs = [
                create_account_with_seed(
                    CreateAccountWithSeedParams(
                        from_pubkey=self.payer.pubkey(),
                        to_pubkey=address,
                        base=self.payer.pubkey(),
                        seed=seed,
                        lamports=self.svm.minimum_balance_for_rent_exemption(space),
                        space=space,
                        owner=info.program,
                    )
                )
            ]
            if is_2022:
                ixs.append(
                    token_ix.initialize_immutable_owner(
                        token_models.InitializeImmutableOwnerParams(
                            program_id=info.program, account=address
                        )
                    )
                )
            ixs.append(
                token_ix.initialize_account3(
                    token_models.InitializeAccount3Params(
                        program_id=info.program, account=address, mint=mint, owner=owner
                    )
                )
            )
            self.send(ixs)
        return address

    def mint_to(
        self,
        mint: Pubkey,
        account: Pubkey,
        amount: int,
        authority: Keypair | None = None,
        *,
        memo: str | None = None,
    ) -> str:
        """Mint `amount` to `account`; with `memo`, an SPL Memo instruction in the same
        transaction carries the payment reference."""
        info = self.mint_info(mint)
        auth = authority or self.payer
        return self.send(
            [
                *self._memo_ix(memo),
                token_ix.mint_to(
                    token_models.MintToParams(
                        program_id=info.program,
                        mint=mint,
                        dest=account,
                        mint_authority=auth.pubkey(),
                        amount=amount,
                    )
                ),
            ],
            auth,
        )

    @staticmethod
    def _memo_ix(memo: str | None) -> list[Instruction]:
        if memo is None:
            return []
        return [Instruction(Pubkey.from_string(MEMO_PROGRAM_IDS[0]), memo.encode(), [])]

    def freeze(self, mint: Pubkey, account: Pubkey, authority: Keypair | None = None) -> str:
        """Freeze a token account (the mint was created with `freeze_authority=True`)."""
        info = self.mint_info(mint)
        auth = authority or self.payer
        return self.send(
            [
                token_ix.freeze_account(
                    token_models.FreezeAccountParams(
                        program_id=info.program, account=account, mint=mint, authority=auth.pubkey()
                    )
                )
            ],
            auth,
        )

    def transfer(
        self, mint: Pubkey, source: Pubkey, dest: Pubkey, owner: Keypair, amount: int
    ) -> str:
        info = self.mint_info(mint)
        return self.send(
            [
                token_ix.transfer_checked(
                    token_models.TransferCheckedParams(
                        program_id=info.program,
                        source=source,
                        mint=mint,
                        dest=dest,
                        owner=owner.pubkey(),
                        amount=amount,
                        decimals=info.decimals,
                    )
                )
            ],
            owner,
        )

    def burn(
        self,
        mint: Pubkey,
        account: Pubkey,
        owner: Keypair,
        amount: int,
        *,
        memo: str | None = None,
    ) -> str:
        info = self.mint_info(mint)
        return self.send(
            [
                *self._memo_ix(memo),
                token_ix.burn(
                    token_models.BurnParams(
                        program_id=info.program,
                        account=account,
                        mint=mint,
                        owner=owner.pubkey(),
                        amount=amount,
                    )
                ),
            ],
            owner,
        )

    def supply(self, mint: Pubkey) -> int:
        """Direct read of a mint's supply from LiteSVM (for test expectations)."""
        account = self.svm.get_account(mint)
        if account is None:
            raise KeyError(str(mint))
        return int.from_bytes(bytes(account.data)[36:44], "little")

    # ---- JSON-RPC -----------------------------------------------------------------

    def handle(self, body: bytes) -> tuple[int, bytes]:
        """One HTTP POST body -> (status, JSON answer). Batches are not served."""
        try:
            request = json.loads(body)
        except ValueError:
            return 200, self._encode(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
            )
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return 200, self._encode(
                {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {"code": -32600, "message": "Invalid request"},
                }
            )
        method = request["method"]
        params = request.get("params") or []
        answer: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
        with self._lock:
            self.request_count[method] = self.request_count.get(method, 0) + 1
            handler = getattr(self, f"_rpc_{method}", None)
            try:
                if handler is None or not isinstance(params, list):
                    raise RpcFaultError(-32601, "Method not found")
                answer["result"] = handler(params)
            except RpcFaultError as f:
                error: dict[str, Any] = {"code": f.code, "message": f.message}
                if f.data is not None:
                    error["data"] = f.data
                answer["error"] = error
            rewrite = self.faults.rewrite.get(method)
            if rewrite is not None:
                answer = rewrite(answer)
        return 200, self._encode(answer)

    @staticmethod
    def _encode(answer: Any) -> bytes:
        return _Encoder().encode(answer).encode()

    def _context(self) -> dict[str, Any]:
        return {"slot": self._slot, "apiVersion": API_VERSION}

    def _check_min_context_slot(self, config: dict[str, Any]) -> None:
        min_slot = config.get("minContextSlot")
        if isinstance(min_slot, int) and min_slot > self._slot:
            raise RpcFaultError(
                -32016, "Minimum context slot has not been reached", {"contextSlot": self._slot}
            )

    def _rpc_getGenesisHash(self, params: list[Any]) -> Any:
        return self.genesis_hash

    def _rpc_getSlot(self, params: list[Any]) -> Any:
        self._check_min_context_slot(_config(params, 0))
        return self._slot

    def _rpc_getBlockHeight(self, params: list[Any]) -> Any:
        return self._height

    def _rpc_getLatestBlockhash(self, params: list[Any]) -> Any:
        block = self._blocks[self._slot]
        return {
            "context": self._context(),
            "value": {
                "blockhash": block.blockhash,
                "lastValidBlockHeight": block.height + MAX_PROCESSING_AGE,
            },
        }

    def _block(self, slot: object) -> _Block:
        if isinstance(slot, bool) or not isinstance(slot, int):
            raise _invalid_params("Invalid params: invalid type: expected u64.")
        if slot > self._slot:
            raise RpcFaultError(-32004, f"Block not available for slot {slot}")
        block = self._blocks.get(slot)
        if block is None:
            raise RpcFaultError(-32009, f"Slot {slot} was skipped, or missing in long-term storage")
        return block

    def _rpc_getBlockTime(self, params: list[Any]) -> Any:
        return self._block(params[0] if params else None).time_s

    def _rpc_getBlock(self, params: list[Any]) -> Any:
        block = self._block(params[0] if params else None)
        config = _config(params, 1)
        if config.get("transactionDetails") != "none":
            raise _invalid_params('Invalid params: the sim serves transactionDetails "none" only')
        return {
            "blockHeight": block.height,
            "blockTime": block.time_s,
            "blockhash": block.blockhash,
            "parentSlot": block.parent_slot,
            "previousBlockhash": block.previous_blockhash,
        }

    def _rpc_getTokenSupply(self, params: list[Any]) -> Any:
        mint = _pubkey_param(params[0] if params else None)
        account = self.svm.get_account(mint)
        if account is None:
            raise _invalid_params("Invalid param: could not find account")
        data = bytes(account.data)
        if str(account.owner) not in _TOKEN_PROGRAMS:
            raise _invalid_params("Invalid param: not a Token mint")
        is_mint = len(data) == _MINT_LEN or (
            len(data) > _ACCOUNT_LEN and data[_ACCOUNT_TYPE_OFFSET] == 1
        )
        if not is_mint or data[45] != 1:
            raise _invalid_params("Invalid param: mint could not be unpacked")
        supply = int.from_bytes(data[36:44], "little")
        answer = {"context": self._context(), "value": _token_amount(supply, data[44])}
        if self.faults.advance_slot_after_supply > 0:
            self.faults.advance_slot_after_supply -= 1
            self._seal()
        return answer

    def _rpc_getProgramAccounts(self, params: list[Any]) -> Any:
        program = _pubkey_param(params[0] if params else None)
        config = _config(params, 1)
        self._check_min_context_slot(config)
        encoding = config.get("encoding") or "base64"
        filters = config.get("filters") or []
        if not isinstance(filters, list) or len(filters) > 4:
            raise _invalid_params("Too many filters provided; max 4")
        out = []
        for address, account in self.svm.get_program_accounts(program):
            data = bytes(account.data)
            if not self.faults.ignore_filters and not all(_matches(f, data) for f in filters):
                continue
            if encoding == "jsonParsed":
                rendered = self._json_parsed(str(program), data)
            elif encoding == "base64":
                rendered = [base64.b64encode(data).decode(), "base64"]
            else:
                raise _invalid_params(f"Invalid params: the sim does not serve encoding {encoding}")
            out.append(
                {
                    "pubkey": str(address),
                    "account": {
                        "data": rendered,
                        "executable": account.executable,
                        "lamports": account.lamports,
                        "owner": str(account.owner),
                        "rentEpoch": 18446744073709551615,
                        "space": len(data),
                    },
                }
            )
        if config.get("withContext"):
            return {"context": self._context(), "value": out}
        return out

    def _json_parsed(self, program: str, data: bytes) -> Any:
        name = _TOKEN_PROGRAMS.get(program)
        parsed_account = parse_token_account(data) if name else None
        if name is None or parsed_account is None:
            # Solana falls back to base64 when it cannot parse (e.g. a mint listed here).
            if name and (len(data) == _MINT_LEN or data[_ACCOUNT_TYPE_OFFSET] == 1):
                supply = int.from_bytes(data[36:44], "little")
                return {
                    "program": name,
                    "space": len(data),
                    "parsed": {
                        "type": "mint",
                        "info": {
                            "decimals": data[44],
                            "isInitialized": data[45] == 1,
                            "supply": str(supply),
                            "mintAuthority": None,
                            "freezeAuthority": None,
                        },
                    },
                }
            return [base64.b64encode(data).decode(), "base64"]
        mint, owner, amount, state = parsed_account
        decimals = self._mints[mint].decimals if mint in self._mints else 0
        info: dict[str, Any] = {
            "isNative": False,
            "mint": mint,
            "owner": owner,
            "state": {0: "uninitialized", 1: "initialized", 2: "frozen"}.get(state, "invalid"),
            "tokenAmount": _token_amount(amount, decimals),
        }
        if len(data) > _ACCOUNT_LEN:
            info["extensions"] = _extensions(data)
        return {"program": name, "parsed": {"info": info, "type": "account"}, "space": len(data)}

    def _rpc_sendTransaction(self, params: list[Any]) -> Any:
        if not params or not isinstance(params[0], str):
            raise _invalid_params("Invalid params: invalid type: expected a string.")
        config = _config(params, 1)
        encoding = config.get("encoding") or "base58"
        try:
            raw = (
                base64.b64decode(params[0], validate=True)
                if encoding == "base64"
                else b58decode(params[0])
            )
            tx = VersionedTransaction.from_bytes(raw)
        except ValueError as e:
            raise _invalid_params(
                f"failed to deserialize solana_transaction::versioned::VersionedTransaction: {e}"
            ) from e
        if not all(tx.verify_with_results()):
            raise RpcFaultError(-32003, "Transaction signature verification failure")
        return self.submit(tx)

    def _rpc_getSignatureStatuses(self, params: list[Any]) -> Any:
        sigs = params[0] if params else None
        if not isinstance(sigs, list) or len(sigs) > 256:
            raise _invalid_params("Invalid params: expected an array of at most 256 signatures")
        value = []
        for sig in sigs:
            record = self._txs.get(sig) if isinstance(sig, str) else None
            value.append(
                None
                if record is None
                else {
                    "slot": record.slot,
                    "confirmations": None,
                    "err": None,
                    "status": {"Ok": None},
                    "confirmationStatus": "finalized",
                }
            )
        return {"context": self._context(), "value": value}

    def _rpc_getSignaturesForAddress(self, params: list[Any]) -> Any:
        address = str(_pubkey_param(params[0] if params else None))
        config = _config(params, 1)
        limit = config.get("limit") or 1000
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise _invalid_params("Invalid limit; max 1000")
        sigs = list(reversed(self._by_address.get(address, [])))  # newest first
        before, until = config.get("before"), config.get("until")
        if before is not None:
            sigs = sigs[sigs.index(before) + 1 :] if before in sigs else []
        if until is not None and until in sigs:
            sigs = sigs[: sigs.index(until)]
        out = []
        for sig in sigs[:limit]:
            record = self._txs[sig]
            out.append(
                {
                    "signature": sig,
                    "slot": record.slot,
                    "err": None,
                    "memo": record.memo,
                    "blockTime": self._blocks[record.slot].time_s,
                    "confirmationStatus": "finalized",
                }
            )
        return out

    def _rpc_getTransaction(self, params: list[Any]) -> Any:
        if not params or not isinstance(params[0], str):
            raise _invalid_params("Invalid params: invalid type: expected a signature string.")
        try:
            Signature.from_string(params[0])
        except ValueError as e:
            raise _invalid_params("Invalid param: Invalid") from e
        config = _config(params, 1)
        record = self._txs.get(params[0])
        if record is None:
            return None
        encoding = config.get("encoding") or "json"
        vtx = VersionedTransaction.from_bytes(record.raw)
        legacy = not isinstance(record.version, int)
        if not legacy and config.get("maxSupportedTransactionVersion") is None:
            raise RpcFaultError(
                -32015,
                "Transaction version (0) is not supported by the requesting "
                "client. Please try the request again with the following "
                'configuration parameter: "maxSupportedTransactionVersion": 0',
            )
        if encoding == "base64":
            transaction: Any = [base64.b64encode(record.raw).decode(), "base64"]
        elif encoding == "json":
            transaction = json.loads(vtx.to_json())
        elif encoding == "jsonParsed":
            transaction = self._json_parsed_tx(vtx)
        else:
            raise _invalid_params(f"Invalid params: the sim does not serve encoding {encoding}")
        n_keys = len(record.account_keys)
        meta: dict[str, Any] = {
            "err": None,
            "status": {"Ok": None},
            "fee": record.fee,
            "preBalances": [0] * n_keys,
            "postBalances": [0] * n_keys,
            "innerInstructions": [],
            "logMessages": record.logs,
            "preTokenBalances": [],
            "postTokenBalances": [],
            "rewards": [],
            "loadedAddresses": {"writable": [], "readonly": []},
            "computeUnitsConsumed": record.compute_units,
        }
        answer = {
            "slot": record.slot,
            "blockTime": self._blocks[record.slot].time_s,
            "transaction": transaction,
            "meta": meta,
        }
        if config.get("maxSupportedTransactionVersion") is not None:
            answer["version"] = "legacy" if legacy else 0
        return answer

    def _json_parsed_tx(self, vtx: VersionedTransaction) -> dict[str, Any]:
        """A transaction as `encoding: "jsonParsed"` gives it (the parts por reads)."""
        msg = vtx.message
        keys = [str(k) for k in msg.account_keys]
        header = msg.header
        n_sig = header.num_required_signatures
        n_ro_signed = header.num_readonly_signed_accounts
        n_ro_unsigned = header.num_readonly_unsigned_accounts

        def writable(i: int) -> bool:
            if i < n_sig:
                return i < n_sig - n_ro_signed
            return i < len(keys) - n_ro_unsigned

        instructions = []
        for ix in msg.instructions:
            program = keys[ix.program_id_index]
            accounts = [keys[a] for a in bytes(ix.accounts)]
            instructions.append(self._parse_instruction(program, accounts, bytes(ix.data)))
        return {
            "signatures": [str(s) for s in vtx.signatures],
            "message": {
                "accountKeys": [
                    {
                        "pubkey": k,
                        "signer": i < n_sig,
                        "writable": writable(i),
                        "source": "transaction",
                    }
                    for i, k in enumerate(keys)
                ],
                "instructions": instructions,
                "recentBlockhash": str(msg.recent_blockhash),
            },
        }

    def _parse_instruction(self, program: str, accounts: list[str], data: bytes) -> dict[str, Any]:
        raw = {
            "programId": program,
            "accounts": accounts,
            "data": _b58encode(data),
            "stackHeight": None,
        }
        if program in MEMO_PROGRAM_IDS:
            return {
                "parsed": data.decode("utf-8", errors="replace"),
                "program": "spl-memo",
                "programId": program,
                "stackHeight": None,
            }
        name = _TOKEN_PROGRAMS.get(program)
        if name is None or not data:
            return raw
        tag = data[0]
        info: dict[str, Any]
        if tag in (7, 14) and len(data) >= 9 and len(accounts) >= 3:  # MintTo(Checked)
            amount = int.from_bytes(data[1:9], "little")
            info = {"account": accounts[1], "mint": accounts[0], "mintAuthority": accounts[2]}
            kind = "mintTo"
        elif tag in (8, 15) and len(data) >= 9 and len(accounts) >= 3:  # Burn(Checked)
            amount = int.from_bytes(data[1:9], "little")
            info = {"account": accounts[0], "mint": accounts[1], "authority": accounts[2]}
            kind = "burn"
        elif tag == 10 and len(accounts) >= 3:
            return {
                "parsed": {
                    "info": {
                        "account": accounts[0],
                        "mint": accounts[1],
                        "freezeAuthority": accounts[2],
                    },
                    "type": "freezeAccount",
                },
                "program": name,
                "programId": program,
                "stackHeight": None,
            }
        else:
            return raw
        if tag in (14, 15):
            decimals = data[9] if len(data) > 9 else 0
            info["tokenAmount"] = _token_amount(amount, decimals)
            kind += "Checked"
        else:
            info["amount"] = str(amount)
        return {
            "parsed": {"info": info, "type": kind},
            "program": name,
            "programId": program,
            "stackHeight": None,
        }


_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58_ALPHABET[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def b58decode(text: str) -> bytes:
    """Bitcoin-alphabet base58 (Solana's), any length; ValueError on a bad character."""
    n = 0
    for ch in text:
        digit = _B58_ALPHABET.find(ch)
        if digit < 0:
            raise ValueError(f"invalid base58 character {ch!r}")
        n = n * 58 + digit
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def _matches(flt: object, data: bytes) -> bool:
    if not isinstance(flt, dict):
        raise _invalid_params("Invalid params: unknown filter")
    if "dataSize" in flt:
        return bool(len(data) == flt["dataSize"])
    if "memcmp" in flt:
        memcmp = flt["memcmp"]
        offset = memcmp.get("offset", 0)
        encoding = memcmp.get("encoding") or "base58"
        raw = memcmp.get("bytes", "")
        want = base64.b64decode(raw) if encoding == "base64" else b58decode(raw)
        return bool(data[offset : offset + len(want)] == want)
    raise _invalid_params("Invalid params: unknown filter")


__all__ = [
    "MEMO_PROGRAM_IDS",
    "MintInfo",
    "RpcFaultError",
    "SimFaults",
    "SolanaSim",
    "parse_token_account",
]
