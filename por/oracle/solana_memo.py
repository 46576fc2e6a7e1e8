"""Solana memo publisher: each attestation's sequence and digest in an SPL Memo transaction.

DESIGN §6: "Solana gets the attestation digest in a memo transaction", exactly once per
attestation. The memo text is

    por:v1:<sequence>:<digest>        e.g. por:v1:7:3f1c…(64 lowercase hex)

signed by the attestor's Solana key (a Solana CLI keypair file: a JSON array of the 64
bytes secret‖public). Anyone can find every published digest with
`getSignaturesForAddress(<attestor>)` and check it against the signed attestation.

Exactly once, by sequence:
1. Before building anything, the attestor's finalized history is scanned
   (`getSignaturesForAddress`, then `getTransaction` base64 for each candidate, whose
   signature is verified and whose memo instruction is decoded). The same sequence with
   the same digest -> "already_published"; with another digest -> PublishError (a
   sequence is never published twice with different contents).
2. With a `state_dir` (or `state`: the store's database), an intent record (sequence,
   digest, signed transaction, lastValidBlockHeight) is written atomically BEFORE sending.
   A restart finds it and re-broadcasts the very same signed transaction (same
   signature, so it can land at most once) until it is finalized, or its blockhash has
   expired without it landing — only then is a new transaction built.

Network I/O goes through `por.chains.solana.SolanaRpc` (httpx + solders request types);
disk I/O only to the keypair file (read) and the intent directory (atomic writes); with
`state` the intents go to those StateBlobs instead (por.statekv).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solders.commitment_config import CommitmentLevel
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.config import (
    RpcContextConfig,
    RpcSendTransactionConfig,
    RpcSignaturesForAddressConfig,
    RpcSignatureStatusConfig,
    RpcTransactionConfig,
)
from solders.rpc.requests import (
    GetBlockHeight,
    GetLatestBlockhash,
    GetSignaturesForAddress,
    GetSignatureStatuses,
    GetTransaction,
    SendRawTransaction,
)
from solders.signature import Signature
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_status import UiTransactionEncoding

from por.chains.solana import (
    SolanaAnswerError,
    SolanaRpc,
    SolanaRpcError,
)
from por.core.canonical import canonical_bytes
from por.errors import ConfigError, InputError, MismatchError, PublishError
from por.fileio import write_atomic
from por.oracle.base import PublishReceipt
from por.statekv import StateBlobs

MEMO_PROGRAM_ID = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"  # SPL Memo (v2 address)
LEGACY_MEMO_PROGRAM_ID = "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo"
MEMO_PREFIX = "por:v1:"
MEMO_NAMESPACE = "solana-memo"  # StateBlobs namespace of the memo intents
_MEMO_RE = re.compile(r"por:v1:([1-9][0-9]{0,15}):([0-9a-f]{64})")
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")


class SolanaPublishError(PublishError):
    """The memo could not be published, or a conflicting memo exists for the sequence."""


def format_memo(sequence: int, digest_hex: str) -> str:
    """The memo text for one attestation: `por:v1:<sequence>:<digest hex>`."""
    return f"{MEMO_PREFIX}{sequence}:{digest_hex}"


def parse_memo(text: str) -> tuple[int, str] | None:
    """(sequence, digest) of a por memo, or None if the text is not exactly one."""
    m = _MEMO_RE.fullmatch(text)
    return (int(m.group(1)), m.group(2)) if m else None


def load_keypair_file(path: str | Path) -> Keypair:
    """Read a Solana CLI keypair file (JSON array of 64 integers 0..255)."""
    where = str(path)
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read keypair file: {e.strerror}", where=where) from e
    except ValueError as e:
        raise ConfigError(f"keypair file is not JSON: {e}", where=where) from e
    if (
        not isinstance(raw, list)
        or len(raw) != 64
        or not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in raw)
    ):
        raise ConfigError(
            "keypair file must be a JSON array of 64 bytes (Solana CLI format)", where=where
        )
    try:
        keypair = Keypair.from_bytes(bytes(raw))
    except ValueError as e:
        raise ConfigError(f"not a valid ed25519 keypair: {e}", where=where) from e
    return keypair


def write_keypair_file(keypair: Keypair, path: str | Path) -> None:
    """Write a Solana CLI keypair file (atomically, mode 0600)."""
    target = Path(path)
    write_atomic(target, json.dumps(list(bytes(keypair))).encode(), mode=0o600)


@dataclass(frozen=True, slots=True, kw_only=True)
class FoundMemo:
    """A por memo read back from the chain (signature verified, memo decoded)."""

    sequence: int
    digest: str
    signature: str
    slot: int


class SolanaMemoPublisher:
    """Publishes `por:v1:<sequence>:<digest>` memos signed by the attestor key."""

    def __init__(
        self,
        rpc_url: str,
        keypair_path: str | Path,
        *,
        chain_id: str | None = None,
        state_dir: str | Path | None = None,
        state: StateBlobs | None = None,
        timeout_s: float = 30.0,
        confirm_timeout_s: float = 90.0,
        poll_interval_s: float = 0.5,
        max_history_signatures: int = 10_000,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keypair = load_keypair_file(keypair_path)
        self.attestor = str(self.keypair.pubkey())
        self.rpc = SolanaRpc(rpc_url, timeout_s=timeout_s, label=chain_id or "solana")
        self._configured_chain_id = chain_id
        self._chain_id: str | None = None
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.state = state  # intents as StateBlobs entries (the database); else state_dir
        self.confirm_timeout_s = confirm_timeout_s
        self.poll_interval_s = poll_interval_s
        self.max_history_signatures = max_history_signatures
        self._sleep = sleep
        self._monotonic = monotonic
        self.contract_label = "spl-memo"  # what the publication state shows as the contract

    @property
    def chain_id(self) -> str:
        if self._configured_chain_id is not None:
            return self._configured_chain_id
        if self._chain_id is None:
            self._chain_id = self._read_chain_id()
        return self._chain_id

    def _read_chain_id(self) -> str:
        return self.rpc.read_chain_id(self._configured_chain_id, error=SolanaPublishError)

    def close(self) -> None:
        self.rpc.close()

    # ---- publish -------------------------------------------------------------------

    def publish(self, doc: Mapping[str, Any], digest_hex: str) -> PublishReceipt:
        sequence = doc.get("sequence")
        if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
            raise InputError(
                f"sequence must be an integer >= 1, got {sequence!r}", where="attestation.sequence"
            )
        if not isinstance(digest_hex, str) or not _DIGEST_RE.fullmatch(digest_hex):
            raise InputError("digest must be 64 lowercase hex characters", where="digest_hex")
        computed = hashlib.sha256(canonical_bytes(dict(doc))).hexdigest()
        if computed != digest_hex:
            # The memo commits to the digest: never publish one that is not this document's.
            raise MismatchError(
                "digest is not the SHA-256 of the document's RFC 8785 bytes",
                expected=digest_hex,
                computed=computed,
                where=f"attestation {sequence}",
            )
        chain_id = self._read_chain_id()
        self._chain_id = chain_id

        pending = self._resume_intent(sequence, digest_hex)
        if pending is not None:
            return pending
        found = self.find_memo(sequence)
        if found is not None:
            return self._already(found, digest_hex)

        blockhash, last_valid_height = self._latest_blockhash()
        tx = self._build(format_memo(sequence, digest_hex), blockhash)
        signature = str(tx.signatures[0])
        self._write_intent(sequence, digest_hex, tx, last_valid_height)
        self._broadcast(tx)
        slot = self._await_finalized(signature, last_valid_height)
        self._clear_intent(sequence)
        return PublishReceipt(
            chain_id=chain_id,
            sequence=sequence,
            tx_hash=signature,
            block_number=slot,
            status="published",
        )

    def _already(self, found: FoundMemo, digest_hex: str) -> PublishReceipt:
        if found.digest != digest_hex:
            raise SolanaPublishError(
                f"sequence {found.sequence} is already published with digest {found.digest} "
                f"(tx {found.signature}); refusing to publish digest {digest_hex}",
                where=self.rpc.where("getSignaturesForAddress"),
            )
        return PublishReceipt(
            chain_id=self.chain_id,
            sequence=found.sequence,
            tx_hash=found.signature,
            block_number=found.slot,
            status="already_published",
        )

    def _build(self, memo: str, blockhash: Hash) -> Transaction:
        # SPL Memo: instruction data is the UTF-8 text; listing the attestor as a signer
        # account makes the program check that it signed (spl-memo processor.rs).
        ix = Instruction(
            Pubkey.from_string(MEMO_PROGRAM_ID),
            memo.encode(),
            [AccountMeta(self.keypair.pubkey(), is_signer=True, is_writable=True)],
        )
        message = Message.new_with_blockhash([ix], self.keypair.pubkey(), blockhash)
        return Transaction([self.keypair], message, blockhash)

    def _latest_blockhash(self) -> tuple[Hash, int]:
        where = self.rpc.where("getLatestBlockhash")
        finalized = RpcContextConfig(commitment=CommitmentLevel.Finalized)
        result = self.rpc.call(GetLatestBlockhash(finalized))
        try:
            value = result["value"]
            return Hash.from_string(value["blockhash"]), int(value["lastValidBlockHeight"])
        except (KeyError, TypeError, ValueError) as e:
            raise SolanaAnswerError(f"malformed answer: {e!r}", where=where) from e

    def _block_height(self) -> int:
        finalized = RpcContextConfig(commitment=CommitmentLevel.Finalized)
        height = self.rpc.call(GetBlockHeight(finalized))
        if isinstance(height, bool) or not isinstance(height, int):
            raise SolanaAnswerError(
                f"block height must be an integer, got {height!r}",
                where=self.rpc.where("getBlockHeight"),
            )
        return height

    def _broadcast(self, tx: Transaction) -> None:
        config = RpcSendTransactionConfig(preflight_commitment=CommitmentLevel.Finalized)
        try:
            sent = self.rpc.call(SendRawTransaction(bytes(tx), config))
        except SolanaRpcError as e:
            if "already been processed" in e.message:
                return  # the same signed transaction landed before: fine, it is idempotent
            raise SolanaPublishError(f"sendTransaction refused: {e.message}", where=e.where) from e
        if sent != str(tx.signatures[0]):
            raise SolanaAnswerError(
                f"sendTransaction returned signature {sent!r}, signed {tx.signatures[0]}",
                where=self.rpc.where("sendTransaction"),
            )

    def _status(self, signature: str) -> tuple[int, str] | None:
        """(slot, confirmationStatus) of a transaction, or None if the node has not seen it."""
        where = self.rpc.where("getSignatureStatuses")
        # searchTransactionHistory: a resumed intent may be older than the status cache
        result = self.rpc.call(
            GetSignatureStatuses(
                [Signature.from_string(signature)],
                RpcSignatureStatusConfig(search_transaction_history=True),
            )
        )
        try:
            status = result["value"][0]
            if status is None:
                return None
            if status.get("err") is not None:
                raise SolanaPublishError(
                    f"memo transaction {signature} failed: {status['err']}", where=where
                )
            return int(status["slot"]), str(status.get("confirmationStatus"))
        except (KeyError, TypeError, IndexError, ValueError) as e:
            raise SolanaAnswerError(f"malformed answer: {e!r}", where=where) from e

    def _await_finalized(self, signature: str, last_valid_height: int) -> int:
        deadline = self._monotonic() + self.confirm_timeout_s
        while True:
            status = self._status(signature)
            if status is not None and status[1] == "finalized":
                return status[0]
            if status is None and self._block_height() > last_valid_height:
                raise SolanaPublishError(
                    f"memo transaction {signature} expired without landing; it will be rebuilt "
                    f"on the next attempt",
                    where=self.rpc.where("getSignatureStatuses"),
                )
            if self._monotonic() > deadline:
                raise SolanaPublishError(
                    f"memo transaction {signature} not finalized after "
                    f"{self.confirm_timeout_s}s; the intent is kept and resumed next time",
                    where=self.rpc.where("getSignatureStatuses"),
                )
            self._sleep(self.poll_interval_s)

    # ---- intent record -----------------------------------------------------------

    def _intent_key(self, sequence: int) -> str:
        return f"solana-memo-{self.attestor}-{sequence}"

    def _intent_file(self, sequence: int) -> Path:
        if self.state_dir is None:
            raise PublishError("no intent directory", where="solana memo")
        return self.state_dir / f"{self._intent_key(sequence)}.json"

    def _intent_where(self, sequence: int) -> str:
        if self.state is not None:
            return f"{self.state.where} {MEMO_NAMESPACE}/{self._intent_key(sequence)}"
        return str(self._intent_file(sequence))

    def _load_intent(self, sequence: int) -> bytes | None:
        if self.state is not None:
            return self.state.get(MEMO_NAMESPACE, self._intent_key(sequence))
        if self.state_dir is None:
            return None
        try:
            return self._intent_file(sequence).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise SolanaPublishError(
                f"unreadable intent record: {e}", where=self._intent_where(sequence)
            ) from e

    def _write_intent(
        self, sequence: int, digest_hex: str, tx: Transaction, last_valid_height: int
    ) -> None:
        if self.state is None and self.state_dir is None:
            return
        record = {
            "sequence": sequence,
            "digest": digest_hex,
            "signature": str(tx.signatures[0]),
            "transaction": base64.b64encode(bytes(tx)).decode(),
            "last_valid_block_height": last_valid_height,
        }
        data = json.dumps(record, sort_keys=True).encode()
        if self.state is not None:
            self.state.put(MEMO_NAMESPACE, self._intent_key(sequence), data)
        else:
            write_atomic(self._intent_file(sequence), data)

    def _clear_intent(self, sequence: int) -> None:
        if self.state is not None:
            self.state.delete(MEMO_NAMESPACE, self._intent_key(sequence))
        elif self.state_dir is not None:
            self._intent_file(sequence).unlink(missing_ok=True)

    def _resume_intent(self, sequence: int, digest_hex: str) -> PublishReceipt | None:
        """Finish a transaction signed and (maybe) sent before a crash, if still possible."""
        raw = self._load_intent(sequence)
        if raw is None:
            return None
        where = self._intent_where(sequence)
        try:
            record = json.loads(raw.decode("utf-8"))
            tx = Transaction.from_bytes(base64.b64decode(record["transaction"]))
            last_valid = int(record["last_valid_block_height"])
            intent_digest = str(record["digest"])
        except (ValueError, KeyError, TypeError) as e:
            raise SolanaPublishError(f"unreadable intent record: {e}", where=where) from e
        if intent_digest != digest_hex:
            raise SolanaPublishError(
                f"an intent for sequence {sequence} with digest {intent_digest} exists; "
                f"refusing digest {digest_hex}",
                where=where,
            )
        signature = str(tx.signatures[0])
        status = self._status(signature)
        if status is None and self._block_height() > last_valid:
            self._clear_intent(sequence)  # expired unseen: it can never land; build anew
            return None
        if status is None:
            self._broadcast(tx)  # same bytes, same signature: lands at most once
        slot = self._await_finalized(signature, last_valid)
        self._clear_intent(sequence)
        return PublishReceipt(
            chain_id=self.chain_id,
            sequence=sequence,
            tx_hash=signature,
            block_number=slot,
            status="published",
        )

    # ---- read-back ---------------------------------------------------------------

    def find_memo(self, sequence: int) -> FoundMemo | None:
        """The attestor's finalized memo for `sequence`, verified, or None."""
        for memo in self.iter_memos(stop_at_sequence=sequence):
            if memo.sequence == sequence:
                return memo
        return None

    def iter_memos(self, *, stop_at_sequence: int | None = None) -> list[FoundMemo]:
        """The attestor's por memos (newest first), each read with getTransaction and checked."""
        out: list[FoundMemo] = []
        before: Signature | None = None
        scanned = 0
        where = self.rpc.where("getSignaturesForAddress")
        while scanned < self.max_history_signatures:
            limit = min(1000, self.max_history_signatures - scanned)
            config = RpcSignaturesForAddressConfig(
                before=before, limit=limit, commitment=CommitmentLevel.Finalized
            )
            page = self.rpc.call(GetSignaturesForAddress(self.keypair.pubkey(), config))
            if not isinstance(page, list):
                raise SolanaAnswerError(f"expected a list, got {type(page).__name__}", where=where)
            for entry in page:
                if not isinstance(entry, dict) or not isinstance(entry.get("signature"), str):
                    raise SolanaAnswerError(f"malformed entry {entry!r:.120}", where=where)
                memo_field = entry.get("memo")
                # The node's memo field is "[len] text"; only candidates are fetched in full.
                if (
                    entry.get("err") is None
                    and isinstance(memo_field, str)
                    and (MEMO_PREFIX in memo_field)
                ):
                    found = self._read_memo_tx(entry["signature"])
                    if found is not None:
                        out.append(found)
                        if stop_at_sequence is not None and found.sequence == stop_at_sequence:
                            return out
            scanned += len(page)
            if len(page) < limit:
                break
            before = Signature.from_string(page[-1]["signature"])
        return out

    def _read_memo_tx(self, signature: str) -> FoundMemo | None:
        where = self.rpc.where("getTransaction")
        result = self.rpc.call(
            GetTransaction(
                Signature.from_string(signature),
                RpcTransactionConfig(
                    encoding=UiTransactionEncoding.Base64,
                    commitment=CommitmentLevel.Finalized,
                    max_supported_transaction_version=0,
                ),
            )
        )
        if result is None:
            return None
        try:
            raw = base64.b64decode(result["transaction"][0], validate=True)
            tx = VersionedTransaction.from_bytes(raw)
            slot = int(result["slot"])
        except (KeyError, TypeError, IndexError, ValueError) as e:
            raise SolanaAnswerError(f"malformed transaction answer: {e!r}", where=where) from e
        # Trust nothing the node says about it: check the signatures ourselves, and that
        # the attestor is the first signer.
        if str(tx.signatures[0]) != signature or not all(tx.verify_with_results()):
            raise SolanaAnswerError(f"transaction {signature} does not verify", where=where)
        keys = tx.message.account_keys
        if str(keys[0]) != self.attestor:
            return None
        for ix in tx.message.instructions:
            if str(keys[ix.program_id_index]) in (MEMO_PROGRAM_ID, LEGACY_MEMO_PROGRAM_ID):
                try:
                    parsed = parse_memo(bytes(ix.data).decode("utf-8"))
                except UnicodeDecodeError:
                    parsed = None
                if parsed is not None:
                    return FoundMemo(
                        sequence=parsed[0], digest=parsed[1], signature=signature, slot=slot
                    )
        return None


__all__ = [
    "MEMO_PROGRAM_ID",
    "FoundMemo",
    "SolanaMemoPublisher",
    "SolanaPublishError",
    "format_memo",
    "load_keypair_file",
    "parse_memo",
    "write_keypair_file",
]
