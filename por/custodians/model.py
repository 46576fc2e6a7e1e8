"""The normalized custodian data model: statements, securities holdings, and their parse error.

Every parser (camt.053/052, MT940, the signed JSON API, holdings CSV/JSON) turns its raw
bytes into these frozen values. Money is signed integer minor units together with the
number of decimals they are in (a statement may carry 0..5 decimals whatever the
currency's ISO 4217 exponent says); the raw file is referenced by its SHA-256. Accounts
are masked here, once, so that no full account number leaves a parser.

No I/O here: no file, network or clock access. Helpers parse exact decimal strings
(never through float) and validate ISINs (ISO 6166 check digit).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from por.core.times import format_time
from por.errors import FormatError

STATEMENT_FORMATS = (
    "camt.053.001.02",
    "camt.053.001.08",
    "camt.052.001.02",
    "camt.052.001.08",
    "mt940",
    "custodian-api-v1",
    "holdings-csv",
    "holdings-json",
)
"""Formats named in tests and docs; camt accepts any 001.NN version (see camt.py)."""

ASSET_CLASSES = ("cash", "deposit", "government_security", "reverse_repo", "other")
ISSUER_TYPES = ("government", "central_bank", "supranational", "bank", "corporate", "other")

MAX_STATEMENT_DECIMALS = 5  # ISO 20022 ActiveOrHistoricCurrencyAndAmount: fractionDigits 5


class StatementParseError(FormatError):
    """A statement, report or holdings file that cannot be used; `where` names the place.

    This is the ONE error the parsers let escape on bad input (the fuzz tests pin it).
    `where` is `file:line` or `file:/Document/BkToCstmrStmt/Stmt[2]/Bal[1]/Amt`.
    """


class UnsafeXmlError(StatementParseError):
    """XML that tries to use a DTD, entities or external references (XXE, billion laughs)."""


MAX_QUOTE_CHARS = 120
MAX_WARNINGS = 20
"""Warnings kept per statement; more are counted in one last line ("... and N more")."""


def quote(text: str) -> str:
    """The offending text for a message: repr() so control characters show; long text is
    cut at MAX_QUOTE_CHARS with its full length said (a message, never a figure)."""
    if len(text) <= MAX_QUOTE_CHARS:
        return repr(text)
    return f"{text[:MAX_QUOTE_CHARS]!r}... ({len(text)} characters)"


def cap_warnings(warnings: list[str]) -> tuple[str, ...]:
    """At most MAX_WARNINGS lines; the last says how many more there were."""
    if len(warnings) <= MAX_WARNINGS:
        return tuple(warnings)
    more = len(warnings) - (MAX_WARNINGS - 1)
    return (*warnings[: MAX_WARNINGS - 1], f"... and {more} more warnings")


_SIGNED_DECIMAL_RE = re.compile(r"(-?)([0-9]{1,30})(?:\.([0-9]{0,5}))?")
_CURRENCY_RE = re.compile(r"[A-Z]{3}")
_ISIN_RE = re.compile(r"[A-Z]{2}[A-Z0-9]{9}[0-9]")


# ISO 4217 minor-unit exponents that are not 2 (the common case); enough for statements.
_EXPONENTS = {
    "JPY": 0,
    "KRW": 0,
    "VND": 0,
    "CLP": 0,
    "ISK": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
}


def currency_exponent(code: str) -> int:
    """ISO 4217 minor-unit exponent (2 unless listed)."""
    return _EXPONENTS.get(code, 2)


def parse_minor(text: object, *, where: str, allow_sign: bool = False) -> tuple[int, int]:
    """Exact decimal text -> (integer minor units, decimals written): "1234.50" -> (123450, 2).

    Up to 5 fraction digits (ISO 20022 amounts); never through float, never rounded.
    """
    if not isinstance(text, str):
        raise StatementParseError(f"amount must be text, got {type(text).__name__}", where=where)
    m = _SIGNED_DECIMAL_RE.fullmatch(text.strip())
    if not m or (m.group(1) and not allow_sign):
        raise StatementParseError(
            f"amount must be digits with up to {MAX_STATEMENT_DECIMALS} decimals, "
            f"got {text[:40]!r}",
            where=where,
        )
    sign = -1 if m.group(1) else 1
    frac = m.group(3) or ""
    return sign * int(m.group(2) + frac), len(frac)


def rescale(value: int, from_decimals: int, to_decimals: int, *, where: str) -> int:
    """Exactly re-express minor units with more decimals (never fewer: that would lose digits)."""
    if to_decimals < from_decimals:
        raise StatementParseError(
            f"cannot express {value} (in {from_decimals} decimals) in {to_decimals} decimals",
            where=where,
        )
    factor: int = 10 ** (to_decimals - from_decimals)  # int ** negative would be a float
    return value * factor


def check_currency(code: str, *, where: str) -> str:
    if not isinstance(code, str) or not _CURRENCY_RE.fullmatch(code):
        raise StatementParseError(
            f"currency must be 3 upper-case letters, got {code!r}", where=where
        )
    return code


def isin_check_digit_ok(isin: str) -> bool:
    """ISO 6166: letters -> 10..35, then the Luhn check over the digit string."""
    if not _ISIN_RE.fullmatch(isin):
        return False
    digits = "".join(str(int(c, 36)) for c in isin)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def check_isin(isin: str, *, where: str) -> str:
    if not isinstance(isin, str) or not isin_check_digit_ok(isin):
        raise StatementParseError(
            f"not a valid ISIN (ISO 6166 format and check digit): {str(isin)[:20]!r}", where=where
        )
    return isin


def mask_account(account: str) -> str:
    """Keep the last 4 characters (and an IBAN's country code); star the rest.

    "HK12HTBK00012345671234" -> "HK****************1234". Short ids are fully starred
    except the last character, so a mask never equals the original.
    """
    a = "".join(account.split())
    if len(a) <= 4:
        return "*" * (len(a) - 1) + a[-1:]
    keep_head = 2 if re.match(r"[A-Z]{2}[0-9]{2}", a) else 0
    return a[:keep_head] + "*" * (len(a) - keep_head - 4) + a[-4:]


def account_key(account: str) -> str:
    """A stable key to recognise one account across formats without keeping its number.

    camt may write "8870-310-1004471" where MT940 writes "HTBKHKHH/88703101004471":
    only letters and digits count, upper-cased. 16 hex chars of SHA-256: enough to tell
    accounts apart, and never published (the attestation carries the masked id only).
    """
    norm = "".join(ch for ch in account.upper() if ch.isascii() and ch.isalnum())
    return hashlib.sha256(norm.encode()).hexdigest()[:16]


def parse_rfc3339(text: object, *, where: str) -> datetime:
    if not isinstance(text, str) or not re.fullmatch(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})",
        text,
    ):
        raise StatementParseError(
            f"must be an RFC 3339 time with offset, got {text!r}", where=where
        )
    try:
        # whole seconds only (the attestation's spelling); drop any fraction first
        t = datetime.fromisoformat(re.sub(r"\.[0-9]+", "", text, count=1))
    except ValueError as e:
        raise StatementParseError(f"not a valid time: {text!r} ({e})", where=where) from e
    return t.astimezone(UTC)


def parse_date(text: object, *, where: str) -> date:
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        raise StatementParseError(f"must be a date YYYY-MM-DD, got {text!r}", where=where)
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise StatementParseError(f"not a valid date: {text!r}", where=where) from e


def _req(d: dict[str, Any], key: str, where: str) -> Any:
    if not isinstance(d, dict):
        raise FormatError(f"must be an object, got {type(d).__name__}", where=where)
    if key not in d:
        raise FormatError(f"missing field {key!r}", where=where)
    return d[key]


def _int_opt(d: dict[str, Any], key: str, where: str) -> int | None:
    return None if d.get(key) is None else _int_req(d, key, where)


def _int_req(d: dict[str, Any], key: str, where: str) -> int:
    v = _req(d, key, where)
    if not isinstance(v, str) or not re.fullmatch(r"-?(0|[1-9][0-9]{0,45})", v):
        raise FormatError(
            f"{key} must be a decimal string of integer units, got {v!r}", where=where
        )
    return int(v)


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """One account's balances as a custodian reported them at one time.

    `closing_booked` / `closing_available` are SIGNED minor units in `decimals` places
    (a debit balance is negative). `balance_type` says which balance codes they came
    from ("CLBD/CLAV" normally; "ITBD/ITAV" for an intraday camt.052 report).
    """

    custodian: str
    account: str  # masked, see mask_account
    currency: str
    decimals: int
    closing_booked: int
    closing_available: int | None
    as_of: datetime  # UTC
    statement_id: str
    format: str
    sha256: str  # of the raw file the statement came from
    balance_type: str = "CLBD/CLAV"
    source: str = ""  # file name or endpoint, for messages
    account_key: str = ""  # see account_key(); recognises one account across formats
    warnings: tuple[str, ...] = ()  # defects in fields that feed no figure ("line 12: ...")

    def __post_init__(self) -> None:
        if self.as_of.tzinfo is None:
            raise FormatError("as_of must be timezone-aware", where="Statement.as_of")
        if not 0 <= self.decimals <= MAX_STATEMENT_DECIMALS:
            raise FormatError(f"decimals must be 0..5, got {self.decimals}", where="Statement")

    def to_dict(self) -> dict[str, Any]:
        return {
            "custodian": self.custodian,
            "account": self.account,
            "currency": self.currency,
            "decimals": self.decimals,
            "closing_booked": str(self.closing_booked),
            "closing_available": None
            if self.closing_available is None
            else str(self.closing_available),
            "as_of": format_time(self.as_of),
            "statement_id": self.statement_id,
            "format": self.format,
            "sha256": self.sha256,
            "balance_type": self.balance_type,
            "source": self.source,
            "account_key": self.account_key,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "statement") -> Statement:
        decimals = _req(d, "decimals", where)
        if isinstance(decimals, bool) or not isinstance(decimals, int):
            raise FormatError("decimals must be an integer", where=where)
        return cls(
            custodian=str(_req(d, "custodian", where)),
            account=str(_req(d, "account", where)),
            currency=check_currency(_req(d, "currency", where), where=where),
            decimals=decimals,
            closing_booked=_int_req(d, "closing_booked", where),
            closing_available=_int_opt(d, "closing_available", where),
            as_of=parse_rfc3339(_req(d, "as_of", where), where=f"{where}.as_of"),
            statement_id=str(_req(d, "statement_id", where)),
            format=str(_req(d, "format", where)),
            sha256=str(_req(d, "sha256", where)),
            balance_type=str(d.get("balance_type", "CLBD/CLAV")),
            source=str(d.get("source", "")),
            account_key=str(d.get("account_key", "")),
            warnings=tuple(str(w) for w in d.get("warnings") or ()),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Holding:
    """One position held for the issuer: a security, a term deposit or a reverse repo.

    `nominal` and `market_value` are minor units in `decimals` places of `currency`;
    `clean_price` is the exact decimal text of the price in percent of nominal ("99.875").
    For a reverse repo `issuer_type` is that of the collateral's issuer; for a deposit,
    `issuer` is the deposit-taking bank and `start_date` its value date (term = maturity
    minus start).
    """

    custodian: str
    account: str  # masked
    asset_class: str
    isin: str | None
    issuer: str
    issuer_type: str
    currency: str
    decimals: int
    nominal: int
    clean_price: str | None
    market_value: int
    maturity_date: date | None
    start_date: date | None
    as_of: datetime  # UTC
    statement_id: str
    format: str
    sha256: str
    source: str = ""
    account_key: str = ""

    def __post_init__(self) -> None:
        if self.asset_class not in ASSET_CLASSES:
            raise FormatError(f"unknown asset class {self.asset_class!r}", where="Holding")
        if self.issuer_type not in ISSUER_TYPES:
            raise FormatError(f"unknown issuer type {self.issuer_type!r}", where="Holding")
        if self.as_of.tzinfo is None:
            raise FormatError("as_of must be timezone-aware", where="Holding.as_of")

    def to_dict(self) -> dict[str, Any]:
        return {
            "custodian": self.custodian,
            "account": self.account,
            "asset_class": self.asset_class,
            "isin": self.isin,
            "issuer": self.issuer,
            "issuer_type": self.issuer_type,
            "currency": self.currency,
            "decimals": self.decimals,
            "nominal": str(self.nominal),
            "clean_price": self.clean_price,
            "market_value": str(self.market_value),
            "maturity_date": None if self.maturity_date is None else self.maturity_date.isoformat(),
            "start_date": None if self.start_date is None else self.start_date.isoformat(),
            "as_of": format_time(self.as_of),
            "statement_id": self.statement_id,
            "format": self.format,
            "sha256": self.sha256,
            "source": self.source,
            "account_key": self.account_key,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "holding") -> Holding:
        mat = d.get("maturity_date")
        start = d.get("start_date")
        decimals = _req(d, "decimals", where)
        if isinstance(decimals, bool) or not isinstance(decimals, int):
            raise FormatError("decimals must be an integer", where=where)
        return cls(
            custodian=str(_req(d, "custodian", where)),
            account=str(_req(d, "account", where)),
            asset_class=str(_req(d, "asset_class", where)),
            isin=None if d.get("isin") is None else check_isin(d["isin"], where=where),
            issuer=str(_req(d, "issuer", where)),
            issuer_type=str(_req(d, "issuer_type", where)),
            currency=check_currency(_req(d, "currency", where), where=where),
            decimals=decimals,
            nominal=_int_req(d, "nominal", where),
            clean_price=d.get("clean_price"),
            market_value=_int_req(d, "market_value", where),
            maturity_date=None if mat is None else parse_date(mat, where=where),
            start_date=None if start is None else parse_date(start, where=where),
            as_of=parse_rfc3339(_req(d, "as_of", where), where=f"{where}.as_of"),
            statement_id=str(_req(d, "statement_id", where)),
            format=str(_req(d, "format", where)),
            sha256=str(_req(d, "sha256", where)),
            source=str(d.get("source", "")),
            account_key=str(d.get("account_key", "")),
        )


__all__ = [
    "ASSET_CLASSES",
    "ISSUER_TYPES",
    "STATEMENT_FORMATS",
    "Holding",
    "Statement",
    "StatementParseError",
    "UnsafeXmlError",
    "account_key",
    "cap_warnings",
    "check_currency",
    "check_isin",
    "currency_exponent",
    "isin_check_digit_ok",
    "mask_account",
    "parse_date",
    "parse_minor",
    "parse_rfc3339",
    "quote",
    "rescale",
]
