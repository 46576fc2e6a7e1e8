"""The oracle report: what ReserveOracle stores per round, and its EIP-712 signature.

An `OracleReport` is read from a por-attestation-v1 document (DESIGN §4) and its digest;
`sign_report` signs it for ONE chain and ONE contract (the EIP-712 domain binds name,
version, chainId and verifyingContract — REFERENCE "Signing"), so a report signed for
chain 1 is worthless on chain 56 or on another oracle. Signatures are 65 bytes r‖s‖v with
v ∈ {27, 28} and low s (EIP-2), the only form the contract accepts.

No network, disk, clock or randomness: pure functions of their arguments (ECDSA signing
in eth_account is deterministic, RFC 6979).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from por.core.amounts import check_amount, format_base_units, parse_base_units
from por.core.canonical import canonical_bytes
from por.errors import FormatError, MismatchError, SignatureError

EIP712_NAME = "por ReserveOracle"  # must equal ReserveOracle.EIP712_NAME
EIP712_VERSION = "1"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2

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
        {"name": "reserves", "type": "uint256"},
        {"name": "circulatingSupply", "type": "uint256"},
        {"name": "liabilitiesRoot", "type": "bytes32"},
        {"name": "liabilitiesTotal", "type": "uint256"},
        {"name": "attestationDigest", "type": "bytes32"},
    ],
}

_HEX32_RE = re.compile(r"[0-9a-f]{64}")
_RFC3339_Z_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def _hex32(value: object, where: str) -> bytes:
    if not isinstance(value, str) or not _HEX32_RE.fullmatch(value):
        raise FormatError(f"must be 64 lowercase hex digits without 0x, got {value!r}", where=where)
    return bytes.fromhex(value)


def parse_time_s(value: object, where: str) -> int:
    """RFC 3339 UTC with 'Z' and whole seconds -> unix seconds."""
    if not isinstance(value, str) or not _RFC3339_Z_RE.fullmatch(value):
        raise FormatError(
            f"must be RFC 3339 UTC like 2026-11-25T03:00:00Z, got {value!r}", where=where
        )
    try:
        dt = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as e:
        raise FormatError(f"not a valid time: {e}", where=where) from e
    return int(dt.timestamp())


def _get(doc: Mapping[str, Any], path: str) -> Any:
    cur: Any = doc
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            raise FormatError(f"missing field {path!r}", where=f"attestation.{path}")
        cur = cur[part]
    return cur


@dataclass(frozen=True, slots=True, kw_only=True)
class OracleReport:
    """One ReserveOracle round as signed by the attestors (amounts in token base units)."""

    sequence: int
    as_of: int  # unix seconds
    reserves: int
    circulating_supply: int
    liabilities_root: bytes  # 32 bytes
    liabilities_total: int
    attestation_digest: bytes  # 32 bytes: SHA-256 of the RFC 8785 attestation document

    def __post_init__(self) -> None:
        for name in ("sequence", "as_of"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**64:
                raise FormatError(
                    f"must be an int in [0, 2^64), got {v!r}", where=f"OracleReport.{name}"
                )
        if self.sequence < 1:
            raise FormatError("sequence starts at 1", where="OracleReport.sequence")
        for name in ("reserves", "circulating_supply", "liabilities_total"):
            check_amount(getattr(self, name), where=f"OracleReport.{name}")
        for name in ("liabilities_root", "attestation_digest"):
            v = getattr(self, name)
            if not isinstance(v, bytes) or len(v) != 32:
                raise FormatError("must be 32 bytes", where=f"OracleReport.{name}")

    @classmethod
    def from_attestation(cls, doc: Mapping[str, Any], digest_hex: str) -> OracleReport:
        """Read the report fields of a por-attestation-v1 document.

        The digest is recomputed from the document (SHA-256 of its RFC 8785 bytes) and must
        equal `digest_hex`: the chain must never carry a digest of some other document.
        """
        if _get(doc, "format") != "por-attestation-v1":
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
        sequence = _get(doc, "sequence")
        if isinstance(sequence, bool) or not isinstance(sequence, int):
            raise FormatError(f"must be an integer, got {sequence!r}", where="attestation.sequence")
        return cls(
            sequence=sequence,
            as_of=parse_time_s(_get(doc, "as_of"), "attestation.as_of"),
            reserves=parse_base_units(
                _get(doc, "totals.eligible_reserves"), where="attestation.totals.eligible_reserves"
            ),
            circulating_supply=parse_base_units(
                _get(doc, "totals.circulating_supply"),
                where="attestation.totals.circulating_supply",
            ),
            liabilities_root=_hex32(_get(doc, "liabilities.root"), "attestation.liabilities.root"),
            liabilities_total=parse_base_units(
                _get(doc, "liabilities.total"), where="attestation.liabilities.total"
            ),
            attestation_digest=digest,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "as_of": self.as_of,
            "reserves": format_base_units(self.reserves),
            "circulating_supply": format_base_units(self.circulating_supply),
            "liabilities_root": self.liabilities_root.hex(),
            "liabilities_total": format_base_units(self.liabilities_total),
            "attestation_digest": self.attestation_digest.hex(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "report") -> OracleReport:
        try:
            return cls(
                sequence=d["sequence"],
                as_of=d["as_of"],
                reserves=parse_base_units(d["reserves"], where=f"{where}.reserves"),
                circulating_supply=parse_base_units(
                    d["circulating_supply"], where=f"{where}.circulating_supply"
                ),
                liabilities_root=_hex32(d["liabilities_root"], f"{where}.liabilities_root"),
                liabilities_total=parse_base_units(
                    d["liabilities_total"], where=f"{where}.liabilities_total"
                ),
                attestation_digest=_hex32(d["attestation_digest"], f"{where}.attestation_digest"),
            )
        except KeyError as e:
            raise FormatError(f"missing field {e.args[0]!r}", where=where) from e

    def message(self) -> dict[str, Any]:
        """The EIP-712 `Report` message."""
        return {
            "sequence": self.sequence,
            "asOf": self.as_of,
            "reserves": self.reserves,
            "circulatingSupply": self.circulating_supply,
            "liabilitiesRoot": self.liabilities_root,
            "liabilitiesTotal": self.liabilities_total,
            "attestationDigest": self.attestation_digest,
        }

    def as_abi_tuple(self) -> tuple[int, int, int, int, bytes, int, bytes]:
        """The `Report` struct argument of ReserveOracle.submit."""
        return (
            self.sequence,
            self.as_of,
            self.reserves,
            self.circulating_supply,
            self.liabilities_root,
            self.liabilities_total,
            self.attestation_digest,
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
