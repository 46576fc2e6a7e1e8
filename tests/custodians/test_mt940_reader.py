"""Our MT940 reader's edges: code pages, account forms, layout quirks seen in real files,
and statement warnings on their way into the attestation document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from por.core.attestation import ReserveEntry, StatementRef
from por.core.policy import Policy
from por.custodians.base import CustodianReport, RawDocument
from por.custodians.camt import parse_camt
from por.custodians.files import FileSource
from por.custodians.model import Statement, StatementParseError, account_key
from por.custodians.mt940 import parse_mt940, split_account
from por.custodians.reserves import evaluate_reserves
from por.errors import ConfigError
from tests.custodians.conftest import sample

NARRATIVE = {
    "cp852": "Átutalás Kovács Győző Kft. ŐŰ",
    "cp1250": "Przelew Łódź Żółć, Dvořák Šťáva",
    "iso-8859-1": "Überweisung Müller & Søn, Ærø",
    "iso-8859-2": "Převod Łódź Ćwikła, Győr",
    "iso-8859-15": "Virement Œuvre 100 €, Žiž",
}


def _mt(narrative: str) -> str:
    return (
        ":20:REF1\n:25:NL91ABNA0417164300\n:28C:1/1\n:60F:C250629EUR10,00\n"
        f":61:2506300630C5,00NTRFNONREF\n:86:{narrative}\n:62F:C250630EUR15,00\n"
    )


@pytest.mark.parametrize("encoding", sorted(NARRATIVE))
def test_code_pages(encoding: str) -> None:
    data = _mt(NARRATIVE[encoding]).encode(encoding)
    (s,) = parse_mt940(data, name="c.sta", custodian="B", encoding=encoding)
    assert (s.closing_booked, s.warnings) == (1500, ())
    with pytest.raises(StatementParseError) as ei:
        parse_mt940(data, name="c.sta", custodian="B")
    assert ei.value.where == "c.sta:6" and "set `encoding`" in ei.value.message


def test_utf8_bom_and_crlf() -> None:
    data = b"\xef\xbb\xbf" + _mt("Zoë").replace("\n", "\r\n").encode()
    (s,) = parse_mt940(data, name="u.sta", custodian="B")
    assert s.closing_booked == 1500


def test_unknown_encoding_is_a_clear_error(tmp_path: Any) -> None:
    with pytest.raises(StatementParseError, match="unknown encoding 'cp-nope'"):
        parse_mt940(b":20:X\n", name="x", custodian="B", encoding="cp-nope")
    with pytest.raises(ConfigError, match="unknown encoding"):
        FileSource(name="s", paths=[tmp_path / "*.sta"], encoding="cp-nope")


def test_config_encoding_setting() -> None:
    from pydantic import ValidationError

    from por.service.config import FilesCustodianConfig

    ok = FilesCustodianConfig(kind="files", name="uc", paths=["a.sta"], encoding="cp852")
    assert ok.encoding == "cp852"
    assert FilesCustodianConfig(kind="files", name="uc", paths=["a.sta"]).encoding == "utf-8"
    with pytest.raises(ValidationError, match="unknown encoding"):
        FilesCustodianConfig(kind="files", name="uc", paths=["a.sta"], encoding="klingon")


@pytest.mark.parametrize(
    "declared",
    ["ISO-8859-2", "windows-1250", "ISO-8859-15", "ISO-8859-1", "UTF-16"],
)
def test_camt_decoded_by_its_declaration(declared: str) -> None:
    v08 = sample("harbour_trust_camt053_v08.xml").decode()
    name = {"ISO-8859-1": "Müller", "ISO-8859-15": "Œuvre"}.get(declared, "Łódź Győr")
    doc = v08.replace('encoding="UTF-8"', f'encoding="{declared}"').replace(
        "<Nm>Kowloon Digital Money Ltd", f"<Nm>{name} Kowloon Digital Money Ltd", 1
    )
    sts = parse_camt(doc.encode(declared), name="c.xml")
    assert [s.closing_booked for s in sts] == [
        s.closing_booked for s in parse_camt(sample("harbour_trust_camt053_v08.xml"), name="c")
    ]


@pytest.mark.parametrize(
    ("field", "account", "currency"),
    [
        ("HTBKHKHH/88703101004471", "88703101004471", None),
        ("UBRTHUHB/10918001-00000069-55790006/HUF", "10918001-00000069-55790006", "HUF"),
        ("10918001-00000069-55790006/HUF", "10918001-00000069-55790006", "HUF"),
        ("/RO19INGB0000999904621843", "RO19INGB0000999904621843", None),
        (" RO40RZBR0000060001111111", "RO40RZBR0000060001111111", None),
        ("NL91 ABNA 0417 1643 00", "NL91ABNA0417164300", None),
        ("NL34RABO0142623393 EUR", "NL34RABO0142623393", "EUR"),
        ("NL77INGB0574908765EUR", "NL77INGB0574908765", "EUR"),
        ("RO87BUCU1052235283028RON", "RO87BUCU1052235283028RON", None),  # a whole RO IBAN
        ("10020030/1234567", "10020030/1234567", None),  # bank code / account
        ("INGBNL2A/NL77INGB0574908765/EUR", "NL77INGB0574908765", "EUR"),
    ],
)
def test_account_forms(field: str, account: str, currency: str | None) -> None:
    assert split_account(field) == (account, currency)
    data = f":20:X\n:25:{field}\n:62F:C250630{currency or 'EUR'}1,00\n".encode()
    (s,) = parse_mt940(data, name="a.sta", custodian="B")
    assert s.account_key == account_key(account)
    assert s.account.endswith(account.replace(" ", "")[-4:])  # the mask keeps the account part


@pytest.mark.parametrize("field", ["", "BIC12345//", "ABCDEFGH/", "/"])
def test_account_without_an_account_part_is_refused(field: str) -> None:
    with pytest.raises(StatementParseError, match=":25:"):
        parse_mt940(f":20:X\n:25:{field}\n:62F:C250630EUR1,00\n".encode(), name="a", custodian="B")


def test_layout_quirks_of_real_files() -> None:
    data = (
        b"\x01 {1:F01BUCUROBUAXXX0000000000}{2:I940BUCUROBUXXXXN}{3:{108:X}}{4:\n"
        b":20:A\n:25:RO87BUCU1052235283028RON\n:28:115/01\n"
        b":NS:22ORDERING PARTY\n:23Cont curent\n"
        b":60F:C221025RON1000,00\n"
        b":61:2210251025CN1000,00NTRF4782//248OPA\n:86:line one\n-\nline after a dash\n"
        b":62F:C221025RON2000,00\n-}\x03\n"
        b"{1:F01X}{2:I940X}{4:\n:20:B\n:25:RO87BUCU1052235283028RON\n:28C:116/1\n"
        b":60F:C221025RON2000,00\n:62F:C221026RON2000,00\n-\n}\n"
    )
    a, b = parse_mt940(data, name="q.sta", custodian="Alpha")
    assert (a.closing_booked, b.closing_booked) == (200000, 200000)
    assert (a.statement_id, b.statement_id) == ("A/115", "B/116")
    assert a.warnings == () and b.warnings == ()


def test_fields_before_any_20_are_refused() -> None:
    with pytest.raises(StatementParseError, match="outside a statement") as ei:
        parse_mt940(b":25:X\n:62F:C250630EUR1,00\n:20:A\n", name="o.sta", custodian="B")
    assert ei.value.where == "o.sta:1"


def test_pages_keep_only_the_last() -> None:
    data = (
        b":20:S\n:25:PL1\n:28C:17/1\n:60F:C250101PLN10,00\n:62M:C250124PLN20,00\n"
        b":20:S\n:25:PL1\n:28C:17/2\n:60M:C250124PLN20,00\n:62F:C250131PLN30,00\n"
    )
    (s,) = parse_mt940(data, name="p", custodian="B")
    assert (s.closing_booked, s.balance_type) == (3000, "62F/64")


def test_warnings_reach_the_attestation_and_round_trip() -> None:
    data = sample("issue11/zenith_blank_28c.sta")
    (s,) = parse_mt940(data, name="z.sta", custodian="Zenith")
    report = CustodianReport(
        custodian="z",
        statements=(s,),
        raw_documents=(RawDocument.of(data, format="mt940", name="z.sta"),),
    )
    (line,), _total, _ = evaluate_reserves(
        [report],
        Policy(fx_rates={}),
        token_currency="NGN",
        token_decimals=2,
        as_of=datetime(2025, 7, 1, tzinfo=UTC),
    )
    assert line.statement.warnings == s.warnings and s.warnings
    d = line.to_dict()
    assert d["statement"]["warnings"] == list(s.warnings)
    assert ReserveEntry.from_dict(d, where="r") == line
    assert Statement.from_dict(s.to_dict()) == s


def test_a_statement_ref_without_warnings_keeps_its_old_form() -> None:
    old = {
        "format": "mt940",
        "id": "A/1",
        "as_of": "2025-06-30T16:00:00Z",
        "sha256": "ab" * 32,
    }
    ref = StatementRef.from_dict(old, where="s")
    assert ref.warnings == () and ref.to_dict() == old  # same bytes, same digest
    with pytest.raises(Exception, match="non-empty list"):
        StatementRef.from_dict({**old, "warnings": []}, where="s")
