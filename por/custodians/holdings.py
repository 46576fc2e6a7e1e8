"""Securities holdings reported by the custodian (CSV or JSON) -> normalized Holdings.

Both formats carry the same fields per position (docs/custodians.md has the layout):

    statement_id, as_of (RFC 3339), custodian, account, asset_class, isin, issuer,
    issuer_type, currency, nominal, clean_price, market_value, maturity_date, start_date

- CSV: UTF-8 (a BOM is allowed), a header row with exactly these columns in any
  order; statement_id/as_of/custodian may differ per row. Empty cell = absent.
- JSON: `{"format":"holdings-json","custodian","statement_id","as_of","holdings":[{...}]}`
  with the per-position fields; amounts are decimal STRINGS (a JSON number is refused).

Amounts are exact decimals with up to 5 places; `clean_price` is percent of nominal
and kept as its exact text; an ISIN is required for securities and its ISO 6166 check
digit verified. `market_value` is what the custodian reports (it may include accrued
interest); when it is absent it is nominal x clean price / 100, rounded down.

No I/O here: the parsers take bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import date, datetime
from typing import Any

from por.custodians.model import (
    ASSET_CLASSES,
    ISSUER_TYPES,
    Holding,
    StatementParseError,
    account_key,
    check_currency,
    check_isin,
    currency_exponent,
    mask_account,
    parse_date,
    parse_minor,
    parse_rfc3339,
    rescale,
)

MAX_HOLDINGS_BYTES = 8 * 1024 * 1024
FIELDS = (
    "statement_id",
    "as_of",
    "custodian",
    "account",
    "asset_class",
    "isin",
    "issuer",
    "issuer_type",
    "currency",
    "nominal",
    "clean_price",
    "market_value",
    "maturity_date",
    "start_date",
)
_OPTIONAL = {"isin", "clean_price", "maturity_date", "start_date", "market_value"}
_PRICE_RE = re.compile(r"[0-9]{1,4}(\.[0-9]{1,8})?")


def _str(row: dict[str, Any], key: str, where: str) -> str | None:
    v = row.get(key)
    if v is None or v == "":
        if key in _OPTIONAL:
            return None
        raise StatementParseError(f"missing {key}", where=f"{where}:{key}")
    if not isinstance(v, str):
        raise StatementParseError(
            f"{key} must be a string (amounts are decimal strings), got {type(v).__name__}",
            where=f"{where}:{key}",
        )
    if len(v) > 200:
        raise StatementParseError(f"{key} is too long", where=f"{where}:{key}")
    return v.strip()


def _holding(row: dict[str, Any], *, where: str, fmt: str, sha: str, name: str) -> Holding:
    def req(key: str) -> str:
        v = _str(row, key, where)
        if v is None:  # only optional keys can be None
            raise StatementParseError(f"missing {key}", where=f"{where}:{key}")
        return v

    asset_class = req("asset_class")
    if asset_class not in ASSET_CLASSES or asset_class == "cash":
        raise StatementParseError(
            f"asset_class must be one of deposit, government_security, reverse_repo, other; "
            f"got {asset_class[:30]!r}",
            where=f"{where}:asset_class",
        )
    issuer_type = req("issuer_type")
    if issuer_type not in ISSUER_TYPES:
        raise StatementParseError(
            f"issuer_type must be one of {', '.join(ISSUER_TYPES)}; got {issuer_type[:30]!r}",
            where=f"{where}:issuer_type",
        )
    isin_text = _str(row, "isin", where)
    isin = None if isin_text is None else check_isin(isin_text, where=f"{where}:isin")
    if asset_class == "government_security" and isin is None:
        raise StatementParseError("a security needs its ISIN", where=f"{where}:isin")
    currency = check_currency(req("currency"), where=f"{where}:currency")
    nominal, n_dec = parse_minor(req("nominal"), where=f"{where}:nominal")
    price = _str(row, "clean_price", where)
    if price is not None and not _PRICE_RE.fullmatch(price):
        raise StatementParseError(
            f"clean_price must be a percentage like 99.875, got {price[:20]!r}",
            where=f"{where}:clean_price",
        )
    mv_text = _str(row, "market_value", where)
    if mv_text is not None:
        mv, m_dec = parse_minor(mv_text, where=f"{where}:market_value")
    elif price is not None:
        mv, m_dec = -1, 0  # computed below once decimals are known
    else:
        raise StatementParseError(
            "needs market_value or clean_price", where=f"{where}:market_value"
        )
    decimals = max(n_dec, m_dec, currency_exponent(currency))
    nominal = rescale(nominal, n_dec, decimals, where=f"{where}:nominal")
    if mv < 0:
        assert price is not None
        whole, _, frac = price.partition(".")
        # nominal x price% rounded down: a reported value is never rounded up
        mv = nominal * int(whole + frac) // (100 * 10 ** len(frac))
    else:
        mv = rescale(mv, m_dec, decimals, where=f"{where}:market_value")
    mat = _str(row, "maturity_date", where)
    start = _str(row, "start_date", where)
    maturity = None if mat is None else parse_date(mat, where=f"{where}:maturity_date")
    start_d: date | None = None if start is None else parse_date(start, where=f"{where}:start_date")
    if maturity is not None and start_d is not None and start_d > maturity:
        raise StatementParseError("start_date is after maturity_date", where=f"{where}:start_date")
    as_of: datetime = parse_rfc3339(req("as_of"), where=f"{where}:as_of")
    return Holding(
        custodian=req("custodian"),
        account=mask_account(req("account")),
        account_key=account_key(req("account")),
        asset_class=asset_class,
        isin=isin,
        issuer=req("issuer"),
        issuer_type=issuer_type,
        currency=currency,
        decimals=decimals,
        nominal=nominal,
        clean_price=price,
        market_value=mv,
        maturity_date=maturity,
        start_date=start_d,
        as_of=as_of,
        statement_id=req("statement_id"),
        format=fmt,
        sha256=sha,
        source=name,
    )


def _check_size(data: bytes, name: str) -> str:
    if len(data) > MAX_HOLDINGS_BYTES:
        raise StatementParseError(f"file is {len(data)} bytes; too large", where=name)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise StatementParseError(f"not UTF-8: {e.reason}", where=f"{name}:{line}") from e


def parse_holdings_csv(data: bytes, *, name: str) -> list[Holding]:
    """Parse a holdings CSV; the error names the file, line and column."""
    sha = hashlib.sha256(data).hexdigest()
    text = _check_size(data, name)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        header = reader.fieldnames
        if header is None or sorted(h.strip() for h in header) != sorted(FIELDS):
            raise StatementParseError(
                f"header must name exactly the columns {', '.join(FIELDS)}; got "
                f"{', '.join(header or [])[:300]}",
                where=f"{name}:1",
            )
        out = []
        for row in reader:
            where = f"{name}:{reader.line_num}"
            if None in row or any(v is None for v in row.values()):
                raise StatementParseError(
                    "row has a different number of cells than the header", where=where
                )
            clean = {k.strip(): v for k, v in row.items()}
            out.append(_holding(clean, where=where, fmt="holdings-csv", sha=sha, name=name))
    except csv.Error as e:
        raise StatementParseError(f"bad CSV: {e}", where=f"{name}:{reader.line_num}") from e
    if not out:
        raise StatementParseError("no holdings rows", where=name)
    return out


def parse_holdings_json(data: bytes, *, name: str) -> list[Holding]:
    """Parse a holdings JSON document; the error names the file and the JSON path."""
    sha = hashlib.sha256(data).hexdigest()
    text = _check_size(data, name)

    def no_float(t: str) -> Any:
        raise StatementParseError(
            f"amounts must be decimal strings, got number {t[:30]}", where=name
        )

    def no_const(t: str) -> Any:
        raise StatementParseError(f"{t} is not allowed", where=name)

    try:
        doc = json.loads(text, parse_float=no_float, parse_int=no_float, parse_constant=no_const)
    except json.JSONDecodeError as e:
        raise StatementParseError(f"bad JSON: {e.msg}", where=f"{name}:{e.lineno}:{e.colno}") from e
    except RecursionError as e:
        raise StatementParseError("JSON nested too deeply", where=name) from e
    if not isinstance(doc, dict) or doc.get("format") != "holdings-json":
        raise StatementParseError('must be an object with "format": "holdings-json"', where=name)
    items = doc.get("holdings")
    if not isinstance(items, list) or not items:
        raise StatementParseError('"holdings" must be a non-empty list', where=f"{name}:$.holdings")
    out = []
    for i, item in enumerate(items):
        where = f"{name}:$.holdings[{i}]"
        if not isinstance(item, dict):
            raise StatementParseError("must be an object", where=where)
        row = {k: doc.get(k) for k in ("custodian", "statement_id", "as_of")}
        row.update(item)
        out.append(_holding(row, where=where, fmt="holdings-json", sha=sha, name=name))
    return out


def detect_holdings(data: bytes) -> str | None:
    head = data[:4096].lstrip(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"{") and b"holdings-json" in head:
        return "holdings-json"
    first = head.split(b"\n", 1)[0]
    if b"statement_id" in first and b"isin" in first:
        return "holdings-csv"
    return None


__all__ = ["FIELDS", "detect_holdings", "parse_holdings_csv", "parse_holdings_json"]
