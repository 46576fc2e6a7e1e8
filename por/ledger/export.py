"""Ledger exports of off-chain liabilities: `por-ledger-v1` as JSON or CSV, parsed strictly.

An issuer owes more than the tokens on the chains it reads: redemptions whose tokens are
gone but whose cash is not yet paid, subscriptions paid in but not yet minted, balances
frozen or blacklisted and taken off their chain (HKMA: they stay in circulation for
backing), and supply on chains por does not read yet. Its books export those as accounts
`ledger:<issuer>:<id>`, each with a balance and a category (docs/ledger.md §1):

JSON (`por-ledger-json-v1`):

    {"format": "por-ledger-v1", "issuer": "kdm", "ledger_id": "L-20250630-1",
     "as_of": "2025-06-30T16:00:00Z", "currency": "CNH",
     "accounts": [{"account": "ledger:kdm:R-1001", "category": "pending_redemption",
                   "balance": "1000.00", "evidence": null}, ...],
     "totals": {"pending_redemption": "1000.00", "pending_subscription": "0",
                "frozen": "0", "other_chain_supply": "0", "all": "1000.00"}}

CSV (`por-ledger-csv-v1`): a header `ledger_id,as_of,issuer,currency,account,category,
balance,evidence`, one row per account, and rows whose account is `total` declaring the
sum of a category (or of `all`); `evidence` is `key=value;key=value` or empty.

An export is accepted whole or refused whole, naming the file and line (JSON: the line
where the offending account object starts, and its `$.accounts[i]` path): it must add up
(every category's declared total, and `all`), every account appears once, balances are
non-negative decimals of the token's currency with at most the token's decimals, every
category is known, every account is `ledger:<issuer>:<id>` of the export's own issuer,
and `other_chain_supply` accounts carry their evidence (`chain_id`, `token`, `block`,
`block_hash`).

No I/O: bytes in, a `LedgerExport` out (or `LedgerParseError`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from por.core.amounts import format_base_units, parse_decimal
from por.core.attestation import LEDGER_CATEGORIES
from por.errors import AmountError, FormatError

FORMAT = "por-ledger-v1"
FORMAT_JSON = "por-ledger-json-v1"
FORMAT_CSV = "por-ledger-csv-v1"
CSV_FIELDS = (
    "ledger_id",
    "as_of",
    "issuer",
    "currency",
    "account",
    "category",
    "balance",
    "evidence",
)
MAX_LEDGER_BYTES = 64 * 1024 * 1024
OTHER_CHAIN_EVIDENCE = ("chain_id", "token", "block", "block_hash")
_ISSUER_RE = re.compile(r"[-_a-zA-Z0-9]{1,32}")
_ID_RE = re.compile(r"[-.%a-zA-Z0-9]{1,128}")
_CAIP2_RE = re.compile(r"[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}")
_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
_EV_KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")


class LedgerParseError(FormatError):
    """A ledger export refused whole; `where` names the file and line."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerAccount:
    """One off-chain liability: a `ledger:<issuer>:<id>` leaf of the sum tree."""

    account: str
    category: str
    balance: int  # token base units
    evidence: tuple[tuple[str, str], ...] = ()  # sorted (key, value)
    line: int = 0  # where it was read (for messages)


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerExport:
    """One parsed export. `sha256` is of the exact bytes (kept in the raw store)."""

    issuer: str
    ledger_id: str
    as_of: datetime  # UTC
    currency: str
    accounts: tuple[LedgerAccount, ...]
    format: str  # FORMAT_JSON or FORMAT_CSV (or the API's)
    sha256: str
    name: str  # file name or URL

    @property
    def total(self) -> int:
        return sum(a.balance for a in self.accounts)

    def by_category(self) -> dict[str, int]:
        out = dict.fromkeys(LEDGER_CATEGORIES, 0)
        for a in self.accounts:
            out[a.category] += a.balance
        return out

    def to_dict(self) -> dict[str, Any]:
        """The parsed export (stored beside the raw bytes, for attestations as of a past
        time); balances in base units."""
        return {
            "issuer": self.issuer,
            "ledger_id": self.ledger_id,
            "as_of": self.as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "currency": self.currency,
            "format": self.format,
            "sha256": self.sha256,
            "name": self.name,
            "accounts": [
                {
                    "account": a.account,
                    "category": a.category,
                    "balance": format_base_units(a.balance),
                    "evidence": dict(a.evidence),
                }
                for a in self.accounts
            ],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LedgerExport:
        from por.core.amounts import parse_base_units
        from por.core.times import parse_time

        return cls(
            issuer=d["issuer"],
            ledger_id=d["ledger_id"],
            as_of=parse_time(d["as_of"], where="ledger.as_of"),
            currency=d["currency"],
            format=d["format"],
            sha256=d["sha256"],
            name=d["name"],
            accounts=tuple(
                LedgerAccount(
                    account=a["account"],
                    category=a["category"],
                    balance=parse_base_units(a["balance"], where="ledger.balance"),
                    evidence=tuple(sorted(a["evidence"].items())),
                )
                for a in d["accounts"]
            ),
        )


# --- shared checks -------------------------------------------------------------------------


def _time(text: object, where: str) -> datetime:
    if not isinstance(text, str) or not _TIME_RE.fullmatch(text):
        raise LedgerParseError(
            f"as_of must be an RFC 3339 time with offset, got {text!r}", where=where
        )
    from datetime import UTC

    t = datetime.fromisoformat(re.sub(r"\.[0-9]+", "", text).replace("Z", "+00:00"))
    return t.astimezone(UTC)


def _balance(text: object, decimals: int, where: str) -> int:
    if isinstance(text, str) and text.strip().startswith("-"):
        raise LedgerParseError(
            f"negative balance {text!r}: a liability is never negative", where=where
        )
    if not isinstance(text, str):
        raise LedgerParseError(
            f"balance must be a decimal string (never a JSON number), got {text!r}", where=where
        )
    try:
        return parse_decimal(text, decimals, where=where)
    except AmountError as e:
        raise LedgerParseError(e.message, where=where) from None


class _Builder:
    """Collects accounts and declared totals, then checks the whole export."""

    def __init__(self, *, name: str, issuer: str, decimals: int) -> None:
        self.name = name
        self.issuer = issuer
        self.decimals = decimals
        self.accounts: list[LedgerAccount] = []
        self.seen: dict[str, int] = {}
        self.totals: dict[str, tuple[int, int]] = {}  # category or "all" -> (amount, line)

    def where(self, line: int, path: str = "") -> str:
        return f"{self.name}:{line}" + (f" ({path})" if path else "")

    def account(
        self,
        *,
        account: object,
        category: object,
        balance: object,
        evidence: Mapping[str, str],
        line: int,
        path: str = "",
    ) -> None:
        where = self.where(line, path)
        if not isinstance(account, str):
            raise LedgerParseError(f"account must be a string, got {account!r}", where=where)
        parts = account.split(":")
        if (
            len(parts) != 3
            or parts[0] != "ledger"
            or not _ISSUER_RE.fullmatch(parts[1])
            or not _ID_RE.fullmatch(parts[2])
        ):
            raise LedgerParseError(
                f"account {account!r} is not ledger:<issuer>:<id> (CAIP-10 characters)",
                where=where,
            )
        if parts[1] != self.issuer:
            raise LedgerParseError(
                f"account {account!r} belongs to issuer {parts[1]!r}, the export is "
                f"{self.issuer!r}'s",
                where=where,
            )
        if account in self.seen:
            raise LedgerParseError(
                f"duplicate account {account!r} (first on line {self.seen[account]})",
                where=where,
            )
        if category not in LEDGER_CATEGORIES:
            raise LedgerParseError(
                f"unknown category {category!r} (known: {', '.join(LEDGER_CATEGORIES)})",
                where=where,
            )
        amount = _balance(balance, self.decimals, where)
        if category == "other_chain_supply":
            missing = [k for k in OTHER_CHAIN_EVIDENCE if not evidence.get(k)]
            if missing:
                raise LedgerParseError(
                    f"other_chain_supply account {account!r} needs its evidence: "
                    f"{', '.join(missing)} missing",
                    where=where,
                )
            if not _CAIP2_RE.fullmatch(evidence["chain_id"]):
                raise LedgerParseError(
                    f"evidence chain_id {evidence['chain_id']!r} is not a CAIP-2 id", where=where
                )
        for k, v in evidence.items():
            if not _EV_KEY_RE.fullmatch(k) or not isinstance(v, str) or not 0 < len(v) <= 256:
                raise LedgerParseError(
                    f"evidence {k!r}: keys are lower-case words, values non-empty strings "
                    "of at most 256 characters",
                    where=where,
                )
        self.seen[account] = line
        self.accounts.append(
            LedgerAccount(
                account=account,
                category=category,
                balance=amount,
                evidence=tuple(sorted(evidence.items())),
                line=line,
            )
        )

    def total(self, *, category: object, amount: object, line: int, path: str = "") -> None:
        where = self.where(line, path)
        if category != "all" and category not in LEDGER_CATEGORIES:
            raise LedgerParseError(
                f"total of unknown category {category!r} (known: "
                f"{', '.join(LEDGER_CATEGORIES)}, all)",
                where=where,
            )
        assert isinstance(category, str)
        if category in self.totals:
            raise LedgerParseError(
                f"total of {category} declared twice (first on line {self.totals[category][1]})",
                where=where,
            )
        self.totals[category] = (_balance(amount, self.decimals, where), line)

    def check(self) -> tuple[LedgerAccount, ...]:
        sums = dict.fromkeys(LEDGER_CATEGORIES, 0)
        for a in self.accounts:
            sums[a.category] += a.balance
        if "all" not in self.totals:
            raise LedgerParseError(
                "the export declares no total of all accounts (`all`)", where=self.name
            )
        for category, (declared, line) in self.totals.items():
            computed = sum(sums.values()) if category == "all" else sums[category]
            if declared != computed:
                raise LedgerParseError(
                    f"does not add up: declared total of {category} is "
                    f"{format_base_units(declared)} base units, the accounts add up to "
                    f"{format_base_units(computed)}",
                    where=self.where(line),
                )
        undeclared = [c for c in LEDGER_CATEGORIES if sums[c] and c not in self.totals]
        if undeclared:
            raise LedgerParseError(
                f"no declared total for category {', '.join(undeclared)} (every category "
                "with accounts needs one)",
                where=self.name,
            )
        return tuple(self.accounts)


def _header(
    *, name: str, issuer: object, ledger_id: object, currency: object, where: str
) -> tuple[str, str, str]:
    if not isinstance(issuer, str) or not _ISSUER_RE.fullmatch(issuer):
        raise LedgerParseError(f"issuer must be a short id, got {issuer!r}", where=where)
    if not isinstance(ledger_id, str) or not 0 < len(ledger_id) <= 128:
        raise LedgerParseError(
            f"ledger_id must be a non-empty string, got {ledger_id!r}", where=where
        )
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise LedgerParseError(f"currency must be an ISO 4217 code, got {currency!r}", where=where)
    return issuer, ledger_id, currency


def _check_issuer(
    issuer: str, currency: str, *, expected_issuer: str | None, token_currency: str, where: str
) -> None:
    if expected_issuer is not None and issuer != expected_issuer:
        raise LedgerParseError(
            f"export of issuer {issuer!r}, this source is configured for {expected_issuer!r}",
            where=where,
        )
    if currency != token_currency:
        raise LedgerParseError(
            f"export in {currency}, the token is in {token_currency}", where=where
        )


# --- JSON ----------------------------------------------------------------------------------


def _array_lines(text: str, key: str) -> list[int]:
    """1-based line of each element of the top-level object's array `key` (the document
    already parsed, so this walk cannot fail on valid JSON)."""
    dec = json.JSONDecoder()
    ws = re.compile(r"[ \t\n\r]*")
    i = ws.match(text, 0).end()  # type: ignore[union-attr]
    if text[i : i + 1] != "{":
        return []
    i += 1
    while True:
        i = ws.match(text, i).end()  # type: ignore[union-attr]
        if text[i : i + 1] == "}":
            return []
        k, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
        i = ws.match(text, i).end() + 1  # type: ignore[union-attr]  # the ':'
        i = ws.match(text, i).end()  # type: ignore[union-attr]
        if k == key and text[i : i + 1] == "[":
            lines: list[int] = []
            i += 1
            while True:
                i = ws.match(text, i).end()  # type: ignore[union-attr]
                if text[i : i + 1] == "]":
                    return lines
                lines.append(text.count("\n", 0, i) + 1)
                _, i = dec.raw_decode(text, i)
                i = ws.match(text, i).end()  # type: ignore[union-attr]
                if text[i : i + 1] == ",":
                    i += 1
        _, i = dec.raw_decode(text, i)
        i = ws.match(text, i).end()  # type: ignore[union-attr]
        if text[i : i + 1] == ",":
            i += 1


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def parse_ledger_json(
    data: bytes,
    *,
    name: str,
    token_decimals: int,
    token_currency: str,
    issuer: str | None = None,
    fmt: str = FORMAT_JSON,
) -> LedgerExport:
    """A `por-ledger-v1` JSON export, checked whole (module docstring)."""
    if len(data) > MAX_LEDGER_BYTES:
        raise LedgerParseError(f"export of {len(data)} bytes is too large", where=name)
    try:
        text = data.decode("utf-8-sig")
        doc = json.loads(
            text,
            object_pairs_hook=_no_duplicate_keys,
            parse_float=lambda t: _number(t, name),
            parse_int=lambda t: _number(t, name),
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        if isinstance(e, LedgerParseError):
            raise
        line = getattr(e, "lineno", None)
        raise LedgerParseError(f"not JSON: {e}", where=f"{name}:{line}" if line else name) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise LedgerParseError(f'must be an object with "format": "{FORMAT}"', where=f"{name}:1")
    unknown = sorted(
        set(doc)
        - {
            "format",
            "issuer",
            "ledger_id",
            "as_of",
            "currency",
            "accounts",
            "totals",
            "nonce",
            "timestamp",
        }
    )
    if unknown:
        raise LedgerParseError(f"unknown field(s) {', '.join(unknown)}", where=f"{name}:1")
    iss, ledger_id, currency = _header(
        name=name,
        issuer=doc.get("issuer"),
        ledger_id=doc.get("ledger_id"),
        currency=doc.get("currency"),
        where=f"{name}:1",
    )
    _check_issuer(
        iss, currency, expected_issuer=issuer, token_currency=token_currency, where=f"{name}:1"
    )
    as_of = _time(doc.get("as_of"), f"{name}:1 ($.as_of)")
    accounts = doc.get("accounts")
    if not isinstance(accounts, list):
        raise LedgerParseError('"accounts" must be a list', where=f"{name}:1")
    lines = _array_lines(text, "accounts")
    b = _Builder(name=name, issuer=iss, decimals=token_decimals)
    for i, a in enumerate(accounts):
        line = lines[i] if i < len(lines) else 0
        path = f"$.accounts[{i}]"
        if not isinstance(a, dict):
            raise LedgerParseError("must be an object", where=b.where(line, path))
        extra = sorted(set(a) - {"account", "category", "balance", "evidence"})
        if extra:
            raise LedgerParseError(
                f"unknown field(s) {', '.join(extra)}", where=b.where(line, path)
            )
        ev = a.get("evidence")
        if ev is not None and not isinstance(ev, dict):
            raise LedgerParseError("evidence must be an object or null", where=b.where(line, path))
        b.account(
            account=a.get("account"),
            category=a.get("category"),
            balance=a.get("balance"),
            evidence=ev or {},
            line=line,
            path=path,
        )
    totals = doc.get("totals")
    if not isinstance(totals, dict):
        raise LedgerParseError('"totals" must be an object', where=f"{name}:1")
    totals_line = text.count("\n", 0, max(0, text.find('"totals"'))) + 1
    for category, amount in totals.items():
        b.total(category=category, amount=amount, line=totals_line, path=f"$.totals.{category}")
    return LedgerExport(
        issuer=iss,
        ledger_id=ledger_id,
        as_of=as_of,
        currency=currency,
        accounts=b.check(),
        format=fmt,
        sha256=hashlib.sha256(data).hexdigest(),
        name=name,
    )


def _number(text: str, name: str) -> Any:
    raise LedgerParseError(
        f"amounts are decimal strings; a JSON number {text[:30]} is refused", where=name
    )


# --- CSV -----------------------------------------------------------------------------------


def _evidence_cell(text: str, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if not text.strip():
        return out
    for part in text.split(";"):
        k, sep, v = part.partition("=")
        k, v = k.strip(), v.strip()
        if not sep or not k:
            raise LedgerParseError(f"evidence {text!r} is not key=value;key=value", where=where)
        if k in out:
            raise LedgerParseError(f"evidence key {k!r} given twice", where=where)
        out[k] = v
    return out


def parse_ledger_csv(  # noqa: PLR0912 - one refusal per branch
    data: bytes,
    *,
    name: str,
    token_decimals: int,
    token_currency: str,
    issuer: str | None = None,
) -> LedgerExport:
    """A `por-ledger-v1` CSV export, checked whole (module docstring)."""
    if len(data) > MAX_LEDGER_BYTES:
        raise LedgerParseError(f"export of {len(data)} bytes is too large", where=name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise LedgerParseError(f"not UTF-8: {e.reason}", where=f"{name}:{line}") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        rows = list(reader)
    except csv.Error as e:
        raise LedgerParseError(f"not CSV: {e}", where=f"{name}:{reader.line_num}") from None
    if not rows:
        raise LedgerParseError("empty export", where=f"{name}:1")
    header = [h.strip() for h in rows[0]]
    if sorted(header) != sorted(CSV_FIELDS) or len(header) != len(CSV_FIELDS):
        raise LedgerParseError(
            f"header must name exactly the columns {', '.join(CSV_FIELDS)}", where=f"{name}:1"
        )
    ident: tuple[str, str, str, str] | None = None
    b: _Builder | None = None
    as_of: datetime | None = None
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        where = f"{name}:{n}"
        if len(row) != len(header):
            raise LedgerParseError(
                f"row has {len(row)} cells, the header {len(header)}", where=where
            )
        r = dict(zip(header, (c.strip() for c in row), strict=True))
        this = (r["ledger_id"], r["as_of"], r["issuer"], r["currency"])
        if ident is None:
            iss, _ledger_id, currency = _header(
                name=name,
                issuer=r["issuer"],
                ledger_id=r["ledger_id"],
                currency=r["currency"],
                where=where,
            )
            _check_issuer(
                iss, currency, expected_issuer=issuer, token_currency=token_currency, where=where
            )
            as_of = _time(r["as_of"], where)
            ident = this
            b = _Builder(name=name, issuer=iss, decimals=token_decimals)
        elif this != ident:
            raise LedgerParseError(
                "ledger_id, as_of, issuer and currency must be the same on every row "
                f"(row 2 has {ident}, this row {this})",
                where=where,
            )
        assert b is not None
        if r["account"] == "total":
            if r["evidence"]:
                raise LedgerParseError("a total row has no evidence", where=where)
            b.total(category=r["category"], amount=r["balance"], line=n)
            continue
        b.account(
            account=r["account"],
            category=r["category"],
            balance=r["balance"],
            evidence=_evidence_cell(r["evidence"], where),
            line=n,
        )
    if ident is None or b is None or as_of is None:
        raise LedgerParseError("export has a header but no rows", where=f"{name}:1")
    return LedgerExport(
        issuer=ident[2],
        ledger_id=ident[0],
        as_of=as_of,
        currency=ident[3],
        accounts=b.check(),
        format=FORMAT_CSV,
        sha256=hashlib.sha256(data).hexdigest(),
        name=name,
    )


def detect_ledger(data: bytes) -> str | None:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{"):
        return FORMAT_JSON
    first = head.split(b"\n", 1)[0]
    if b"ledger_id" in first and b"category" in first:
        return FORMAT_CSV
    return None


def parse_ledger(
    data: bytes,
    *,
    name: str,
    token_decimals: int,
    token_currency: str,
    issuer: str | None = None,
) -> LedgerExport:
    """JSON or CSV by the file's first bytes."""
    kind = detect_ledger(data)
    if kind == FORMAT_JSON:
        return parse_ledger_json(
            data,
            name=name,
            token_decimals=token_decimals,
            token_currency=token_currency,
            issuer=issuer,
        )
    if kind == FORMAT_CSV:
        return parse_ledger_csv(
            data,
            name=name,
            token_decimals=token_decimals,
            token_currency=token_currency,
            issuer=issuer,
        )
    raise LedgerParseError(
        "not a ledger export (a JSON object or a CSV with the por-ledger-v1 header)",
        where=f"{name}:1",
    )


__all__ = [
    "CSV_FIELDS",
    "FORMAT",
    "FORMAT_CSV",
    "FORMAT_JSON",
    "OTHER_CHAIN_EVIDENCE",
    "LedgerAccount",
    "LedgerExport",
    "LedgerParseError",
    "detect_ledger",
    "parse_ledger",
    "parse_ledger_csv",
    "parse_ledger_json",
]
