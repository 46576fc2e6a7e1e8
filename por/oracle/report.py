"""The oracle report: what ReserveOracle stores per round, and its EIP-712 signature.

An `OracleReport` is read from a por-attestation-v1 document (DESIGN §4) that carries
per-chain mint budgets (docs/budgets.md) and from its digest: the global figures, the
status, the reserves' as-of time and every chain's (circulating, budget), chains named by
keccak256 of their CAIP-2 id. `sign_report` signs it for ONE chain and ONE contract (the
EIP-712 domain binds name, version, chainId and verifyingContract — REFERENCE "Signing"),
so a report signed for chain 1 is worthless on chain 56 or on another oracle. Signatures
are 65 bytes r‖s‖v with v ∈ {27, 28} and low s (EIP-2), the only form the contract accepts.

No network, disk, clock or randomness: pure functions of their arguments (ECDSA signing
in eth_account is deterministic, RFC 6979).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from por.core.amounts import check_amount, format_base_units, parse_base_units
from por.core.attestation import (
    STATUS_DEGRADED,
    STATUS_FULLY_BACKED,
    STATUS_UNDER_COLLATERALIZED,
    Attestation,
    verify_consistency,
)
from por.core.budgets import reserves_as_of
from por.core.canonical import canonical_bytes
from por.errors import FormatError, MismatchError, PublishError, SignatureError

EIP712_NAME = "por ReserveOracle"  # must equal ReserveOracle.EIP712_NAME
EIP712_VERSION = "2"  # 2: per-chain budgets (docs/budgets.md); version 1 reports are refused
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2
MAX_CHAINS = 64  # ReserveOracle.MAX_CHAINS

STATUS_CODES: dict[str, int] = {  # ReserveOracle.STATUS_*
    STATUS_FULLY_BACKED: 1,
    STATUS_UNDER_COLLATERALIZED: 2,
    STATUS_DEGRADED: 3,
}
STATUS_NAMES: dict[int, str] = {v: k for k, v in STATUS_CODES.items()}

REPORT_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Report": [
        {"name": "sequence", "type": "uint64"},
        {"name": "asOf", "type": "uint64"},
        {"name": "reservesAsOf", "type": "uint64"},
        {"name": "status", "type": "uint8"},
        {"name": "eligibleReserves", "type": "uint256"},
        {"name": "totalCirculating", "type": "uint256"},
        {"name": "liabilitiesRoot", "type": "bytes32"},
        {"name": "liabilitiesTotal", "type": "uint256"},
        {"name": "attestationDigest", "type": "bytes32"},
        {"name": "chains", "type": "ChainBudget[]"},
    ],
    "ChainBudget": [
        {"name": "chain", "type": "bytes32"},
        {"name": "circulating", "type": "uint256"},
        {"name": "budget", "type": "uint256"},
    ],
}

_HEX32_RE = re.compile(r"[0-9a-f]{64}")


def _hex32(value: object, where: str) -> bytes:
    if not isinstance(value, str) or not _HEX32_RE.fullmatch(value):
        raise FormatError(f"must be 64 lowercase hex digits without 0x, got {value!r}", where=where)
    return bytes.fromhex(value)


def chain_key(chain_id: str) -> bytes:
    """keccak256 of a CAIP-2 id: how a report names a chain (ReserveOracle.chainKey())."""
    return bytes(keccak(text=chain_id))


def _u64(v: object, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**64:
        raise FormatError(f"must be an int in [0, 2^64), got {v!r}", where=where)
    return v


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainBudget:
    """One chain's line of a report: CAIP-2 id, circulating supply, mint budget."""

    chain_id: str
    circulating: int
    budget: int

    def __post_init__(self) -> None:
        check_amount(self.circulating, where=f"OracleReport.chains[{self.chain_id}].circulating")
        check_amount(self.budget, where=f"OracleReport.chains[{self.chain_id}].budget")

    @property
    def key(self) -> bytes:
        return chain_key(self.chain_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class OracleReport:
    """One ReserveOracle round as signed by the attestors (amounts in token base units).

    The same report goes to every chain (the EIP-712 domain makes each signature good for
    one chain and one contract only); each oracle answers with its own chain's budget.
    """

    sequence: int
    as_of: int  # unix seconds: the attestation's snapshot time
    reserves_as_of: int  # unix seconds: the oldest statement behind the reserves; 0: none
    status: str  # FULLY_BACKED / UNDER_COLLATERALIZED / DEGRADED
    eligible_reserves: int
    total_circulating: int
    liabilities_root: bytes  # 32 bytes
    liabilities_total: int
    attestation_digest: bytes  # 32 bytes: SHA-256 of the RFC 8785 attestation document
    chains: tuple[ChainBudget, ...]

    def __post_init__(self) -> None:
        for name in ("sequence", "as_of", "reserves_as_of"):
            _u64(getattr(self, name), f"OracleReport.{name}")
        if self.sequence < 1:
            raise FormatError("sequence starts at 1", where="OracleReport.sequence")
        if self.status not in STATUS_CODES:
            raise FormatError(f"unknown status {self.status!r}", where="OracleReport.status")
        for name in ("eligible_reserves", "total_circulating", "liabilities_total"):
            check_amount(getattr(self, name), where=f"OracleReport.{name}")
        for name in ("liabilities_root", "attestation_digest"):
            v = getattr(self, name)
            if not isinstance(v, bytes) or len(v) != 32:
                raise FormatError("must be 32 bytes", where=f"OracleReport.{name}")
        if not 1 <= len(self.chains) <= MAX_CHAINS:
            raise FormatError(
                f"must name 1 to {MAX_CHAINS} chains, got {len(self.chains)}",
                where="OracleReport.chains",
            )

    @classmethod
    def from_attestation(cls, doc: Mapping[str, Any], digest_hex: str) -> OracleReport:
        """The report of a por-attestation-v1 document that carries per-chain budgets.

        The digest is recomputed from the document (SHA-256 of its RFC 8785 bytes) and must
        equal `digest_hex`: the chain must never carry a digest of some other document. The
        document is parsed strictly and its figures checked (`verify_consistency`, budgets
        included) before anything is signed: budgets above the reserves raise
        `BudgetsExceedReservesError`, budgets other than the declared rule's
        `BudgetMismatchError`.
        """
        if doc.get("format") != "por-attestation-v1":
            raise FormatError(f"unknown format {doc.get('format')!r}", where="attestation.format")
        digest = _hex32(digest_hex, "digest")
        computed = hashlib.sha256(canonical_bytes(dict(doc))).hexdigest()
        if computed != digest_hex:
            raise MismatchError(
                "attestation digest does not match the document",
                expected=digest_hex,
                computed=computed,
                where="digest",
            )
        att = Attestation.from_dict(dict(doc))
        if att.allocation is None:
            raise FormatError(
                "the attestation carries no per-chain budgets; ReserveOracle answers each "
                "chain's budget, so it cannot publish it",
                where="attestation.allocation",
            )
        verify_consistency(att)
        oldest = reserves_as_of(att)
        return cls(
            sequence=att.sequence,
            as_of=int(att.as_of.timestamp()),
            reserves_as_of=0 if oldest is None else int(oldest.timestamp()),
            status=att.totals.status,
            eligible_reserves=att.totals.eligible_reserves,
            total_circulating=att.totals.circulating_supply,
            liabilities_root=bytes.fromhex(att.liabilities.root),
            liabilities_total=att.liabilities.total,
            attestation_digest=digest,
            chains=tuple(
                ChainBudget(
                    chain_id=c.chain_id, circulating=c.circulating_supply, budget=c.budget or 0
                )
                for c in att.chains
            ),
        )

    def budget_for(self, chain_id: str) -> ChainBudget:
        """This report's line for `chain_id` (CAIP-2); PublishError if it has none."""
        for c in self.chains:
            if c.chain_id == chain_id:
                return c
        raise PublishError(
            f"attestation {self.sequence} has no budget for {chain_id} "
            f"(chains: {', '.join(c.chain_id for c in self.chains)})",
            where=chain_id,
        )

    @property
    def updated_at(self) -> int:
        """What the oracle returns as updatedAt: min(as_of, reserves_as_of), 0 if no data."""
        return 0 if self.reserves_as_of == 0 else min(self.as_of, self.reserves_as_of)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "as_of": self.as_of,
            "reserves_as_of": self.reserves_as_of,
            "status": self.status,
            "eligible_reserves": format_base_units(self.eligible_reserves),
            "total_circulating": format_base_units(self.total_circulating),
            "liabilities_root": self.liabilities_root.hex(),
            "liabilities_total": format_base_units(self.liabilities_total),
            "attestation_digest": self.attestation_digest.hex(),
            "chains": [
                {
                    "chain_id": c.chain_id,
                    "circulating": format_base_units(c.circulating),
                    "budget": format_base_units(c.budget),
                }
                for c in self.chains
            ],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "report") -> OracleReport:
        try:
            return cls(
                sequence=d["sequence"],
                as_of=d["as_of"],
                reserves_as_of=d["reserves_as_of"],
                status=d["status"],
                eligible_reserves=parse_base_units(
                    d["eligible_reserves"], where=f"{where}.eligible_reserves"
                ),
                total_circulating=parse_base_units(
                    d["total_circulating"], where=f"{where}.total_circulating"
                ),
                liabilities_root=_hex32(d["liabilities_root"], f"{where}.liabilities_root"),
                liabilities_total=parse_base_units(
                    d["liabilities_total"], where=f"{where}.liabilities_total"
                ),
                attestation_digest=_hex32(d["attestation_digest"], f"{where}.attestation_digest"),
                chains=tuple(
                    ChainBudget(
                        chain_id=c["chain_id"],
                        circulating=parse_base_units(
                            c["circulating"], where=f"{where}.chains[{i}].circulating"
                        ),
                        budget=parse_base_units(c["budget"], where=f"{where}.chains[{i}].budget"),
                    )
                    for i, c in enumerate(d["chains"])
                ),
            )
        except (KeyError, TypeError) as e:
            raise FormatError(f"missing or malformed field {e}", where=where) from e

    def message(self) -> dict[str, Any]:
        """The EIP-712 `Report` message."""
        return {
            "sequence": self.sequence,
            "asOf": self.as_of,
            "reservesAsOf": self.reserves_as_of,
            "status": STATUS_CODES[self.status],
            "eligibleReserves": self.eligible_reserves,
            "totalCirculating": self.total_circulating,
            "liabilitiesRoot": self.liabilities_root,
            "liabilitiesTotal": self.liabilities_total,
            "attestationDigest": self.attestation_digest,
            "chains": [
                {"chain": c.key, "circulating": c.circulating, "budget": c.budget}
                for c in self.chains
            ],
        }

    def as_abi_tuple(self) -> tuple[Any, ...]:
        """The `Report` struct argument of ReserveOracle.submit."""
        return (
            self.sequence,
            self.as_of,
            self.reserves_as_of,
            STATUS_CODES[self.status],
            self.eligible_reserves,
            self.total_circulating,
            self.liabilities_root,
            self.liabilities_total,
            self.attestation_digest,
            [(c.key, c.circulating, c.budget) for c in self.chains],
        )


