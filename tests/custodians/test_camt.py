"""camt.053 / camt.052 parsing: every feature of the layout, and errors that name the element."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from por.custodians.camt import parse_camt
from por.custodians.model import StatementParseError
from tests.custodians.conftest import HT, sample

V08 = sample("harbour_trust_camt053_v08.xml")
V02 = sample("harbour_trust_camt053_v02.xml")
R52 = sample("harbour_trust_camt052_v08.xml")


def _one_stmt(body: str, *, version: str = "08", kind: str = "053") -> bytes:
    container, item = ("BkToCstmrStmt", "Stmt") if kind == "053" else ("BkToCstmrAcctRpt", "Rpt")
    return (
        f'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.{kind}.001.{version}">'
        f"<{container}><GrpHdr><MsgId>M1</MsgId><CreDtTm>2025-07-01T06:00:00+08:00</CreDtTm></GrpHdr>"
        f"<{item}><Id>S1</Id>{body}</{item}></{container}></Document>"
    ).encode()


ACCT = (
    "<Acct><Id><Othr><Id>8870-310-1009999</Id></Othr></Id><Ccy>CNH</Ccy>"
    "<Svcr><FinInstnId><BICFI>HTBKHKHHXXX</BICFI></FinInstnId></Svcr></Acct>"
)


def _bal(
    code: str, amt: str, ind: str = "CRDT", dt: str = "<Dt>2025-06-30</Dt>", ccy: str = "CNH"
) -> str:
    return (
        f'<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy="{ccy}">{amt}</Amt>'
        f"<CdtDbtInd>{ind}</CdtDbtInd><Dt>{dt}</Dt></Bal>"
    )


def test_v08_three_accounts_closing_booked_and_available() -> None:
    sts = parse_camt(V08, name="v08.xml")
    assert [s.statement_id for s in sts] == [
        "HTBK-STMT-20250630-0001",
        "HTBK-STMT-20250630-0002",
        "HTBK-STMT-20250630-0003",
    ]
    first, _, third = sts
    assert first.custodian == HT
    assert first.format == "camt.053.001.08"
    assert first.currency == "CNH" and first.decimals == 2
    assert first.closing_booked == 41500811735
    assert third.closing_booked == 1825000000 and third.closing_available == 1775000000
    assert first.account == "************4471"  # masked: last 4 kept
    assert "1004471" not in repr(first)
    assert first.sha256 == hashlib.sha256(V08).hexdigest()
    # Dt/Dt: end of the Hong Kong business day 2025-06-30 = 16:00 UTC
    assert first.as_of == datetime(2025, 6, 30, 16, tzinfo=UTC)


def test_v02_prefixed_namespace_bom_dttm_without_offset_and_3_decimals() -> None:
    assert V02.startswith(b"\xef\xbb\xbf")
    (s,) = parse_camt(V02, name="v02.xml")
    assert s.format == "camt.053.001.02"
    assert (
        s.decimals == 3
        and s.closing_booked == 5_000_000_000
        and s.closing_available == 5_000_000_000
    )
    assert s.custodian == HT  # from Svcr/FinInstnId/Nm (001.02 uses BIC, not BICFI)
    # DtTm 17:30 without offset is Hong Kong local time -> 09:30 UTC
    assert s.as_of == datetime(2025, 6, 30, 9, 30, tzinfo=UTC)


def test_camt052_interim_balances_and_debit_sign() -> None:
    a, b = parse_camt(R52, name="r52.xml")
    assert a.format == "camt.052.001.08" and a.balance_type == "ITBD/ITAV"
    assert a.closing_booked == 41450811735 and a.closing_available == 41400811735
    assert b.closing_booked == -125050 and b.closing_available is None  # DBIT 1250.5
    assert a.as_of == datetime(2025, 6, 30, 6, tzinfo=UTC)


def test_camt052_prefers_closing_balance_when_present() -> None:
    doc = _one_stmt(ACCT + _bal("ITBD", "5.00") + _bal("CLBD", "7.00"), kind="052")
    (s,) = parse_camt(doc, name="r.xml")
    assert s.closing_booked == 700 and s.balance_type == "CLBD/CLAV"


@pytest.mark.parametrize("version", ["02", "04", "06", "08", "10", "13"])
def test_any_001_version_namespace(version: str) -> None:
    (s,) = parse_camt(_one_stmt(ACCT + _bal("CLBD", "1.00"), version=version), name="x")
    assert s.format == f"camt.053.001.{version}"


def test_iban_account_and_configured_custodian_override() -> None:
    body = "<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>CNH</Ccy></Acct>" + _bal(
        "CLBD", "10"
    )
    (s,) = parse_camt(_one_stmt(body), name="x", custodian="Configured Custodian")
    assert s.account == "DE****************3000"
    assert s.custodian == "Configured Custodian"


@pytest.mark.parametrize(
    ("text", "want", "decimals"),
    [
        ("12", 1200, 2),
        ("12.3", 1230, 2),
        ("12.34", 1234, 2),
        ("12.345", 12345, 3),
        ("12.3456", 123456, 4),
        ("0.00001", 1, 5),
    ],
)
def test_zero_to_five_decimals_exact(text: str, want: int, decimals: int) -> None:
    (s,) = parse_camt(_one_stmt(ACCT + _bal("CLBD", text)), name="x")
    assert (s.closing_booked, s.decimals) == (want, decimals)


def test_available_and_booked_rescaled_to_common_decimals() -> None:
    (s,) = parse_camt(_one_stmt(ACCT + _bal("CLBD", "1.5") + _bal("CLAV", "1.2345")), name="x")
    assert (s.closing_booked, s.closing_available, s.decimals) == (15000, 12345, 4)


def test_dttm_with_offset_and_fraction() -> None:
    body = ACCT + _bal("CLBD", "1", dt="<DtTm>2025-06-30T23:59:59.123+08:00</DtTm>")
    (s,) = parse_camt(_one_stmt(body), name="x")
    assert s.as_of == datetime(2025, 6, 30, 15, 59, 59, tzinfo=UTC)


def test_date_only_as_of_is_capped_by_statement_creation_time() -> None:
    body = "<CreDtTm>2025-06-30T18:00:00+08:00</CreDtTm>" + ACCT + _bal("CLBD", "1")
    (s,) = parse_camt(_one_stmt(body), name="x")
    assert s.as_of == datetime(2025, 6, 30, 10, tzinfo=UTC)


def test_paginated_statement_skips_pages_without_closing_balance() -> None:
    doc = V08.replace(
        b"<Stmt>\n      <Id>HTBK-STMT-20250630-0001</Id>",
        b"<Stmt>\n      <Id>PAGE1</Id><StmtPgntn><PgNb>1</PgNb><LastPgInd>false</LastPgInd></StmtPgntn>"
        b"<Acct><Id><Othr><Id>1</Id></Othr></Id></Acct></Stmt>\n    <Stmt>\n      <Id>HTBK-STMT-20250630-0001</Id>",
    )
    sts = parse_camt(doc, name="x")
    assert len(sts) == 3 and "PAGE1" not in [s.statement_id for s in sts]


@pytest.mark.parametrize(
    ("body", "where", "what"),
    [
        (
            ACCT + _bal("OPBD", "1"),
            "/Document/BkToCstmrStmt/Stmt",
            "no closing booked balance CLBD",
        ),
        (ACCT + _bal("CLBD", "1", ind="CRED"), "/Stmt/Bal/CdtDbtInd", "CRDT or DBIT"),
        (ACCT + _bal("CLBD", "1,00"), "/Stmt/Bal/Amt", "digits"),
        (ACCT + _bal("CLBD", "1.000001"), "/Stmt/Bal/Amt", "5 decimals"),
        (ACCT + _bal("CLBD", "-1"), "/Stmt/Bal/Amt", "negative"),
        (ACCT + _bal("CLBD", "1", ccy="cnh"), "/Stmt/Bal/Amt@Ccy", "currency"),
        (ACCT + _bal("CLBD", "1", ccy="USD"), "/Stmt/Bal", "differs from the statement's currency"),
        (ACCT + _bal("CLBD", "1", dt="<Dt>2025-02-30</Dt>"), "/Bal/Dt/Dt", "valid date"),
        (
            ACCT + _bal("CLBD", "1", dt="<Dt>2025-02-01</Dt><DtTm>2025-02-01T00:00:00</DtTm>"),
            "/Bal/Dt",
            "exactly one",
        ),
        (ACCT + _bal("CLBD", "1") + _bal("CLBD", "2"), "/Stmt/Bal[2]", "occurs twice"),
        (
            "<Acct><Id><Othr><Id>1</Id></Othr></Id></Acct>" + _bal("CLBD", "1"),
            "/Stmt/Acct",
            "no custodian",
        ),
        ("<Acct><Id><Prtry>1</Prtry></Id></Acct>" + _bal("CLBD", "1"), "/Stmt/Acct/Id", "IBAN"),
    ],
)
def test_errors_name_the_element(body: str, where: str, what: str) -> None:
    with pytest.raises(StatementParseError) as ei:
        parse_camt(_one_stmt(body), name="bad.xml")
    assert ei.value.where is not None and ei.value.where.startswith("bad.xml:")
    assert where in ei.value.where
    assert what in ei.value.message


def test_not_well_formed_names_line_and_column() -> None:
    with pytest.raises(StatementParseError) as ei:
        parse_camt(V08.replace(b"</Stmt>", b"</Stm>", 1), name="broken.xml")
    assert ei.value.where is not None and ei.value.where.startswith("broken.xml:")
    assert ei.value.where.count(":") == 2  # file:line:column


@pytest.mark.parametrize(
    "doc",
    [
        b"<Document/>",
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"/>',
        b'<x:Other xmlns:x="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"/>',
        b"",
        b"\x00\xff",
    ],
)
def test_wrong_documents_refused(doc: bytes) -> None:
    with pytest.raises(StatementParseError):
        parse_camt(doc, name="x")


def test_one_bad_statement_fails_the_whole_file() -> None:
    # atomic: the first two statements are fine, the third has a broken amount
    bad = V08.replace(b'<Amt Ccy="CNH">18250000.00</Amt>', b'<Amt Ccy="CNH">18,250,000.00</Amt>')
    with pytest.raises(StatementParseError) as ei:
        parse_camt(bad, name="x.xml")
    assert "Stmt[3]" in str(ei.value)
