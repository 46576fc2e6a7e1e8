"""ISO 20022 camt.053 (statement) and camt.052 (account report) -> normalized Statements.

What is read (ISO 20022 message definitions, all 001.NN versions share these paths):

- root `Document` in namespace `urn:iso:std:iso:20022:tech:xsd:camt.05{2,3}.001.NN`
  (any prefix, e.g. `ns2:Document`; any version 01..99 — banks run 001.02 through
  001.08 side by side);
- camt.053 `BkToCstmrStmt/Stmt*`, camt.052 `BkToCstmrAcctRpt/Rpt*` (several per file,
  one account each);
- account `Acct/Id/IBAN` or `Acct/Id/Othr/Id`; currency `Acct/Ccy` or the balance's `Ccy`;
- balances `Bal` by `Tp/CdOrPrtry/Cd`: CLBD (closing booked) and CLAV (closing
  available). camt.052 intraday reports often carry no closing balance: there ITBD
  and ITAV (interim booked/available) are taken instead, and the statement's
  `balance_type` says so;
- sign from `CdtDbtInd` (CRDT +, DBIT -); amounts exact with 0..5 decimals;
- as-of from the booked balance's `Dt/DtTm` (a time without offset is local time of
  the custodian, Hong Kong by default) or `Dt/Dt` (the END of that local business day,
  but never later than the statement's `CreDtTm`);
- pagination `StmtPgntn`: a page with `LastPgInd` false and no closing balance is skipped.

Security: the bytes never reach an XML parser that could resolve entities, read a DTD
or fetch anything. Any `<!DOCTYPE`/`<!ENTITY` is refused before parsing, and parsing
goes through defusedxml with forbid_dtd, forbid_entities and forbid_external, so
billion-laughs, quadratic blowup and XXE files fail fast with UnsafeXmlError.

No I/O here: parse_camt takes bytes; reading files is the sources' job.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo

import defusedxml
import defusedxml.ElementTree as DET

from por.custodians.model import (
    MAX_STATEMENT_DECIMALS,
    Statement,
    StatementParseError,
    UnsafeXmlError,
    account_key,
    check_currency,
    currency_exponent,
    mask_account,
    quote,
    rescale,
)

HONG_KONG = timezone(timedelta(hours=8), "HKT")  # no DST in Hong Kong
MAX_XML_BYTES = 16 * 1024 * 1024
"""Real statements are kilobytes to a few megabytes; refuse more before parsing."""

_NS_RE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.(05[23])\.001\.([0-9]{2})")
_TAG_RE = re.compile(r"\{([^}]*)\}(.*)")
_DATE_RE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(Z|[+-][0-9]{2}:[0-9]{2})?")
# xs:decimal (XSD 1.0 §3.2.3), as ISO 20022 amounts are: no exponent, no thousands mark;
# ActiveOrHistoricCurrencyAndAmount: totalDigits 18, fractionDigits 5, minInclusive 0.
_XS_DECIMAL_RE = re.compile(r"([+-]?)(?:([0-9]+)(?:\.([0-9]*))?|\.([0-9]+))")
MAX_AMOUNT_DIGITS = 18
_DATETIME_RE = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_FORBIDDEN_MARKUP = (b"<!DOCTYPE", b"<!ENTITY", b"<!doctype", b"<!entity")


@dataclass(frozen=True, slots=True)
class _Node:
    """An element with the path that led to it, for error messages."""

    el: ET.Element
    path: str


class _Doc:
    def __init__(self, ns: str, name: str) -> None:
        self.ns = ns
        self.name = name

    def where(self, node: _Node | str) -> str:
        return f"{self.name}:{node.path if isinstance(node, _Node) else node}"

    def children(self, node: _Node, tag: str) -> list[_Node]:
        found = node.el.findall(f"{{{self.ns}}}{tag}")
        if len(found) == 1:
            return [_Node(found[0], f"{node.path}/{tag}")]
        return [_Node(e, f"{node.path}/{tag}[{i}]") for i, e in enumerate(found, 1)]

    def opt(self, node: _Node, tag: str) -> _Node | None:
        found = self.children(node, tag)
        if len(found) > 1:
            raise StatementParseError(f"{tag} occurs {len(found)} times", where=self.where(node))
        return found[0] if found else None

    def req(self, node: _Node, tag: str) -> _Node:
        found = self.opt(node, tag)
        if found is None:
            raise StatementParseError(f"missing element {tag}", where=self.where(node))
        return found

    def text(self, node: _Node) -> str:
        t = (node.el.text or "").strip()
        if not t:
            raise StatementParseError("empty element", where=self.where(node))
        return t

    def opt_text(self, node: _Node, *tags: str) -> str | None:
        cur: _Node | None = node
        for t in tags:
            if cur is None:
                return None
            cur = self.opt(cur, t)
        return None if cur is None else self.text(cur)


def _reject_unsafe(data: bytes, name: str) -> None:
    # A statement has no business declaring a DTD; refusing it up front means no
    # parser ever sees entity definitions (billion laughs, quadratic blowup, XXE).
    for marker in _FORBIDDEN_MARKUP:
        pos = data.find(marker)
        if pos >= 0:
            line = data.count(b"\n", 0, pos) + 1
            raise UnsafeXmlError(
                f"XML with {marker.decode()} is refused (DTDs and entities are never processed)",
                where=f"{name}:{line}",
            )


def _parse_xml(data: bytes, name: str) -> ET.Element:
    if len(data) > MAX_XML_BYTES:
        raise StatementParseError(
            f"file is {len(data)} bytes; statements above {MAX_XML_BYTES} bytes are refused",
            where=name,
        )
    _reject_unsafe(data, name)
    try:
        root: ET.Element = DET.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except defusedxml.DefusedXmlException as e:  # DTD/entity/external (e.g. in UTF-16 input)
        raise UnsafeXmlError(f"unsafe XML refused: {e}", where=name) from e
    except ET.ParseError as e:
        line, col = getattr(e, "position", (0, 0))
        raise StatementParseError(f"not well-formed XML: {e}", where=f"{name}:{line}:{col}") from e
    except (ValueError, UnicodeError, LookupError, RecursionError) as e:
        # expat raises these for unknown encodings, bad bytes or absurd nesting
        raise StatementParseError(f"cannot parse XML: {type(e).__name__}: {e}", where=name) from e
    return root


def _local_datetime(text: str, tz: tzinfo, where: str) -> datetime:
    m = _DATETIME_RE.fullmatch(text)
    if not m:
        raise StatementParseError(f"not an ISO date-time: {quote(text)}", where=where)
    try:
        t = datetime.fromisoformat(m.group(1) + (m.group(3) or ""))
    except ValueError as e:
        raise StatementParseError(f"not a valid date-time: {quote(text)}", where=where) from e
    if t.tzinfo is None:  # ISODateTime without offset is the sender's local time
        t = t.replace(tzinfo=tz)
    return t.astimezone(UTC)


def _date(text: str, where: str) -> tuple[date, tzinfo | None]:
    """An xs:date: `2017-04-01`, or with its time zone `2017-04-01+02:00` / `...Z`."""
    m = _DATE_RE.fullmatch(text)
    if not m:
        raise StatementParseError(f"not an ISO date: {quote(text)}", where=where)
    try:
        day = date.fromisoformat(m.group(1))
        zone = m.group(2)
        tz = None if zone is None else datetime.fromisoformat(f"2000-01-01T00:00:00{zone}").tzinfo
    except ValueError as e:
        raise StatementParseError(f"not a valid date: {quote(text)}", where=where) from e
    return day, tz


def _amount(text: str, where: str) -> tuple[int, int]:
    """(minor units, decimals written) of an ISO 20022 amount matching xs:decimal ENTIRELY."""
    m = _XS_DECIMAL_RE.fullmatch(text)
    if m is None:
        raise StatementParseError(
            f"amount {quote(text)} is not a decimal number (digits, optional '.' and decimals)",
            where=where,
        )
    sign, whole, frac, only_frac = m.groups()
    whole = whole or "0"
    frac = frac if only_frac is None else only_frac
    frac = frac or ""
    if sign == "-" and int(whole + frac) != 0:
        raise StatementParseError(
            f"amount {quote(text)} is negative; a balance's sign is its CdtDbtInd", where=where
        )
    if len(frac) > MAX_STATEMENT_DECIMALS:
        raise StatementParseError(
            f"amount {quote(text)} has {len(frac)} decimals; ISO 20022 amounts have at most "
            f"{MAX_STATEMENT_DECIMALS} decimals",
            where=where,
        )
    if len(whole.lstrip("0")) + len(frac) > MAX_AMOUNT_DIGITS:
        raise StatementParseError(
            f"amount {quote(text)} has more than {MAX_AMOUNT_DIGITS} digits", where=where
        )
    return int(whole + frac), len(frac)


def _end_of_day(d: date, tz: tzinfo) -> datetime:
    return datetime.combine(d + timedelta(days=1), time(0, 0), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class _Balance:
    code: str
    amount: int
    decimals: int
    currency: str
    as_of: datetime | None  # None: date only
    day: date | None
    day_tz: tzinfo | None  # the xs:date's own time zone, if it has one
    where: str


def _balance(doc: _Doc, bal: _Node, tz: tzinfo) -> _Balance | None:
    tp = doc.req(bal, "Tp")
    code = doc.opt_text(tp, "CdOrPrtry", "Cd")
    if code is None:
        return None  # proprietary balance type: not one we use
    amt = doc.req(bal, "Amt")
    ccy = check_currency(amt.el.get("Ccy", ""), where=doc.where(amt) + "@Ccy")
    value, decimals = _amount(doc.text(amt), doc.where(amt))
    ind = doc.text(doc.req(bal, "CdtDbtInd"))
    if ind not in ("CRDT", "DBIT"):
        raise StatementParseError(
            f"CdtDbtInd must be CRDT or DBIT, got {quote(ind)}", where=doc.where(bal) + "/CdtDbtInd"
        )
    dt = doc.req(bal, "Dt")
    dtm = doc.opt(dt, "DtTm")
    d = doc.opt(dt, "Dt")
    if (dtm is None) == (d is None):
        raise StatementParseError("Dt must hold exactly one of Dt or DtTm", where=doc.where(dt))
    day, day_tz = (None, None) if d is None else _date(doc.text(d), doc.where(d))
    return _Balance(
        code=code,
        amount=-value if ind == "DBIT" else value,
        decimals=decimals,
        currency=ccy,
        as_of=None if dtm is None else _local_datetime(doc.text(dtm), tz, doc.where(dtm)),
        day=day,
        day_tz=day_tz,
        where=doc.where(bal),
    )


def detect_camt(data: bytes) -> bool:
    """Cheap sniff used by sources: does this look like a camt document?"""
    head = data[:4096]
    return b"camt.05" in head and b"<" in head


def parse_camt(
    data: bytes,
    *,
    name: str,
    custodian: str | None = None,
    local_tz: tzinfo = HONG_KONG,
) -> list[Statement]:
    """Parse one camt.053/camt.052 file into one Statement per Stmt/Rpt.

    `custodian` overrides the servicer named in the file (Svcr/FinInstnId/Nm or BIC).
    Raises StatementParseError (UnsafeXmlError for DTD/entity tricks) naming the file
    and the element path; never returns a partial result.
    """
    sha = hashlib.sha256(data).hexdigest()
    root = _parse_xml(data, name)
    m = _TAG_RE.fullmatch(root.tag)
    if not m or m.group(2) != "Document" or not _NS_RE.fullmatch(m.group(1)):
        raise StatementParseError(
            f"root element must be a camt.052/camt.053 Document, got {root.tag[:120]!r}",
            where=f"{name}:/",
        )
    ns = m.group(1)
    nsm = _NS_RE.fullmatch(ns)
    assert nsm is not None
    kind, version = nsm.group(1), nsm.group(2)
    fmt = f"camt.{kind}.001.{version}"
    doc = _Doc(ns, name)
    top = _Node(root, "/Document")
    container, item = ("BkToCstmrStmt", "Stmt") if kind == "053" else ("BkToCstmrAcctRpt", "Rpt")
    body = doc.req(top, container)
    grp_created = doc.opt_text(body, "GrpHdr", "CreDtTm")
    items = doc.children(body, item)
    if not items:
        raise StatementParseError(f"no {item} element", where=doc.where(body))
    out: list[Statement] = []
    for st in items:
        parsed = _statement(
            doc, st, fmt=fmt, sha=sha, custodian=custodian, tz=local_tz, grp_created=grp_created
        )
        if parsed is not None:
            out.append(parsed)
    if not out:
        raise StatementParseError("no statement with a closing balance", where=doc.where(body))
    return out


def _statement(  # noqa: PLR0912 - each branch is one rule of the camt layout
    doc: _Doc,
    st: _Node,
    *,
    fmt: str,
    sha: str,
    custodian: str | None,
    tz: tzinfo,
    grp_created: str | None,
) -> Statement | None:
    stmt_id = doc.text(doc.req(st, "Id"))
    balances: dict[str, _Balance] = {}
    every: list[_Balance] = []
    for bal_node in doc.children(st, "Bal"):
        b = _balance(doc, bal_node, tz)
        if b is None:
            continue
        if b.code in balances and b.code in ("CLBD", "CLAV", "ITBD", "ITAV"):
            raise StatementParseError(
                f"balance {b.code} occurs twice (also at {balances[b.code].where}): refused, "
                "which one holds is ambiguous",
                where=b.where,
            )
        balances[b.code] = b
        every.append(b)
    booked, avail, btype = balances.get("CLBD"), balances.get("CLAV"), "CLBD/CLAV"
    if booked is None and fmt.startswith("camt.052"):
        # Intraday reports (camt.052) usually carry interim balances only.
        booked, avail, btype = balances.get("ITBD"), balances.get("ITAV"), "ITBD/ITAV"
    if booked is None:
        pg = doc.opt(st, "StmtPgntn")
        if pg is not None and doc.opt_text(pg, "LastPgInd") in ("false", "0"):
            return None  # an earlier page of a paginated statement: balances are on the last
        want = "CLBD (or ITBD)" if fmt.startswith("camt.052") else "CLBD"
        raise StatementParseError(f"no closing booked balance {want}", where=doc.where(st))
    acct = doc.req(st, "Acct")
    acct_id = doc.req(acct, "Id")
    account = doc.opt_text(acct_id, "IBAN") or doc.opt_text(acct_id, "Othr", "Id")
    if account is None:
        raise StatementParseError("account needs Id/IBAN or Id/Othr/Id", where=doc.where(acct_id))
    acct_ccy = doc.opt_text(acct, "Ccy")
    if acct_ccy is not None:
        check_currency(acct_ccy, where=doc.where(acct) + "/Ccy")
    svcr = doc.opt(acct, "Svcr")
    bank = None
    if svcr is not None:
        fin = doc.opt(svcr, "FinInstnId")
        if fin is not None:
            bank = doc.opt_text(fin, "Nm") or doc.opt_text(fin, "BICFI") or doc.opt_text(fin, "BIC")
    name = custodian or bank
    if not name:
        raise StatementParseError(
            "no custodian: the file names no servicer (Acct/Svcr) and none is configured",
            where=doc.where(acct),
        )
    ccy = acct_ccy or booked.currency
    # every balance of one account statement is in its currency: a second currency means
    # the figures cannot be bound to one account balance (refused, as in MT940)
    for b in every:
        if b.currency != ccy:
            raise StatementParseError(
                f"{b.code} balance currency {b.currency} differs from the statement's "
                f"currency {ccy}",
                where=b.where + "/Amt",
            )
    decimals = max(booked.decimals, avail.decimals if avail else 0, currency_exponent(ccy))
    created_txt = doc.opt_text(st, "CreDtTm") or grp_created
    created = (
        None
        if created_txt is None
        else _local_datetime(created_txt, tz, doc.where(st) + "/CreDtTm")
    )
    if booked.as_of is not None:
        as_of = booked.as_of
    else:
        assert booked.day is not None
        # a date with its own zone ("2017-04-01+02:00", Raiffeisen CH) ends in that zone
        as_of = _end_of_day(booked.day, booked.day_tz or tz)
        if created is not None and created < as_of:
            as_of = created
    return Statement(
        custodian=name,
        account=mask_account(account),
        account_key=account_key(account),
        currency=ccy,
        decimals=decimals,
        closing_booked=rescale(booked.amount, booked.decimals, decimals, where=booked.where),
        closing_available=None
        if avail is None
        else rescale(avail.amount, avail.decimals, decimals, where=avail.where),
        as_of=as_of,
        statement_id=stmt_id,
        format=fmt,
        sha256=sha,
        balance_type=btype,
        source=doc.name,
    )


__all__ = ["HONG_KONG", "MAX_XML_BYTES", "detect_camt", "parse_camt"]