def typed_data(report: OracleReport, *, chain_id: int, contract: str) -> dict[str, Any]:
    """The full EIP-712 typed-data object (eth_signTypedData_v4 shape)."""
    return {
        "types": REPORT_TYPES,
        "primaryType": "Report",
        "domain": {
            "name": EIP712_NAME,
            "version": EIP712_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(contract),
        },
        "message": report.message(),
    }


def report_hash(report: OracleReport, *, chain_id: int, contract: str) -> bytes:
    """keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(report)) — what the attestors sign."""
    signable = encode_typed_data(
        full_message=typed_data(report, chain_id=chain_id, contract=contract)
    )
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def to_low_s(signature: bytes) -> bytes:
    """The low-s twin of a 65-byte r‖s‖v signature (EIP-2): s' = n - s and v flipped."""
    _check_shape(signature)
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    if s <= HALF_N:
        return signature
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28


def to_high_s(signature: bytes) -> bytes:
    """The malleable high-s twin (for tests that the contract refuses it)."""
    low = to_low_s(signature)
    s = int.from_bytes(low[32:64], "big")
    return low[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - low[64]])


def _check_shape(signature: bytes) -> None:
    if not isinstance(signature, bytes) or len(signature) != 65:
        raise SignatureError("signature must be 65 bytes r‖s‖v", where="signature")
    if signature[64] not in (27, 28):
        raise SignatureError(
            f"signature v must be 27 or 28, got {signature[64]}", where="signature"
        )


