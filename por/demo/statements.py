"""The packaged sample statements of Harbour Trust Bank (Hong Kong) Limited, for `por demo`.

The files in por/demo/samples/ are dated 2025-06-30 (statement day). For a live
demo `sample_documents(day)` moves every date in them by the same number of days (also
the dates inside statement ids), so the statements are fresh, maturities keep their
distance, and the content stays a faithful copy of the committed files otherwise
(hashes change, of course); `scale` multiplies every balance and holding, so the demo's
reserves match the supply it minted (`por demo --holders`).

I/O: reads the packaged sample files only.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from pathlib import Path

SAMPLES_DIR = Path(__file__).parent / "samples"
SAMPLE_DAY = date(2025, 6, 30)
CUSTODIAN = "Harbour Trust Bank (Hong Kong) Limited"
# camt.052 repeats accounts of camt.053 (and MT940 too): the demo uses the end-of-day
# sources only; tests load them all to exercise the de-duplication.
DEMO_FILES = (
    "harbour_trust_camt053_v08.xml",
    "harbour_trust_camt053_v02.xml",
    "harbour_trust_holdings.csv",
    "harbour_trust_holdings.json",
)

_ISO_DATE = re.compile(rb"(?<![0-9])(20[0-9]{2})-([0-9]{2})-([0-9]{2})(?![0-9])")
# dates written without separators inside identifiers: HTBK-STMT-20250630-0001,
# HTBK20250630EOD000417 (a statement id dated unlike its as-of reads as an error)
_COMPACT_DATE = re.compile(
    rb"(?<![0-9])(20[0-9]{2})(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])(?![0-9])"
)
# amounts the demo scales: camt <Amt …>/<Sum>, holdings nominal and market_value
_XML_AMOUNT = re.compile(
    rb"(<(?:[A-Za-z0-9]+:)?(?:Amt|Sum)(?: Ccy=\"[A-Z]{3}\")?>)([0-9]+(?:\.[0-9]+)?)(</)"
)
_JSON_AMOUNT = re.compile(rb'("(?:nominal|market_value)": ")([0-9]+(?:\.[0-9]+)?)(")')
_MT_DATE = re.compile(rb"(?m)^(:6[02][FM]:[CD]|:64:[CD]|:65:[CD]|:61:)([0-9]{6})")


def _shift_iso(m: re.Match[bytes], delta: timedelta) -> bytes:
    d = date(int(m.group(1)), int(m.group(2)), int(m.group(3))) + delta
    return d.isoformat().encode()


def _shift_mt(m: re.Match[bytes], delta: timedelta) -> bytes:
    s = m.group(2).decode()
    d = date(2000 + int(s[:2]), int(s[2:4]), int(s[4:6])) + delta
    return m.group(1) + d.strftime("%y%m%d").encode()


def _shift_compact(m: re.Match[bytes], delta: timedelta) -> bytes:
    d = date(int(m.group(1)), int(m.group(2)), int(m.group(3))) + delta
    return d.strftime("%Y%m%d").encode()


def shift_dates(data: bytes, delta: timedelta) -> bytes:
    """Every ISO date, every YYYYMMDD date inside an identifier, and every MT940
    balance/entry date moved by `delta`, so ids and as-of dates keep agreeing."""
    data = _ISO_DATE.sub(lambda m: _shift_iso(m, delta), data)
    data = _COMPACT_DATE.sub(lambda m: _shift_compact(m, delta), data)
    return _MT_DATE.sub(lambda m: _shift_mt(m, delta), data)


def _scaled(text: bytes, factor: Fraction) -> bytes:
    """A decimal amount times `factor`, rounded down, with the same number of places."""
    whole, _, frac = text.decode().partition(".")
    places = len(frac)
    value = Fraction(int(whole + frac), 10**places) * factor
    minor = value.numerator * 10**places // value.denominator
    if not places:
        return str(minor).encode()
    return f"{minor // 10**places}.{str(minor % 10**places).rjust(places, '0')}".encode()


def scale_amounts(name: str, data: bytes, factor: Fraction) -> bytes:
    """Every balance and holding of a sample file times `factor` (prices stay): the demo
    sizes its custodian's reserves to the supply it minted."""
    if factor == 1:
        return data
    if name.endswith(".xml"):
        return _XML_AMOUNT.sub(
            lambda m: m.group(1) + _scaled(m.group(2), factor) + m.group(3), data
        )
    if name.endswith(".json"):
        return _JSON_AMOUNT.sub(
            lambda m: m.group(1) + _scaled(m.group(2), factor) + m.group(3), data
        )
    if name.endswith(".csv"):
        text = data.decode("utf-8")
        rows = list(csv.reader(io.StringIO(text)))
        header = rows[0]
        cols = [header.index(c) for c in ("nominal", "market_value")]
        for row in rows[1:]:
            for c in cols:
                if row[c]:
                    row[c] = _scaled(row[c].encode(), factor).decode()
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n" if "\r\n" in text else "\n").writerows(rows)
        return out.getvalue().encode("utf-8")
    raise ValueError(f"cannot scale the amounts of {name}")


