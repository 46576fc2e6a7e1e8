"""MT940 parsing by our own reader: 62F/62M/64, decimal comma, C/D, YYMMDD."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from por.custodians.model import StatementParseError
from por.custodians.mt940 import parse_mt940
from tests.custodians.conftest import HT, sample

MT = sample("harbour_trust_mt940.txt")


def _stmt(*lines: str) -> bytes:
    return (
        "\n".join([":20:REF1", ":25:HTBKHKHH/88703101009999", ":28C:5/1", *lines]) + "\n"
    ).encode()


def test_sample_two_statements_in_swift_blocks() -> None:
    a, b = parse_mt940(MT, name="m.txt", custodian=HT)
    assert a.statement_id == "HTBK250630A01/181" and a.format == "mt940"
    assert a.closing_booked == 41500811735 and a.closing_available == 41500811735
    assert a.account == "**********4471" and a.custodian == HT
    assert a.as_of == datetime(2025, 6, 30, 16, tzinfo=UTC)  # end of HK business day
    # "18250000," has no decimals written; CNH's exponent (2) is used
    assert (b.closing_booked, b.closing_available, b.decimals) == (1825000000, 1775000000, 2)
    assert b.balance_type == "62F/64"


def test_debit_balance_is_negative_and_62m_accepted() -> None:
    (s,) = parse_mt940(
        _stmt(":60F:C250629CNH10,00", ":62M:D250630CNH1234,5"), name="x", custodian=HT
    )
    assert s.closing_booked == -123450 and s.balance_type == "62M/64"
    assert s.closing_available is None


def test_five_decimals_exact() -> None:
    (s,) = parse_mt940(_stmt(":62F:C250630CNH1,23456", ":64:C250630CNH1,2"), name="x", custodian=HT)
    assert (s.closing_booked, s.closing_available, s.decimals) == (123456, 120000, 5)


@pytest.mark.parametrize(
    ("lines", "what"),
    [
        ((":60F:C250629CNH10,00",), "no closing balance"),
        ((":62F:C250630CNH1,234567",), "6 decimals"),
        ((":62F:C250630CNH10,00", ":64:C250630USD10,00"), "differs"),
        ((":62F:C250632CNH10,00",), "not a valid YYMMDD date"),
        ((":62F:C250630CNH1,2,3",), "'1,2,3' is not digits with one decimal mark"),
    ],
)
def test_errors_name_file_and_line(lines: tuple[str, ...], what: str) -> None:
    data = b":20:OK\n:25:X/1\n:62F:C250630CNH1,00\n" + _stmt(*lines)
    with pytest.raises(StatementParseError) as ei:
        parse_mt940(data, name="bad.sta", custodian=HT)
    assert what in ei.value.message
    assert ei.value.where is not None and ei.value.where.startswith("bad.sta:")


def test_second_statement_error_points_at_its_line() -> None:
    data = b":20:OK\n:25:X/1\n:62F:C250630CNH1,00\n" + _stmt(":60F:C250629CNH10,00")
    with pytest.raises(StatementParseError) as ei:
        parse_mt940(data, name="bad.sta", custodian=HT)
    assert ei.value.where == "bad.sta:4"


@pytest.mark.parametrize("data", [b"", b"hello", b"\xff\xfe:20:", b":20:X\n"])
def test_garbage_refused(data: bytes) -> None:
    with pytest.raises(StatementParseError):
        parse_mt940(data, name="g", custodian=HT)


def test_a_statement_that_names_a_file_is_never_read_as_a_path(tmp_path: object) -> None:
    # the old mt-940 package read a FILE when handed a str naming one; ours reads bytes only
    with pytest.raises(StatementParseError):
        parse_mt940(b"/etc/hostname", name="g", custodian=HT)
