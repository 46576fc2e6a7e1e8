"""Publish an attestation to ReserveOracle on one EVM chain, exactly once (DESIGN §1, §6).

`EvmPublisher.publish(doc, digest_hex)`:
 1. builds the `OracleReport` (the digest is recomputed from the document);
 2. reads the contract: if the round for this sequence is already there with this digest,
    nothing is sent (`already_published`, or `published` if our own recorded tx did it);
    a different digest under the same sequence is a `PublishError`;
 3. resumes a stored intent if there is one: a mined tx is confirmed, a pending one is
    re-broadcast, one whose nonce was consumed by something else is abandoned;
 3b. a round that RAISES this chain's budget asks the `BudgetGate` first (docs/budgets.md
    §5): unless the new budget plus every other chain's current answer fits the reserves
    it raises `PublishDeferredError` (nothing signed or sent) and the run retries later;
 4. otherwise signs (attestor keys, EIP-712) and checks the signers are attestors, simulates
    `submit`, signs the EIP-1559 transaction, and STORES THE INTENT BEFORE BROADCASTING;
 5. waits for the receipt; a tx pending for `stuck_after_blocks` blocks is replaced (same
    nonce, fees bumped by >= `fee_bump_percent`, at least 20) — the replacement is stored
    before it is broadcast; then waits `confirmations` blocks.

The contract itself refuses a second round for a sequence (strictly increasing), so a
duplicate can at worst revert; the intent log makes sure it is not even sent. One
publisher process per sender key per chain (nonces are managed here, not shared).

Crash points (por.crashpoints, for the kill tests in tests/evm/test_publisher.py):
POR_CRASH_AT=evm_after_sign|evm_after_intent|evm_after_broadcast|evm_before_receipt
kills the process with SIGKILL at that step.

I/O: JSON-RPC to the chain's endpoints and the caller's IntentStore; nothing else.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3

from por.chains.evm_rpc import (
    Endpoint,
    EvmChainError,
    EvmRevertError,
    parse_data,
    parse_quantity,
)
from por.crashpoints import CrashPoint, crashpoint
from por.errors import ConfigError, FormatError, PublishError
from por.oracle.base import (
    PublishDeferredError,
    PublishReceipt,
    PublishStatus,
    PublishSupersededError,
)
from por.oracle.compiled import load_artifact
from por.oracle.intents import IntentStore, PublishIntent, SentTx
from por.oracle.report import OracleReport, recover_signer, sign_report

__all__ = [
    "CRASH_POINTS",
    "BudgetGate",
    "EvmPublisher",
    "NotAttestorError",
    "OracleRejectedError",
    "PublishTimeoutError",
]

CRASH_POINTS: tuple[CrashPoint, ...] = (
    "evm_after_sign",
    "evm_after_intent",
    "evm_after_broadcast",
    "evm_before_receipt",
)
MIN_FEE_BUMP_PERCENT = 20


class OracleRejectedError(PublishError):
    """ReserveOracle refused the report (custom error decoded in the message)."""


class NotAttestorError(OracleRejectedError):
    """A signing key is not a registered attestor of the contract."""


class PublishTimeoutError(PublishError):
    """No receipt in time; the intent is kept and the next run resumes it."""


_ALREADY_KNOWN_RE = re.compile(
    r"already known|known transaction|already imported|"
    r"nonce too low|replacement transaction underpriced",
    re.IGNORECASE,
)

# ReserveOracle.Round: sequence, asOf, reservesAsOf, publishedAt, budget, chainCirculating,
# eligibleReserves, totalCirculating, liabilitiesTotal, status, liabilitiesRoot, digest
ROUND_ABI_TYPE = (
    "(uint64,uint64,uint64,uint64,uint128,uint128,uint128,uint128,uint128,uint8,bytes32,bytes32)"
)

# eth_getLogs block ranges stay within what public providers accept (often 1,000-10,000)
_LOG_WINDOW = 1_000
_LOG_REQUESTS = 64  # at most this many eth_getLogs calls to find one round's tx


@runtime_checkable
class ReportSigner(Protocol):
    """An attestor key kept elsewhere (an HSM: por.service.hsm.Pkcs11Secp256k1Attestor)."""

    def sign_report(self, report: OracleReport, *, chain_id: int, contract: str) -> bytes: ...


class EvmPublisher:
    """Sends attestations to one ReserveOracle; see the module docstring for the steps."""

    def __init__(
        self,
        *,
        chain_id: int,
        rpc_urls: str | Sequence[str],
        contract: str,
        sender_key: str | bytes,
        intent_store: IntentStore,
        attestor_keys: Sequence[str | bytes | ReportSigner] = (),
        confirmations: int = 1,
        stuck_after_blocks: int = 5,
        fee_bump_percent: int = 25,
        poll_interval_s: float = 0.05,
        receipt_timeout_s: float = 120.0,
        max_fee_per_gas_wei: int | None = None,
        priority_fee_wei: int | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        urls = [rpc_urls] if isinstance(rpc_urls, str) else list(rpc_urls)
        if not urls:
            raise ConfigError("at least one RPC URL is needed", where=f"eip155:{chain_id}")
        if fee_bump_percent < MIN_FEE_BUMP_PERCENT:
            raise ConfigError(
                f"fee bump must be >= {MIN_FEE_BUMP_PERCENT}%, got {fee_bump_percent}",
                where=f"eip155:{chain_id}",
            )
        if confirmations < 1 or stuck_after_blocks < 1:
            raise ConfigError(
                "confirmations and stuck_after_blocks must be >= 1", where=f"eip155:{chain_id}"
            )
        self.evm_chain_id = chain_id  # the EIP-155 number: signatures, transactions, intents
        self.chain_id = f"eip155:{chain_id}"  # CAIP-2, as the run and the store name chains
        self.endpoints = [Endpoint(u, chain_caip2=self.chain_id, timeout_s=timeout_s) for u in urls]
        self.contract = to_checksum_address(contract)
        self.contract_label = self.contract  # what the publication state shows
        self.sender = Account.from_key(sender_key)
        self.attestor_keys = list(attestor_keys)
        self.store = intent_store
        self.confirmations = confirmations
        self.stuck_after_blocks = stuck_after_blocks
        self.fee_bump_percent = fee_bump_percent
        self.poll_interval_s = poll_interval_s
        self.receipt_timeout_s = receipt_timeout_s
        self.max_fee_per_gas_wei = max_fee_per_gas_wei
        self.priority_fee_wei = priority_fee_wei
        abi = load_artifact("ReserveOracle")["abi"]
        self._c = Web3().eth.contract(abi=abi)
        self._errors = {
            keccak(text=f"{e['name']}({','.join(i['type'] for i in e['inputs'])})")[:4]: (
                e["name"],
                [i["type"] for i in e["inputs"]],
            )
            for e in abi
            if e["type"] == "error"
        }
        self._primary: Endpoint | None = None
        self.gate: BudgetGate | None = None  # set by BudgetGate.join

    # -- endpoint plumbing

    @property
    def where(self) -> str:
        ep = self._primary or self.endpoints[0]
        return f"{self.chain_id} {ep.url} contract {self.contract}"

    def _ep(self) -> Endpoint:
        """The first endpoint that answers with the right chain id."""
        if self._primary is not None:
            return self._primary
        problems = []
        for ep in self.endpoints:
            try:
                cid = parse_quantity(ep.request("eth_chainId", []), "eth_chainId")
            except EvmChainError as e:
                problems.append(f"{ep.url}: {e.message}")
                continue
            if cid != self.evm_chain_id:
                problems.append(f"{ep.url}: serves chain id {cid}, expected {self.evm_chain_id}")
                continue
            self._primary = ep
            return ep
        raise PublishError(
            "no usable endpoint: " + "; ".join(problems),
            where=f"{self.chain_id} {', '.join(e.url for e in self.endpoints)}",
        )

    def _rpc(self, method: str, params: Sequence[Any]) -> Any:
        ep = self._ep()
        try:
            return ep.request(method, params)
        except EvmRevertError as e:
            raise OracleRejectedError(
                self._decode_revert(e.data, e.message), where=f"{ep.where} contract {self.contract}"
            ) from e
        except EvmChainError as e:
            self._primary = None  # try another endpoint next time
            raise PublishError(e.message, where=f"{ep.where} contract {self.contract}") from e

    def _call(self, fn: str, args: Sequence[Any], out_types: Sequence[str]) -> tuple[Any, ...]:
        data = self._c.encode_abi(fn, args=list(args))
        raw = self._rpc("eth_call", [{"to": self.contract, "data": data}, "latest"])
        try:
            blob = parse_data(raw, fn)
            return tuple(abi_decode(list(out_types), blob))
        except Exception as e:  # eth_abi decoding errors: wrong contract / ABI
            raise PublishError(
                f"{fn}() answer does not match the ReserveOracle ABI: {e}", where=self.where
            ) from e

    def _decode_revert(self, revert_data: str | None, message: str) -> str:
        m = re.fullmatch(r"0x((?:[0-9a-fA-F]{2})+)", revert_data or "")
        if m:
            data = bytes.fromhex(m.group(1))
            known = self._errors.get(data[:4])
            if known:
                name, types = known
                try:
                    args = abi_decode(types, data[4:])
                    shown = ", ".join(
                        to_checksum_address(a) if t == "address" else str(a)
                        for a, t in zip(args, types, strict=True)
                    )
                    return f"ReserveOracle rejected the report: {name}({shown})"
                except Exception:  # noqa: S110 - fall back to the raw message
                    pass
        return f"ReserveOracle rejected the report: {message}"

    def _block_number(self) -> int:
        return parse_quantity(self._rpc("eth_blockNumber", []), "eth_blockNumber")

    # -- contract reads

    def latest_sequence(self) -> int:
        return int(self._call("latestSequence", [], ["uint64"])[0])

    def current_budget(self) -> int:
        """The answer consumers read on this chain now (0 before the first round)."""
        answer = self._call(
            "latestRoundData", [], ["uint80", "int256", "uint256", "uint256", "uint80"]
        )[1]
        return max(0, int(answer))

    def _round(self, sequence: int) -> tuple[str, int] | None:
        """(attestation digest, publishedAt) on chain for `sequence`, or None if no round."""
        (round_id,) = self._call("roundIdOfSequence", [sequence], ["uint80"])
        if round_id == 0:
            return None
        (rnd,) = self._call("getRound", [round_id], [ROUND_ABI_TYPE])
        return bytes(rnd[11]).hex(), int(rnd[3])

    def _round_digest(self, sequence: int) -> str | None:
        """The attestation digest on chain for `sequence`, or None if no such round."""
        found = self._round(sequence)
        return None if found is None else found[0]

    def _block_time(self, number: int) -> int:
        block = self._rpc("eth_getBlockByNumber", [hex(number), False])
        if not isinstance(block, dict):
            raise LookupError(f"no block {number}")
        return parse_quantity(block.get("timestamp"), "timestamp")

    def _first_block_at(self, timestamp: int, *, after: bool, top: int) -> int:
        """The first block whose time is >= `timestamp` (after=False) or > it (after=True);
        top + 1 when there is none. Binary search: ~log2(height) header reads."""
        lo, hi = 0, top + 1
        while lo < hi:
            mid = (lo + hi) // 2
            t = self._block_time(mid)
            if t > timestamp or (t == timestamp and not after):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _find_round_tx(self, sequence: int) -> tuple[str | None, int | None]:
        """Tx hash and block of the RoundSubmitted event for `sequence` (best effort).

        The round records publishedAt = its block's timestamp, so the event lies in the
        blocks stamped with exactly that second: found by binary search on block headers,
        then read with eth_getLogs over that narrow range, in windows of at most
        _LOG_WINDOW blocks, halved whenever the provider refuses one (public providers
        limit ranges and result counts)."""
        topic0 = "0x" + keccak(text="RoundSubmitted(uint80,uint64,bytes32,uint8,uint256)").hex()
        topics = [topic0, None, "0x" + sequence.to_bytes(32, "big").hex()]
        try:
            found = self._round(sequence)
            if found is None:
                return None, None
            top = self._block_number()
            start = self._first_block_at(found[1], after=False, top=top)
            stop = self._first_block_at(found[1], after=True, top=top)
            window, budget = _LOG_WINDOW, _LOG_REQUESTS
            while start < stop and budget:
                budget -= 1
                end = min(start + window, stop)
                try:
                    logs = self._rpc(
                        "eth_getLogs",
                        [
                            {
                                "address": self.contract,
                                "fromBlock": hex(start),
                                "toBlock": hex(end - 1),
                                "topics": topics,
                            }
                        ],
                    )
                except PublishError:
                    if window == 1:
                        raise
                    window //= 2
                    continue
                if logs:
                    log = logs[-1]
                    return (
                        str(log["transactionHash"]),
                        parse_quantity(log["blockNumber"], "blockNumber"),
                    )
                start = end
        except (PublishError, LookupError, TypeError, EvmChainError):
            pass  # the round stands; only its tx hash is unknown
        return None, None

    # -- signing

    def _signatures(self, report: OracleReport, given: Sequence[bytes] | None) -> list[bytes]:
        sigs = (
            list(given)
            if given is not None
            else [
                k.sign_report(report, chain_id=self.evm_chain_id, contract=self.contract)
                if isinstance(k, ReportSigner)
                else sign_report(
                    report, chain_id=self.evm_chain_id, contract=self.contract, private_key=k
                )
                for k in self.attestor_keys
            ]
        )
        if not sigs:
            raise ConfigError("no attestor keys and no signatures given", where=self.where)
        for i, sig in enumerate(sigs):
            signer = recover_signer(report, sig, chain_id=self.evm_chain_id, contract=self.contract)
            (ok,) = self._call("isAttestor", [signer], ["bool"])
            if not ok:
                raise NotAttestorError(
                    f"signature {i} is by {signer}, which is not an attestor of the oracle",
                    where=self.where,
                )
        (threshold,) = self._call("threshold", [], ["uint256"])
        if len(sigs) < threshold:
            raise OracleRejectedError(
                f"{len(sigs)} signatures, the oracle needs {threshold}", where=self.where
            )
        return sigs

    def _fees(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas): 2 x base fee + tip, unless configured."""
        block = self._rpc("eth_getBlockByNumber", ["latest", False])
        base = parse_quantity(block.get("baseFeePerGas", "0x0"), "baseFeePerGas")
        tip = self.priority_fee_wei
        if tip is None:
            try:
                tip = parse_quantity(self._rpc("eth_maxPriorityFeePerGas", []), "tip")
            except PublishError:
                tip = 10**9
        max_fee = (
            self.max_fee_per_gas_wei if self.max_fee_per_gas_wei is not None else 2 * base + tip
        )
        return max(max_fee, tip), tip

    def _sign_tx(self, data: str, nonce: int, gas: int, max_fee: int, tip: int) -> SentTx:
        tx = {
            "type": 2,
            "chainId": self.evm_chain_id,
            "nonce": nonce,
            "to": self.contract,
            "value": 0,
            "data": data,
            "gas": gas,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": tip,
        }
        signed = self.sender.sign_transaction(tx)
        return SentTx(
            tx_hash=signed.hash.to_0x_hex(),
            raw_tx=signed.raw_transaction.to_0x_hex(),
            max_fee_per_gas=max_fee,
            max_priority_fee_per_gas=tip,
        )

    def _broadcast(self, tx: SentTx) -> None:
        """Send the raw tx to every endpoint; fine if any accepts or already knows it."""
        problems = []
        accepted = False
        for ep in self.endpoints:
            try:
                ep.request("eth_sendRawTransaction", [tx.raw_tx])
                accepted = True
            except EvmChainError as e:
                if _ALREADY_KNOWN_RE.search(e.message):
                    accepted = True
                else:
                    problems.append(f"{ep.url}: {e.message}")
        if not accepted:
            raise PublishError("broadcast refused: " + "; ".join(problems), where=self.where)

    # -- the protocol

    def publish(
        self, doc: Mapping[str, Any], digest_hex: str, *, signatures: Sequence[bytes] | None = None
    ) -> PublishReceipt:
        report = OracleReport.from_attestation(doc, digest_hex)
        report.budget_for(self.chain_id)  # the contract would refuse it: NoBudgetForChain
        intent = self.store.get(self.evm_chain_id, report.sequence)
        if intent is not None and intent.attestation_digest != digest_hex:
            raise PublishError(
                f"intent for sequence {report.sequence} is for digest "
                f"{intent.attestation_digest}, not {digest_hex}",
                where=self.where,
            )
        if intent is not None and intent.state == "confirmed":
            return self._result(intent, "published")

        done = self._already_on_chain(report)
        if done is not None:
            return self._settle_existing(report, intent, done)

        if intent is not None and intent.state in ("signed", "broadcast"):
            resumed = self._resume(report, intent)
            if resumed is not None:
                return resumed
        if self.gate is not None:
            self.gate.check(report, self.chain_id)
        return self._send_new(report, signatures)

    def _already_on_chain(self, report: OracleReport) -> str | None:
        """'same' if the round is there with this digest; raise if the sequence is taken."""
        on_chain = self._round_digest(report.sequence)
        if on_chain is None:
            latest = self.latest_sequence()
            if latest >= report.sequence:
                raise PublishSupersededError(
                    f"sequence {report.sequence} was skipped: the oracle is "
                    f"already at sequence {latest}",
                    newer=latest,
                    where=self.where,
                )
            return None
        if on_chain != report.attestation_digest.hex():
            raise PublishError(
                f"the oracle holds digest {on_chain} for sequence "
                f"{report.sequence}, not {report.attestation_digest.hex()}",
                where=self.where,
            )
        return "same"

    def _settle_existing(
        self, report: OracleReport, intent: PublishIntent | None, _: str
    ) -> PublishReceipt:
        if intent is not None:
            for tx in reversed(intent.txs):
                rcpt = self._rpc("eth_getTransactionReceipt", [tx.tx_hash])
                if rcpt and parse_quantity(rcpt.get("status"), "status") == 1:
                    return self._confirm(intent, tx, rcpt)
        tx_hash, block = self._find_round_tx(report.sequence)
        if intent is not None:
            self.store.put(replace(intent, state="abandoned"))
        return PublishReceipt(
            chain_id=self.chain_id,
            sequence=report.sequence,
            tx_hash=tx_hash,
            block_number=block,
            status="already_published",
        )

    def _resume(self, report: OracleReport, intent: PublishIntent) -> PublishReceipt | None:
        """Pick up a stored intent; None if it is dead and a fresh one must be made."""
        mined = self._nonce("latest")
        if mined > intent.nonce:
            # Our nonce was used; if none of our txs has a receipt, something else used it.
            for tx in reversed(intent.txs):
                if self._rpc("eth_getTransactionReceipt", [tx.tx_hash]):
                    return self._wait(report, intent)
            self.store.put(replace(intent, state="abandoned"))
            return None
        last = intent.txs[-1]
        self._broadcast(last)
        if last.sent_at_block is None:
            intent = self._mark_sent(intent, self._block_number())
        return self._wait(report, intent)

    def _nonce(self, tag: str) -> int:
        return parse_quantity(
            self._rpc("eth_getTransactionCount", [self.sender.address, tag]), "nonce"
        )

    def _mark_sent(self, intent: PublishIntent, block: int) -> PublishIntent:
        txs = (*intent.txs[:-1], replace(intent.txs[-1], sent_at_block=block))
        intent = replace(intent, state="broadcast", txs=txs)
        self.store.put(intent)
        return intent

    def _send_new(self, report: OracleReport, signatures: Sequence[bytes] | None) -> PublishReceipt:
        sigs = self._signatures(report, signatures)
        crashpoint("evm_after_sign")
        data = self._c.encode_abi("submit", args=[report.as_abi_tuple(), sigs])
        # Simulate first: a refused report fails here with the contract's own error name.
        call = {"from": self.sender.address, "to": self.contract, "data": data}
        gas = parse_quantity(self._rpc("eth_estimateGas", [call]), "eth_estimateGas")
        nonce = self._nonce("pending")
        max_fee, tip = self._fees()
        tx = self._sign_tx(data, nonce, gas * 6 // 5 + 20_000, max_fee, tip)
        intent = PublishIntent(
            chain_id=self.evm_chain_id,
            sequence=report.sequence,
            contract=self.contract,
            attestation_digest=report.attestation_digest.hex(),
            sender=self.sender.address,
            nonce=nonce,
            state="signed",
            txs=(tx,),
        )
        self.store.put(intent)  # DESIGN §6: the intent is durable before anything is sent
        crashpoint("evm_after_intent")
        self._broadcast(tx)
        intent = self._mark_sent(intent, self._block_number())
        crashpoint("evm_after_broadcast")
        return self._wait(report, intent)

    def _wait(self, report: OracleReport, intent: PublishIntent) -> PublishReceipt:
        crashpoint("evm_before_receipt")
        deadline = time.monotonic() + self.receipt_timeout_s
        while time.monotonic() < deadline:
            for tx in reversed(intent.txs):
                rcpt = self._rpc("eth_getTransactionReceipt", [tx.tx_hash])
                if rcpt:
                    if parse_quantity(rcpt.get("status"), "status") == 1:
                        return self._confirm(intent, tx, rcpt)
                    if self._already_on_chain(report) is not None:
                        return self._settle_existing(report, intent, "same")
                    raise OracleRejectedError(
                        f"submit tx {tx.tx_hash} reverted in block "
                        f"{parse_quantity(rcpt.get('blockNumber'), 'blockNumber')}",
                        where=self.where,
                    )
            head = self._block_number()
            last = intent.txs[-1]
            if (
                last.sent_at_block is not None
                and head - last.sent_at_block >= self.stuck_after_blocks
            ):
                intent = self._replace(intent, head)
            time.sleep(self.poll_interval_s)
        raise PublishTimeoutError(
            f"no receipt for sequence {report.sequence} after {self.receipt_timeout_s}s "
            f"(txs {', '.join(t.tx_hash for t in intent.txs)}); the next run resumes",
            where=self.where,
        )

    def _replace(self, intent: PublishIntent, head: int) -> PublishIntent:
        """Same nonce, fees up by >= fee_bump_percent (and at least today's market fees)."""
        last = intent.txs[-1]
        factor = 100 + self.fee_bump_percent
        market_max, market_tip = self._fees_market()
        tip = max(math.ceil(last.max_priority_fee_per_gas * factor / 100), market_tip)
        max_fee = max(math.ceil(last.max_fee_per_gas * factor / 100), market_max, tip)
        new = self._resign(last, intent.nonce, max_fee, tip)
        intent = replace(intent, txs=(*intent.txs, new))
        self.store.put(intent)  # the replacement is durable before it is sent
        self._broadcast(new)
        return self._mark_sent(intent, head)

    def _fees_market(self) -> tuple[int, int]:
        block = self._rpc("eth_getBlockByNumber", ["latest", False])
        base = parse_quantity(block.get("baseFeePerGas", "0x0"), "baseFeePerGas")
        try:
            tip = parse_quantity(self._rpc("eth_maxPriorityFeePerGas", []), "tip")
        except PublishError:
            tip = 10**9
        return 2 * base + tip, tip

    def _resign(self, last: SentTx, nonce: int, max_fee: int, tip: int) -> SentTx:
        fields = _decode_eip1559(last.raw_tx)
        return self._sign_tx(fields["data"], nonce, fields["gas"], max_fee, tip)

    def _confirm(
        self, intent: PublishIntent, tx: SentTx, rcpt: Mapping[str, Any]
    ) -> PublishReceipt:
        block = parse_quantity(rcpt.get("blockNumber"), "blockNumber")
        deadline = time.monotonic() + self.receipt_timeout_s
        while self._block_number() < block + self.confirmations - 1:
            if time.monotonic() > deadline:
                raise PublishTimeoutError(
                    f"{self.confirmations} confirmations not reached", where=self.where
                )
            time.sleep(self.poll_interval_s)
        again = self._rpc("eth_getTransactionReceipt", [tx.tx_hash])
        if not again or again.get("blockHash") != rcpt.get("blockHash"):
            raise PublishError(
                f"tx {tx.tx_hash} was reorged out while confirming; run again", where=self.where
            )
        intent = replace(intent, state="confirmed", tx_hash=tx.tx_hash, block_number=block)
        self.store.put(intent)
        return self._result(intent, "published")

    def _result(self, intent: PublishIntent, status: PublishStatus) -> PublishReceipt:
        return PublishReceipt(
            chain_id=self.chain_id,
            sequence=intent.sequence,
            tx_hash=intent.tx_hash,
            block_number=intent.block_number,
            status=status,
        )


def _decode_eip1559(raw_hex: str) -> dict[str, Any]:
    """gas and data of a signed type-2 transaction (to re-sign it with other fees)."""
    import rlp

    raw = bytes.fromhex(raw_hex[2:])
    if raw[:1] != b"\x02":
        raise FormatError("stored transaction is not EIP-1559 (type 2)", where="intent.raw_tx")
    fields = rlp.decode(raw[1:])
    return {"gas": int.from_bytes(fields[4], "big"), "data": "0x" + bytes(fields[7]).hex()}


class BudgetGate:
    """Orders one attestation's rounds across chains so that the budgets in force on chain
    never add up to more than the reserves (docs/budgets.md, "Between two attestations").

    Rounds land chain by chain. If attestation n+1 moves headroom from chain B to chain A,
    publishing A first would leave A's new budget and B's old one in force together —
    more than the reserves. So before a publisher sends a round that RAISES its chain's
    budget, it asks the gate: the new budget plus what every other chain's oracle answers
    right now (the report's own budget for a chain without a joined publisher, e.g. one
    read but not published to) must not exceed the report's eligible reserves; else
    `PublishDeferredError`, and the run tries again after the other chains' rounds (which
    only lower budgets, so they never wait). A peer that cannot be read defers too.
    """

    def __init__(self) -> None:
        self._members: dict[str, EvmPublisher] = {}

    def join(self, publisher: EvmPublisher) -> None:
        if publisher.chain_id in self._members:
            raise ConfigError(f"two publishers for {publisher.chain_id}", where="BudgetGate")
        self._members[publisher.chain_id] = publisher
        publisher.gate = self

    def check(self, report: OracleReport, chain_id: str) -> None:
        """Return if `report` may go to `chain_id` now; raise PublishDeferredError if not."""
        new = report.budget_for(chain_id).budget
        try:
            if new <= self._members[chain_id].current_budget():
                return  # a budget that does not grow never waits
            in_force = new
            parts = [f"{chain_id} {new} (new)"]
            for line in report.chains:
                if line.chain_id == chain_id:
                    continue
                peer = self._members.get(line.chain_id)
                budget = line.budget if peer is None else peer.current_budget()
                in_force += budget
                parts.append(f"{line.chain_id} {budget}{'' if peer else ' (not published)'}")
        except PublishError as e:
            raise PublishDeferredError(
                f"cannot read the budgets in force on the other chains: {e}", where=chain_id
            ) from e
        if in_force > report.eligible_reserves:
            raise PublishDeferredError(
                f"the budget of {chain_id} grows to {new}; with the budgets in force elsewhere "
                f"({', '.join(parts)}) they would add up to {in_force} > eligible reserves "
                f"{report.eligible_reserves}; waiting for the other chains' rounds of "
                f"sequence {report.sequence}",
                where=chain_id,
            )