def sign_report(
    report: OracleReport, *, chain_id: int, contract: str, private_key: bytes | str
) -> bytes:
    """An attestor's 65-byte low-s EIP-712 signature of `report` for one chain and contract."""
    signable = encode_typed_data(
        full_message=typed_data(report, chain_id=chain_id, contract=contract)
    )
    sig = bytes(Account.sign_message(signable, private_key).signature)
    low = to_low_s(sig)  # eth_keys already signs low-s; this keeps the rule explicit
    if int.from_bytes(low[32:64], "big") > HALF_N:
        raise SignatureError("could not produce a low-s signature", where="sign_report")
    return low


def recover_signer(report: OracleReport, signature: bytes, *, chain_id: int, contract: str) -> str:
    """The checksum address that signed `report` for (chain_id, contract); low-s only."""
    _check_shape(signature)
    if int.from_bytes(signature[32:64], "big") > HALF_N:
        raise SignatureError("high-s signature (EIP-2) refused", where="signature")
    signable = encode_typed_data(
        full_message=typed_data(report, chain_id=chain_id, contract=contract)
    )
    try:
        return str(Account.recover_message(signable, signature=signature))
    except Exception as e:  # eth_keys raises BadSignature / ValueError
        raise SignatureError(f"signature does not recover: {e}", where="signature") from e
