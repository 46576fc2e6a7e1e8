"""SWIFT MT940 customer statements -> normalized Statements, via the `mt-940` package.

What is read (SWIFT MT940 field definitions):

- one statement per `:20:` block (the package's parse_statements), optionally inside
  SWIFT FIN blocks `{1:..}{2:..}{4: ... -}`;
- `:25:` account identification, `:20:` reference and `:28C:` statement number
  (statement id = "<20>/<28C>");
- closing booked balance from `:62F:` (final) or, for a page of a multi-page
  statement, `:62M:` (intermediate); closing available from `:64:`;
- each balance is `1!a6!n3!a15d`: C/D mark, YYMMDD date, currency, amount with a
  decimal comma ("1234,56", "1234,"). The amount is converted exactly (no float);
- MT940 carries no time: as-of is the END of the balance date in the custodian's
  local time (Hong Kong by default).

The package is a foreign parser with its own exceptions (and some plain ValueError,
KeyError, decimal.InvalidOperation on odd input): every exception it raises is wrapped
once, here, into StatementParseError naming the file and line. It also reads a FILE
when handed a str that names one; we only ever hand it a StringIO, never a str.

No I/O here: parse_mt940 takes bytes.
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import mt940 as mt940_pkg

from por.custodians.camt import HONG_KONG
from por.custodians.model import (
    MAX_STATEMENT_DECIMALS,
    Statement,
    StatementParseError,
    account_key,
    check_currency,
    currency_exponent,
    mask_account,
    rescale,
)

MAX_MT940_BYTES = 8 * 1024 * 1024
_BLOCK20_RE = re.compile(r"(?m)^:20:")


def detect_mt940(data: bytes) -> bool:
    head = data[:4096]
    return b":20:" in head and (b":25:" in head or b"{4:" in head)


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _balance(raw: Any, *, tag: str, where: str) -> tuple[int, int, str, date]:
    """(signed minor units, decimals, currency, date) of an mt940 Balance, exactly."""
    status = getattr(raw, "status", None)
    amount = getattr(raw, "amount", None)
    value = getattr(amount, "amount", None)
    ccy = getattr(amount, "currency", None)
    day = getattr(raw, "date", None)
    if status not in ("C", "D"):
        raise StatementParseError(f":{tag}: mark must be C or D, got {status!r}", where=where)
    if not isinstance(value, Decimal) or not value.is_finite():
        raise StatementParseError(f":{tag}: amount is not a number", where=where)
    _sign, digits, exponent = abs(value).as_tuple()
    if not isinstance(exponent, int) or exponent > 0 or -exponent > MAX_STATEMENT_DECIMALS:
        raise StatementParseError(f":{tag}: amount {value} has an unusable scale", where=where)
    if len(digits) > 30:
        raise StatementParseError(f":{tag}: amount has too many digits", where=where)
    minor = int("".join(map(str, digits)) or "0")
    if not isinstance(day, date):
        raise StatementParseError(f":{tag}: no valid YYMMDD date", where=where)
    currency = check_currency(ccy if isinstance(ccy, str) else "", where=f"{where}:{tag}")
    return (
        (-minor if status == "D" else minor),
        -exponent,
        currency,
        date(day.year, day.month, day.day),
    )


def parse_mt940(
    data: bytes,
    *,
    name: str,
    custodian: str,
    local_tz: tzinfo = HONG_KONG,
) -> list[Statement]:
    """Parse an MT940 file (one or more statements) into Statements; all or nothing."""
    sha = hashlib.sha256(data).hexdigest()
    if len(data) > MAX_MT940_BYTES:
        raise StatementParseError(f"file is {len(data)} bytes; too large for MT940", where=name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        # SWIFT FIN is a subset of ASCII; real files are ASCII or UTF-8.
        line = data.count(b"\n", 0, e.start) + 1
        raise StatementParseError(
            f"not ASCII/UTF-8 text: {e.reason}", where=f"{name}:{line}"
        ) from e
    starts = [m.start() for m in _BLOCK20_RE.finditer(text)]
    if not starts:
        raise StatementParseError("no :20: field: not an MT940 statement", where=f"{name}:1")
    try:
        parsed = mt940_pkg.parse_statements(io.StringIO(text))
    except Exception as e:
        raise StatementParseError(
            f"MT940 parser failed: {type(e).__name__}: {str(e)[:200]}", where=f"{name}:1"
        ) from e
    if len(parsed) != len(starts):
        raise StatementParseError(
            f"found {len(starts)} :20: blocks but the parser produced {len(parsed)} statements",
            where=f"{name}:1",
        )
    out: list[Statement] = []
    for i, (st, pos) in enumerate(zip(parsed, starts, strict=True)):
        where = f"{name}:{_line_of(text, pos)}"
        out.append(
            _statement(
                st.data, where=where, name=name, sha=sha, custodian=custodian, tz=local_tz, index=i
            )
        )
    return out


def _statement(
    d: dict[str, Any], *, where: str, name: str, sha: str, custodian: str, tz: tzinfo, index: int
) -> Statement:
    ref = d.get("transaction_reference")
    account = d.get("account_identification")
    if not isinstance(ref, str) or not ref.strip():
        raise StatementParseError(f"statement {index + 1}: missing :20: reference", where=where)
    if not isinstance(account, str) or not account.strip():
        raise StatementParseError(f"statement {ref}: missing :25: account", where=where)
    number = d.get("statement_number")
    stmt_id = f"{ref.strip()}/{number}" if isinstance(number, str) and number else ref.strip()
    if "final_closing_balance" in d:
        tag, raw_booked = "62F", d["final_closing_balance"]
    elif "intermediate_closing_balance" in d:
        tag, raw_booked = "62M", d["intermediate_closing_balance"]
    else:
        raise StatementParseError(
            f"statement {stmt_id}: no closing booked balance (:62F: or :62M:)", where=where
        )
    booked, b_dec, ccy, day = _balance(raw_booked, tag=tag, where=where)
    avail: int | None = None
    a_dec = 0
    if "available_balance" in d:
        avail, a_dec, a_ccy, _ = _balance(d["available_balance"], tag="64", where=where)
        if a_ccy != ccy:
            raise StatementParseError(
                f"statement {stmt_id}: :64: currency {a_ccy} differs from :{tag}: {ccy}",
                where=where,
            )
    decimals = max(b_dec, a_dec, currency_exponent(ccy))
    as_of = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=tz).astimezone(UTC)
    # ":25:" is often "BIC/account"; only the account part is masked and kept.
    acct = account.strip().rsplit("/", 1)[-1].strip()
    if not acct:
        raise StatementParseError(f"statement {stmt_id}: empty :25: account", where=where)
    return Statement(
        custodian=custodian,
        account=mask_account(acct),
        account_key=account_key(acct),
        currency=ccy,
        decimals=decimals,
        closing_booked=rescale(booked, b_dec, decimals, where=where),
        closing_available=None if avail is None else rescale(avail, a_dec, decimals, where=where),
        as_of=as_of,
        statement_id=stmt_id,
        format="mt940",
        sha256=sha,
        balance_type=f"{tag}/64",
        source=name,
    )


__all__ = ["detect_mt940", "parse_mt940"]
