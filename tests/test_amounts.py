"""Money is integers: parsing, checking and formatting never go through a float."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from por.core.amounts import (
    MAX_AMOUNT_EXCLUSIVE,
    Amount,
    check_amount,
    format_base_units,
    format_decimal,
    parse_base_units,
    parse_decimal,
    ratio_string,
)
from por.core.canonical import canonical_bytes, loads_strict
from por.errors import AmountError, FormatError


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "-1",
        "+1",
        "01",
        "1.0",
        "1e6",
        " 1",
        "1 ",
        "0x10",
        "\u0661",
        str(MAX_AMOUNT_EXCLUSIVE),
        "9" * 60,
    ],
)
def test_parse_base_units_refuses_non_canonical(bad: str) -> None:
    with pytest.raises(AmountError):
        parse_base_units(bad, where="f.jsonl:3:balance")


@pytest.mark.parametrize("bad", [1, 1.0, None, True, b"1"])
def test_parse_base_units_refuses_non_strings(bad: object) -> None:
    with pytest.raises(AmountError, match="decimal string"):
        parse_base_units(bad)


def test_check_amount_bounds() -> None:
    assert check_amount(0) == 0
    assert check_amount(MAX_AMOUNT_EXCLUSIVE - 1) == MAX_AMOUNT_EXCLUSIVE - 1
    for bad in (-1, MAX_AMOUNT_EXCLUSIVE, 1.5, True):
        with pytest.raises(AmountError):
            check_amount(bad)


def test_error_names_where() -> None:
    with pytest.raises(AmountError) as ei:
        parse_base_units("-5", where="leaves.jsonl:7:balance")
    assert "leaves.jsonl:7:balance" in str(ei.value)


@pytest.mark.parametrize(
    ("text", "decimals", "want"),
    [
        ("1234.56", 2, 123456),
        ("1", 6, 1_000_000),
        ("0.000001", 6, 1),
        ("1.500", 2, 150),
        ("7", 0, 7),
    ],
)
def test_parse_decimal(text: str, decimals: int, want: int) -> None:
    assert parse_decimal(text, decimals) == want


@pytest.mark.parametrize("bad", ["1.005", "-1", "1e3", "1,5", ".5", "5.", "NaN"])
def test_parse_decimal_refuses(bad: str) -> None:
    with pytest.raises(AmountError):
        parse_decimal(bad, 2)


@given(st.integers(min_value=0, max_value=MAX_AMOUNT_EXCLUSIVE - 1), st.integers(0, 18))
def test_decimal_round_trip(value: int, decimals: int) -> None:
    assert parse_decimal(format_decimal(value, decimals), decimals) == value
    assert parse_base_units(format_base_units(value)) == value


def test_ratio_rounds_down_and_handles_zero() -> None:
    assert ratio_string(2, 3) == "0.666666"
    assert ratio_string(1, 1) == "1.000000"
    assert ratio_string(5, 0) is None


def test_amount_round_trip() -> None:
    a = Amount(base_units=123_450_000, decimals=6, currency="CNH")
    assert Amount.from_dict(a.to_dict()) == a
    assert str(a) == "123.450000 CNH"


def test_canonical_refuses_floats_and_big_ints() -> None:
    with pytest.raises(FormatError):
        canonical_bytes({"a": 1.5})
    with pytest.raises(FormatError):
        canonical_bytes({"a": 2**60})
    assert canonical_bytes({"b": "2", "a": "1"}) == b'{"a":"1","b":"2"}'


def test_loads_strict() -> None:
    with pytest.raises(FormatError, match="float"):
        loads_strict('{"a": 1.5}')
    with pytest.raises(FormatError, match="duplicate"):
        loads_strict('{"a": 1, "a": 2}')
    with pytest.raises(FormatError, match="line 1"):
        loads_strict("{")
