"""A reserve line converted from another currency carries its own figures and the rate.

The USD bond of the sample holdings, valued under a policy with an exact USD rate: the
document says USD 4,997,500.00 at 7.1834, the token-unit market value is that converted
and rounded down, and `check_consistency` recomputes the conversion — a changed rate or
figure is a problem, a document without `fx` keeps its old bytes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from fractions import Fraction

import pytest

from por.core.attestation import (
    FxConversion,
    ReserveEntry,
    StatementRef,
    convert_units,
    parse_rate_string,
    rate_string,
)
from por.core.policy import Policy, Position, value_position
from por.errors import FormatError

AS_OF = datetime(2025, 7, 1, 2, tzinfo=UTC)
REF = StatementRef(
    format="holdings-json", id="HTBK-CUST-20250630-02", as_of=AS_OF, sha256="ab" * 32
)


def _bond(currency: str = "USD") -> Position:
    return Position(
        custodian="Harbour Trust Bank (Hong Kong) Limited",
        account="8870-900-2001196",
        asset_class="government_security",
        instrument="XS2000123450",
        currency=currency,
        decimals=2,
        amount=500_000_000,
        market_value=499_750_000,
        issuer="Asian Infrastructure Investment Bank",
        issuer_type="supranational",
        maturity_date=date(2026, 1, 15),
        start_date=None,
        statement=REF,
    )


def test_a_converted_line_records_its_own_figures_and_the_exact_rate() -> None:
    policy = Policy(fx_rates={"USD": Fraction("7.1834")}, fx_haircut_bps=200)
    line, _ = value_position(_bond(), policy, token_currency="CNH", token_decimals=6, as_of=AS_OF)
    assert line.fx == FxConversion(
        rate=Fraction("7.1834"), decimals=2, amount=500_000_000, market_value=499_750_000
    )
    assert line.market_value == 4_997_500 * 71834 * 100  # USD 4,997,500.00 x 7.1834, 6 places
    assert line.haircut_bps == 300  # 100 for the class + 200 for FX
    d = line.to_dict()
    assert d["fx"] == {
        "rate": "7.1834",
        "decimals": 2,
        "amount": "500000000",
        "market_value": "499750000",
    }
    assert ReserveEntry.from_dict(d, where="r") == line


def test_lines_without_conversion_keep_their_bytes() -> None:
    cnh, _ = value_position(
        _bond("CNH"), Policy(), token_currency="CNH", token_decimals=6, as_of=AS_OF
    )
    unconverted, _ = value_position(
        _bond(), Policy(), token_currency="CNH", token_decimals=6, as_of=AS_OF
    )
    assert cnh.fx is None and "fx" not in cnh.to_dict()
    assert unconverted.fx is None and unconverted.eligible_value == 0
    assert "no FX rule" in (unconverted.ineligible_reason or "")


def test_rates_have_one_spelling() -> None:
    assert rate_string(Fraction("7.1834")) == "7.1834"
    assert rate_string(Fraction(7)) == "7"
    assert rate_string(Fraction(1, 3)) == "1/3"
    for text in ("7.1834", "7", "1/3", "0.000001"):
        assert rate_string(parse_rate_string(text, where="r")) == text
    for bad in ("7.18340", "07.1", "2/6", "-1", "1e3", "0", "7,1834"):
        with pytest.raises(FormatError):
            parse_rate_string(bad, where="r")


def test_check_consistency_recomputes_the_conversion() -> None:
    from tests.store.factory import World

    att = World().next().attestation
    policy = Policy(fx_rates={"USD": Fraction("7.1834")})
    line, _ = value_position(_bond(), policy, token_currency="CNH", token_decimals=6, as_of=AS_OF)
    lines = (*att.reserves, line)
    total = sum(r.eligible_value for r in lines)
    from por.core.attestation import check_consistency
    from por.core.policy import assess

    totals = assess(
        eligible_reserves=total,
        circulating_supply=att.totals.circulating_supply,
        degraded_reasons=(),
    )
    good = replace(
        att,
        reserves=lines,
        totals=totals,
        allocation=None,
        chains=tuple(replace(c, budget=None) for c in att.chains),
    )
    assert check_consistency(good) == []
    assert (
        convert_units(499_750_000, decimals=2, rate=Fraction("7.1834"), token_decimals=6)
        == line.market_value
    )
    assert line.fx is not None
    bad = replace(
        good, reserves=(*att.reserves, replace(line, fx=replace(line.fx, rate=Fraction("7.2"))))
    )
    problems = check_consistency(bad)
    assert any("market_value" in p and "rate 7.2" in p for p in problems), problems
