"""Booked entries of end-of-day statements, as the flow reconciliation reads them.

camt.053 `Ntry` (status BOOK): amount with `Ccy`, `CdtDbtInd`, `BookgDt` (`Dt` = that
whole local day, or `DtTm`), the bank's reference (`AcctSvcrRef`, else `NtryRef`), and
the references of its transaction details (`EndToEndId`, `InstrId`, `TxId`, creditor
reference, remittance lines). MT940 `:61:` (value date, optional entry date MMDD, C/D/RC/RD,
amount, type, the account owner's reference, `//` the bank's reference, supplementary
details) with the `:86:` that follows it. camt.052 intraday reports are not read: their
entries reappear, booked, in the end-of-day camt.053.

Each entry becomes a `por.core.flows.BankEntry` in TOKEN base units (an entry in another
currency than the token's is not a token flow and is left out; a scale that would lose a
digit is refused). Only accounts named in `accounts` (by `account_ref`, computed from
`account_key`: letters and digits of the number) are read when that set is given. The
reference tokens kept are those with a digit (docs/ledger.md): names never reach the
published match list.

No I/O: bytes in, entries out. Errors: `StatementParseError` naming the file and place,
only for what the statement parsers refuse anyway (the file is parsed by them first);
an `:61:` line that does not read is skipped here, as the statement already carries its
warning.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from por.core.flows import BankEntry, account_ref, entry_id, reference_tokens
from por.custodians.camt import (
    _NS_RE,
    _TAG_RE,
    HONG_KONG,
    _amount,
    _date,
    _Doc,
    _local_datetime,
    _Node,
    _parse_xml,
)
from por.custodians.model import StatementParseError, account_key, mask_account, quote
from por.custodians.mt940 import (
    _ENTRY_RE,
    DEFAULT_ENCODING,
    _balance,
    _FieldError,
    _split_fields,
    _yymmdd,
    decode_text,
    split_account,
)
from por.custodians.mt940 import (
    _amount as _mt_amount,
)

ENTRY_FORMATS = ("camt.053", "mt940")


def _to_token_units(value: int, decimals: int, token_decimals: int, where: str) -> int:
    if decimals <= token_decimals:
        up: int = 10 ** (token_decimals - decimals)
        return value * up
    factor: int = 10 ** (decimals - token_decimals)
    if value % factor:
        raise StatementParseError(
            f"entry amount {value} (in {decimals} decimals) has more digits than the token's "
            f"{token_decimals} decimals: refused, it cannot be compared exactly",
            where=where,
        )
    return value // factor


def _day_bounds(d: date, tz: tzinfo) -> tuple[datetime, datetime]:
    start = datetime.combine(d, time(0, 0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(d + timedelta(days=1), time(0, 0), tzinfo=tz).astimezone(UTC)
    return start, end - timedelta(seconds=1)


def _ignored(texts: Sequence[str | None], ignore: Sequence[str]) -> str | None:
    words = set(re.findall(r"[A-Z0-9]+", " ".join(t for t in texts if t).upper()))
    for w in ignore:
        if w.upper() in words:
            return w
    return None


def _entry(
    *,
    custodian: str,
    account: str,
    kind: str,
    amount: int,
    bank_reference: str | None,
    fallback: str,
    booked: tuple[datetime, datetime],
    references: tuple[str, ...],
    statement: str,
    ignored: str | None,
) -> BankEntry:
    """One booked entry of `account` (camt or MT940): its id from the bank's reference
    (else `fallback`, the entry's place in the statement), the account masked and keyed."""
    key = account_key(account)
    return BankEntry(
        id=entry_id(
            account_key=key,
            bank_reference=bank_reference,
            kind=kind,
            amount=amount,
            fallback=fallback,
        ),
        custodian=custodian,
        account=mask_account(account),
        account_ref=account_ref(key),
        kind=kind,
        booked_from=booked[0],
        booked_to=booked[1],
        amount=amount,
        references=references,
        statement=statement,
        ignored=ignored,
    )


def _wanted(account: str, accounts: Collection[str] | None) -> bool:
    """`accounts`: the `account_ref`s of the accounts to read (None: all of them)."""
    return accounts is None or account_ref(account_key(account)) in accounts


# --- camt.053 ---------------------------------------------------------------------------


def camt_entries(
    data: bytes,
    *,
    name: str,
    custodian: str,
    token_currency: str,
    token_decimals: int,
    local_tz: tzinfo = HONG_KONG,
    ignore: Sequence[str] = (),
    accounts: Collection[str] | None = None,
) -> list[BankEntry]:
    """The booked entries of a camt.053 file's statements (camt.052: none)."""
    sha = hashlib.sha256(data).hexdigest()
    root = _parse_xml(data, name)
    m = _TAG_RE.fullmatch(root.tag)
    nsm = _NS_RE.fullmatch(m.group(1)) if m else None
    if m is None or nsm is None:
        raise StatementParseError("not a camt document", where=f"{name}:/")
    if nsm.group(1) != "053":
        return []
    doc = _Doc(m.group(1), name)
    top = _Node(root, "/Document")
    body = doc.req(top, "BkToCstmrStmt")
    out: list[BankEntry] = []
    for st in doc.children(body, "Stmt"):
        acct_id = doc.req(doc.req(st, "Acct"), "Id")
        account = doc.opt_text(acct_id, "IBAN") or doc.opt_text(acct_id, "Othr", "Id")
        if account is None or not _wanted(account, accounts):
            continue
        for i, ntry in enumerate(doc.children(st, "Ntry")):
            e = _camt_entry(
                doc,
                ntry,
                i,
                sha=sha,
                account=account,
                custodian=custodian,
                token_currency=token_currency,
                token_decimals=token_decimals,
                tz=local_tz,
                ignore=ignore,
            )
            if e is not None:
                out.append(e)
    return out


def _all_texts(doc: _Doc, node: _Node, tags: Sequence[str]) -> list[str]:
    """Text of every descendant element named in `tags` (namespace-aware)."""
    out = []
    for tag in tags:
        for el in node.el.iter(f"{{{doc.ns}}}{tag}"):
            if el.text and el.text.strip():
                out.append(el.text.strip())
    return out


def _camt_entry(
    doc: _Doc,
    ntry: _Node,
    index: int,
    *,
    sha: str,
    account: str,
    custodian: str,
    token_currency: str,
    token_decimals: int,
    tz: tzinfo,
    ignore: Sequence[str],
) -> BankEntry | None:
    sts = doc.opt(ntry, "Sts")
    status = None
    if sts is not None:
        status = doc.opt_text(sts, "Cd") or (sts.el.text or "").strip()
    if status not in (None, "BOOK"):
        return None  # pending or information only: not a booked movement
    amt = doc.req(ntry, "Amt")
    if amt.el.get("Ccy", "") != token_currency:
        return None
    value, decimals = _amount(doc.text(amt), doc.where(amt))
    ind = doc.text(doc.req(ntry, "CdtDbtInd"))
    if ind not in ("CRDT", "DBIT"):
        raise StatementParseError(
            f"CdtDbtInd must be CRDT or DBIT, got {quote(ind)}", where=doc.where(ntry)
        )
    kind = "credit" if ind == "CRDT" else "debit"
    when = doc.opt(ntry, "BookgDt") or doc.opt(ntry, "ValDt")
    if when is None:
        raise StatementParseError("entry has no BookgDt (nor ValDt)", where=doc.where(ntry))
    dtm, d = doc.opt(when, "DtTm"), doc.opt(when, "Dt")
    if dtm is not None:
        start = end = _local_datetime(doc.text(dtm), tz, doc.where(dtm))
    elif d is not None:
        day, day_tz = _date(doc.text(d), doc.where(d))
        start, end = _day_bounds(day, day_tz or tz)
    else:
        raise StatementParseError("booking date needs Dt or DtTm", where=doc.where(when))
    bank_ref = doc.opt_text(ntry, "AcctSvcrRef") or doc.opt_text(ntry, "NtryRef")
    refs = _all_texts(
        doc,
        ntry,
        ("EndToEndId", "InstrId", "TxId", "PmtInfId", "MsgId", "Ref", "Ustrd", "AddtlTxInf"),
    )
    narrative = [*refs, *_all_texts(doc, ntry, ("AddtlNtryInf",))]
    amount = _to_token_units(value, decimals, token_decimals, doc.where(amt))
    return _entry(
        custodian=custodian,
        account=account,
        kind=kind,
        amount=amount,
        bank_reference=bank_ref,
        fallback=f"{sha}:{doc.where(ntry)}:{index}",
        booked=(start, end),
        references=reference_tokens(bank_ref, *refs),
        statement=sha,
        ignored=_ignored(narrative, ignore),
    )


# --- MT940 ------------------------------------------------------------------------------


def mt940_entries(
    data: bytes,
    *,
    name: str,
    custodian: str,
    token_currency: str,
    token_decimals: int,
    local_tz: tzinfo = HONG_KONG,
    encoding: str = DEFAULT_ENCODING,
    ignore: Sequence[str] = (),
    accounts: Collection[str] | None = None,
) -> list[BankEntry]:
    """The `:61:` entries (with their `:86:`) of every statement page of an MT940 file."""
    sha = hashlib.sha256(data).hexdigest()
    text = decode_text(data, name=name, encoding=encoding)
    out: list[BankEntry] = []
    for block in _split_fields(text, name, []):
        acct = next((f for f in block.fields if f.tag == "25"), None)
        closing = next((f for f in block.fields if f.tag in ("62F", "62M")), None)
        if acct is None or closing is None:
            continue  # the statement parser refuses such a statement anyway
        try:
            account, _ = split_account(acct.text.split("\n", 1)[0])
        except _FieldError:
            continue
        if not _wanted(account, accounts):
            continue
        currency = _balance(closing, name).currency
        if currency != token_currency:
            continue
        fields = block.fields
        for i, f in enumerate(fields):
            if f.tag != "61":
                continue
            info = fields[i + 1].text if i + 1 < len(fields) and fields[i + 1].tag == "86" else ""
            e = _mt_entry(
                f.text,
                f.line,
                info,
                sha=sha,
                name=name,
                account=account,
                custodian=custodian,
                token_decimals=token_decimals,
                tz=local_tz,
                ignore=ignore,
            )
            if e is not None:
                out.append(e)
    return out


def _mt_entry(
    text: str,
    line: int,
    info: str,
    *,
    sha: str,
    name: str,
    account: str,
    custodian: str,
    token_decimals: int,
    tz: tzinfo,
    ignore: Sequence[str],
) -> BankEntry | None:
    first, _, supplementary = text.partition("\n")
    m = _ENTRY_RE.fullmatch(first.rstrip())
    if m is None:
        return None  # the statement carries this line's warning
    try:
        value_date = _yymmdd(m.group("date"))
        value, decimals, _dot = _mt_amount(m.group("amount"))
    except _FieldError:
        return None
    booked = value_date
    if m.group("entry"):
        mm, dd = int(m.group("entry")[:2]), int(m.group("entry")[2:])
        try:
            booked = date(value_date.year, mm, dd)
            if (booked - value_date).days > 180:  # Jan value date, Dec entry date
                booked = date(value_date.year - 1, mm, dd)
            elif (value_date - booked).days > 180:
                booked = date(value_date.year + 1, mm, dd)
        except ValueError:
            booked = value_date
    kind = "credit" if m.group("mark") in ("C", "RD") else "debit"
    rest = m.group("rest")
    owner_ref, _, bank_ref = rest.partition("//")
    owner_ref = owner_ref.strip() or None
    bank_ref_s = bank_ref.strip()[:16] or None
    where = f"{name}:{line}"
    amount = _to_token_units(value, decimals, token_decimals, where)
    start, end = _day_bounds(booked, tz)
    owner = None if owner_ref in (None, "NONREF") else owner_ref
    return _entry(
        custodian=custodian,
        account=account,
        kind=kind,
        amount=amount,
        bank_reference=bank_ref_s,
        fallback=f"{sha}:{line}",
        booked=(start, end),
        references=reference_tokens(bank_ref_s, owner, supplementary, info),
        statement=sha,
        ignored=_ignored([supplementary, info, owner], ignore),
    )


def statement_entries(
    data: bytes,
    *,
    name: str,
    fmt: str,
    custodian: str,
    token_currency: str,
    token_decimals: int,
    local_tz: tzinfo = HONG_KONG,
    encoding: str = DEFAULT_ENCODING,
    ignore: Sequence[str] = (),
    accounts: Collection[str] | None = None,
) -> list[BankEntry]:
    """The entries of one raw statement in format `fmt` (camt.053.*, mt940); [] for the
    formats that carry none (camt.052, holdings, the custodian API's balances)."""
    if fmt.startswith("camt.053"):
        return camt_entries(
            data,
            name=name,
            custodian=custodian,
            token_currency=token_currency,
            token_decimals=token_decimals,
            local_tz=local_tz,
            ignore=ignore,
            accounts=accounts,
        )
    if fmt == "mt940":
        return mt940_entries(
            data,
            name=name,
            custodian=custodian,
            token_currency=token_currency,
            token_decimals=token_decimals,
            local_tz=local_tz,
            encoding=encoding,
            ignore=ignore,
            accounts=accounts,
        )
    return []


__all__ = [
    "ENTRY_FORMATS",
    "camt_entries",
    "detect_entries_format",
    "mt940_entries",
    "statement_entries",
]


def detect_entries_format(data: bytes) -> str | None:
    """The format `statement_entries` needs, from the first bytes (camt.053.*, mt940)."""
    from por.custodians.files import detect_format

    kind = detect_format(data)
    if kind == "camt":
        m = re.search(rb"camt\.05([23])\.001\.([0-9]{2})", data[:4096])
        return None if m is None else f"camt.05{m.group(1).decode()}.001.{m.group(2).decode()}"
    return kind if kind == "mt940" else None
