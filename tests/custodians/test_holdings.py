"""Holdings CSV/JSON: ISIN check digits, exact amounts, price-derived market value, errors."""

from __future__ import annotations

from datetime import date

import pytest

from por.custodians.holdings import parse_holdings_csv, parse_holdings_json
from por.custodians.model import StatementParseError, isin_check_digit_ok
from tests.custodians.conftest import sample

CSV = sample("harbour_trust_holdings.csv")
JSON = sample("harbour_trust_holdings.json")


def test_csv_sample() -> None:
    hs = parse_holdings_csv(CSV, name="h.csv")
    assert [h.asset_class for h in hs] == [
        "government_security",
        "government_security",
        "government_security",
        "other",
        "deposit",
        "reverse_repo",
    ]
    mof = hs[0]
    assert mof.isin == "CND10003FR81" and mof.issuer_type == "government"
    assert mof.nominal == 15_000_000_000 and mof.market_value == 14_911_800_000
    assert mof.clean_price == "99.412" and mof.maturity_date == date(2025, 11, 28)
    assert mof.account == "************1188"
    assert hs[4].start_date == date(2025, 5, 30) and hs[4].isin is None


def test_json_sample_and_round_trip() -> None:
    from por.custodians.model import Holding

    hs = parse_holdings_json(JSON, name="h.json")
    assert [h.currency for h in hs] == ["CNH", "USD"]
    for h in hs:
        assert Holding.from_dict(h.to_dict()) == h


@pytest.mark.parametrize(
    ("isin", "ok"),
    [
        ("US0378331005", True),
        ("US0378331006", False),
        ("CND10003FR81", True),
        ("HK0000123452", True),
        ("HK0000123453", False),
        ("hk0000123452", False),
        ("HK000012345", False),
    ],
)
def test_isin_check_digit(isin: str, ok: bool) -> None:
    assert isin_check_digit_ok(isin) is ok


def _csv_with(col: str, value: str) -> bytes:
    lines = CSV.decode().splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index(col)] = value
    return ("\n".join([lines[0], ",".join(row)]) + "\n").encode()


def test_market_value_from_clean_price_rounds_down() -> None:
    (h,) = parse_holdings_csv(
        _csv_with("market_value", "").replace(b"150000000.00,99.412", b"1.00,99.999"), name="h"
    )
    assert h.market_value == 99  # 1.00 x 99.999% = 0.99999 -> 0.99 (rounded down)


@pytest.mark.parametrize(
    ("col", "value", "what"),
    [
        ("isin", "CND10003FR82", "ISIN"),
        ("nominal", "1e6", "digits"),
        ("nominal", "-5", "digits"),
        ("clean_price", "abc", "clean_price"),
        ("maturity_date", "2025-13-01", "valid date"),
        ("asset_class", "crypto", "asset_class"),
        ("issuer_type", "sovereign", "issuer_type"),
        ("currency", "Cnh", "currency"),
        ("as_of", "2025-06-30 16:00", "RFC 3339"),
        ("start_date", "2026-01-01", "after maturity"),
        ("isin", "", "needs its ISIN"),
    ],
)
def test_csv_errors_name_line_and_column(col: str, value: str, what: str) -> None:
    with pytest.raises(StatementParseError) as ei:
        parse_holdings_csv(_csv_with(col, value), name="h.csv")
    assert what in ei.value.message
    assert ei.value.where is not None and ei.value.where.startswith("h.csv:2")


def test_csv_bad_header_and_ragged_rows() -> None:
    with pytest.raises(StatementParseError, match="header"):
        parse_holdings_csv(b"a,b\n1,2\n", name="h")
    with pytest.raises(StatementParseError, match="number of cells"):
        parse_holdings_csv(CSV + b"x,y\n", name="h")


def test_json_numbers_refused() -> None:
    with pytest.raises(StatementParseError, match="decimal strings"):
        parse_holdings_json(JSON.replace(b'"40000000.00"', b"40000000.00"), name="h")
    with pytest.raises(StatementParseError) as ei:
        parse_holdings_json(JSON.replace(b'"HK0000234564"', b'"HK0000234565"'), name="h.json")
    assert ei.value.where == "h.json:$.holdings[0]:isin"
