"""OracleReport from attestation documents, EIP-712 signing, low-s (no node needed)."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json

import pytest
from eth_account import Account
from eth_utils.crypto import keccak

from por.core.budgets import BudgetMismatchError, BudgetsExceedReservesError
from por.core.canonical import canonical_bytes
from por.errors import AmountError, FormatError, MismatchError, PublishError, SignatureError
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


def _doc(**kw: object) -> tuple[dict, str]:
    args: dict = {
        "sequence": 7,
        "as_of": 1_795_000_000,
        "reserves": 1_012_345_000_000,
        "supply": 1_000_000_000_000,
    }
    return make_doc(**(args | kw))


def test_from_attestation_reads_the_fields() -> None:
    doc, digest = _doc(excluded=[5_000_000, 0], reserves_age_s=4 * 3600)
    r = OracleReport.from_attestation(doc, digest)
    assert (r.sequence, r.as_of, r.eligible_reserves, r.total_circulating) == (
        7,
        1_795_000_000,
        1_012_345_000_000,
        1_000_000_000_000,
    )
    assert r.status == "FULLY_BACKED" and r.liabilities_total == 1_000_000_000_000
    # the reserves' as-of is the statement's, 4 h before the snapshot; updatedAt follows it
    assert r.reserves_as_of == 1_795_000_000 - 4 * 3600 == r.updated_at
    assert r.liabilities_root.hex() == doc["liabilities"]["root"]
    assert r.attestation_digest.hex() == digest
    # every chain's line, as the document has it
    assert [(c.chain_id, c.circulating, c.budget) for c in r.chains] == [
        (c["chain_id"], int(c["circulating_supply"]), int(c["budget"])) for c in doc["chains"]
    ]
    assert r.budget_for("eip155:56").budget == int(doc["chains"][1]["budget"])
    assert r.chains[0].key == keccak(text="eip155:1")
    assert OracleReport.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    with pytest.raises(PublishError, match="no budget for eip155:137"):
        r.budget_for("eip155:137")


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


def test_budgets_above_reserves_are_never_signed() -> None:
    # A document whose budgets add up to more than its reserves (honest figures
    # otherwise) is refused before anything is signed, with the typed error.
    doc, _ = _doc()
    bad = copy.deepcopy(doc)
    bad["chains"][0]["budget"] = str(int(bad["chains"][0]["budget"]) + 10**12)
    with pytest.raises(BudgetsExceedReservesError, match="more than the eligible reserves"):
        OracleReport.from_attestation(bad, _digest(bad))
    # a budget within the reserves, but not the declared rule's, is refused too
    bad = copy.deepcopy(doc)
    bad["chains"][0]["budget"] = str(int(bad["chains"][0]["budget"]) - 1)
    with pytest.raises(BudgetMismatchError, match="recomputed"):
        OracleReport.from_attestation(bad, _digest(bad))
    # and a document made before budgets cannot be published to a budget oracle
    old = copy.deepcopy(doc)
    del old["allocation"]
    for c in old["chains"]:
        del c["budget"]
    with pytest.raises(FormatError, match="no per-chain budgets"):
        OracleReport.from_attestation(old, _digest(old))


def test_report_checks_its_own_shape() -> None:
    r = OracleReport.from_attestation(*_doc())
    with pytest.raises(FormatError, match="unknown status"):
        dataclasses.replace(r, status="SOLVENT")
    with pytest.raises(FormatError, match="1 to 64 chains"):
        dataclasses.replace(r, chains=())
    with pytest.raises(AmountError):
        dataclasses.replace(r, eligible_reserves=2**127)


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