def sample_documents(
    day: date | None = None,
    *,
    names: tuple[str, ...] = DEMO_FILES,
    scale: Fraction = Fraction(1),
) -> list[tuple[str, bytes]]:
    """(file name, bytes) of the sample files, dated `day` instead of 2025-06-30, every
    amount times `scale`."""
    delta = timedelta(0) if day is None else day - SAMPLE_DAY
    return [
        (n, scale_amounts(n, shift_dates((SAMPLES_DIR / n).read_bytes(), delta), scale))
        for n in names
    ]


def _amount(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def camt053(
    *,
    account: str,
    day: date,
    opening_minor: int,
    entries: list[tuple[str, int, str, str]],
    custodian: str = CUSTODIAN,
    currency: str = "CNH",
    statement_id: str | None = None,
    at: datetime | None = None,
) -> bytes:
    """A camt.053.001.08 end-of-day statement of one account for `day` (Hong Kong), with
    booked entries `(kind "credit"|"debit", amount in cents, remittance text, bank ref)`;
    the closing balance is the opening plus the entries. With `at`, a statement cut at
    that instant instead (balances and bookings dated `DtTm`), as banks send several a day.
    For the demo's and the tests' reconciled flows."""
    closing = opening_minor + sum(a if k == "credit" else -a for k, a, _, _ in entries)
    created = (day + timedelta(days=1)).isoformat() + "T06:15:02+08:00"
    when = f"<Dt>{day.isoformat()}</Dt>"
    if at is not None:
        created = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        when = f"<DtTm>{created}</DtTm>"
    sid = statement_id or f"HTBK-STMT-{day:%Y%m%d}-{account[-4:]}"

    def bal(code: str, minor: int) -> str:
        ind = "CRDT" if minor >= 0 else "DBIT"
        return (
            f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
            f'<Amt Ccy="{currency}">{_amount(abs(minor))}</Amt><CdtDbtInd>{ind}</CdtDbtInd>'
            f"<Dt>{when}</Dt></Bal>"
        )

    ntries = "".join(
        f'<Ntry><NtryRef>{ref}</NtryRef><Amt Ccy="{currency}">{_amount(a)}</Amt>'
        f"<CdtDbtInd>{'CRDT' if k == 'credit' else 'DBIT'}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>"
        f"<BookgDt>{when}</BookgDt><ValDt>{when}</ValDt>"
        f"<AcctSvcrRef>{ref}</AcctSvcrRef>"
        f"<NtryDtls><TxDtls><RmtInf><Ustrd>{text}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
        for k, a, text, ref in entries
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
        f"<BkToCstmrStmt><GrpHdr><MsgId>{sid}</MsgId><CreDtTm>{created}</CreDtTm></GrpHdr>"
        f"<Stmt><Id>{sid}</Id><CreDtTm>{created}</CreDtTm>"
        f"<Acct><Id><Othr><Id>{account}</Id></Othr></Id><Ccy>{currency}</Ccy>"
        f"<Svcr><FinInstnId><Nm>{custodian}</Nm></FinInstnId></Svcr></Acct>"
        f"{bal('OPBD', opening_minor)}{bal('CLBD', closing)}{bal('CLAV', closing)}"
        f"{ntries}</Stmt></BkToCstmrStmt></Document>\n"
    )
    return xml.encode()


__all__ = [
    "CUSTODIAN",
    "DEMO_FILES",
    "SAMPLES_DIR",
    "SAMPLE_DAY",
    "camt053",
    "sample_documents",
    "scale_amounts",
    "shift_dates",
]
