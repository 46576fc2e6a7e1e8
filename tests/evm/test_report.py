"""OracleReport from attestation documents, EIP-712 signing, low-s (no node needed)."""

from __future__ import annotations

import hashlib
import json

import pytest
from eth_account import Account

from por.core.canonical import canonical_bytes
from por.errors import AmountError, FormatError, MismatchError, SignatureError
from por.oracle.report import (
    HALF_N,
    OracleReport,
    recover_signer,
    report_hash,
    sign_report,
    to_high_s,
    to_low_s,
)
from tests.evm.helpers import make_doc

KEY = "0x" + "42" * 32
CONTRACT = "0x" + "c0" * 20


def _doc() -> tuple[dict, str]:
    return make_doc(
        sequence=7, as_of=1_795_000_000, reserves=1_012_345_000_000, supply=1_000_000_000_000
    )


def test_from_attestation_reads_the_fields() -> None:
    doc, digest = _doc()
    r = OracleReport.from_attestation(doc, digest)
    assert (r.sequence, r.as_of, r.reserves, r.circulating_supply, r.liabilities_total) == (
        7,
        1_795_000_000,
        1_012_345_000_000,
        1_000_000_000_000,
        1_000_000_000_000,
    )
    assert r.liabilities_root.hex() == doc["liabilities"]["root"]
    assert r.attestation_digest.hex() == digest
    assert OracleReport.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_from_attestation_refuses_bad_input() -> None:
    doc, _ = _doc()
    with pytest.raises(MismatchError, match="expected"):
        OracleReport.from_attestation(doc, "ab" * 32)
    bad = dict(doc, totals=dict(doc["totals"], eligible_reserves="12.5"))
    with pytest.raises(AmountError) as ei:
        OracleReport.from_attestation(bad, _digest(bad))
    assert "totals.eligible_reserves" in str(ei.value)
    bad = dict(doc, as_of="2026-11-25 03:00:00")
    with pytest.raises(FormatError, match="as_of"):
        OracleReport.from_attestation(bad, _digest(bad))
    bad = {k: v for k, v in doc.items() if k != "liabilities"}
    with pytest.raises(FormatError, match="liabilities"):
        OracleReport.from_attestation(bad, _digest(bad))


def _digest(doc: dict) -> str:
    return hashlib.sha256(canonical_bytes(doc)).hexdigest()


def test_signature_binds_chain_and_contract() -> None:
    r = OracleReport.from_attestation(*_doc())
    sig = sign_report(r, chain_id=1, contract=CONTRACT, private_key=KEY)
    me = Account.from_key(KEY).address
    assert recover_signer(r, sig, chain_id=1, contract=CONTRACT) == me
    assert recover_signer(r, sig, chain_id=56, contract=CONTRACT) != me
    assert recover_signer(r, sig, chain_id=1, contract="0x" + "c1" * 20) != me
    assert report_hash(r, chain_id=1, contract=CONTRACT) != report_hash(
        r, chain_id=56, contract=CONTRACT
    )


def test_low_s_only() -> None:
    r = OracleReport.from_attestation(*_doc())
    sig = sign_report(r, chain_id=1, contract=CONTRACT, private_key=KEY)
    assert int.from_bytes(sig[32:64], "big") <= HALF_N and sig[64] in (27, 28)
    high = to_high_s(sig)
    assert int.from_bytes(high[32:64], "big") > HALF_N and to_low_s(high) == sig
    with pytest.raises(SignatureError, match="high-s"):
        recover_signer(r, high, chain_id=1, contract=CONTRACT)
    with pytest.raises(SignatureError, match="65 bytes"):
        recover_signer(r, sig[:64], chain_id=1, contract=CONTRACT)
