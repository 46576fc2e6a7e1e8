"""The attestation document: strict round trip, canonical digest, hash chain, arithmetic."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from por.core.attestation import (
    Attestation,
    Liabilities,
    PreviousRef,
    Token,
    chain_entry_from_values,
    check_consistency,
    decode_attestation,
    reserves_from_dicts,
    verify_chain,
    verify_consistency,
)
from por.core.canonical import canonical_bytes
from por.core.policy import assess
from por.errors import AmountError, ChainLinkError, FormatError, MismatchError

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def make(
    sequence: int = 1,
    previous: PreviousRef | None = None,
    *,
    reserves: int = 2_000_000,
    supply: int = 1_500_000,
    reasons: tuple[str, ...] = (),
) -> Attestation:
    chain = chain_entry_from_values(
        chain_id="eip155:1",
        token="eip155:1:0x" + "ab" * 20,
        block_number=100,
        block_hash="cd" * 32,
        block_time=T0,
        total_supply=supply + 500,
        excluded=[("eip155:1:0x" + "11" * 20, 500, "treasury")],
        holders=3,
    )
    reserve = {
        "custodian": "Harbour Trust Bank (Hong Kong) Limited",
        "account": "HK******1234",
        "asset_class": "cash",
        "instrument": None,
        "currency": "CNH",
        "amount": str(reserves),
        "market_value": str(reserves),
        "haircut_bps": 0,
        "eligible_value": str(reserves),
        "ineligible_reason": None,
        "statement": {
            "format": "camt.053.001.08",
            "id": "STMT-1",
            "as_of": "2026-11-24T16:00:00Z",
            "sha256": "ee" * 32,
        },
    }
    return Attestation(
        sequence=sequence,
        issued_at=T0 + timedelta(minutes=sequence),
        as_of=T0,
        token=Token(symbol="CNHC", decimals=6, currency="CNH"),
        chains=(chain,),
        reserves=reserves_from_dicts([reserve]),
        liabilities=Liabilities(root="aa" * 32, total=supply, leaf_count=3),
        totals=assess(
            eligible_reserves=reserves, circulating_supply=supply, degraded_reasons=reasons
        ),
        previous=previous,
    )


def test_round_trip_and_digest() -> None:
    a = make()
    d = a.to_dict()
    assert Attestation.from_dict(d) == a
    assert a.digest() == hashlib.sha256(canonical_bytes(d)).hexdigest()
    assert decode_attestation(a.to_bytes()) == a
    # amounts are strings on the wire, never JSON numbers
    assert d["totals"]["eligible_reserves"] == "2000000"
    assert d["totals"]["ratio"] == "1.333333"
    assert d["totals"]["status"] == "FULLY_BACKED"


def test_non_canonical_payload_refused() -> None:
    a = make()
    import json

    pretty = json.dumps(a.to_dict(), indent=1).encode()
    with pytest.raises(FormatError, match="canonical"):
        decode_attestation(pretty)


@pytest.mark.parametrize(
    ("path", "value", "err"),
    [
        (("totals", "eligible_reserves"), 5, AmountError),
        (("totals", "eligible_reserves"), "-5", AmountError),
        (("chains", 0, "total_supply"), "1.5", AmountError),
        (("liabilities", "root"), "AA" * 32, FormatError),
        (("issued_at",), "2026-11-25T03:00:00+08:00", FormatError),
        (("format",), "por-attestation-v2", FormatError),
        (("totals", "status"), "OK", FormatError),
        (("reserves", 0, "asset_class"), "crypto", FormatError),
        (("previous",), {"sequence": 1, "digest": "00" * 32}, ChainLinkError),
    ],
)
def test_strict_parsing_names_the_field(path: tuple[Any, ...], value: Any, err: type) -> None:
    d = make().to_dict()
    target = d
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    with pytest.raises(err) as ei:
        Attestation.from_dict(d)
    assert str(path[-1]) in str(ei.value)


def test_unknown_field_refused() -> None:
    d = make().to_dict()
    d["extra"] = 1
    with pytest.raises(FormatError, match="unknown field"):
        Attestation.from_dict(d)


def test_hash_chain() -> None:
    a1 = make(1)
    a2 = make(2, PreviousRef(sequence=1, digest=a1.digest()))
    verify_chain(a1, a2)
    forged = make(2, PreviousRef(sequence=1, digest="00" * 32))
    with pytest.raises(ChainLinkError, match="digest"):
        verify_chain(a1, forged)
    skipped = make(3, PreviousRef(sequence=1, digest=a1.digest()))
    with pytest.raises(ChainLinkError, match="sequence"):
        verify_chain(a1, skipped)


def test_consistency_finds_each_lie() -> None:
    good = make()
    assert check_consistency(good) == []
    d = good.to_dict()
    d["totals"]["eligible_reserves"] = "9999999"
    d["totals"]["ratio"] = "6.666666"
    bad = Attestation.from_dict(d)
    with pytest.raises(MismatchError, match="sum of reserve lines"):
        verify_consistency(bad)
    d = copy.deepcopy(good.to_dict())
    d["liabilities"]["total"] = "1"
    assert any("liabilities.total" in p for p in check_consistency(Attestation.from_dict(d)))
    d = copy.deepcopy(good.to_dict())
    d["totals"]["status"] = "UNDER_COLLATERALIZED"
    assert any("figures say FULLY_BACKED" in p for p in check_consistency(Attestation.from_dict(d)))
