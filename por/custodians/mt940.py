"""SWIFT MT940 customer statements -> normalized Statements, read by our own grammar.

Why our own reader (it replaced the `mt-940` package): a proof of reserve needs every
figure exact or refused. That package matched balance amounts by a PREFIX (a Rabobank
`482.41` became 482.00, `1234,56XYZ` became 1234.56), bound a balance to the LAST of two
`:25:` fields, refused whole files for a malformed field por never reads (an over-long
`:61:` reference, a blank `:28C:`), and printed its regex debug output on stdout. The
layer below is small enough to own: lines -> fields -> statements, and a full-match
grammar for each field that produces a figure.

Layout (SWIFT MT940; what banks really send is in docs/custodians.md):

- A file holds one or more statements, bare or each inside SWIFT FIN blocks
  `{1:..}{2:..}{3:..}{4:` ... `-}` (optionally `{5:..}`). A field starts at the beginning
  of a line with `:TAG:` (`20`, `25`, `28C`, `60F` ...); any other line continues the
  field above it. A statement starts at each `:20:`.
- FIGURE FIELDS, each read by a full-match grammar and refused (StatementParseError
  naming file, line and the offending text) if they do not match entirely:
  `:25:` account (exactly one), `:60F:`/`:60M:` opening (at most one), `:62F:`/`:62M:`
  closing booked (exactly one), `:64:` closing available (at most one), `:65:` forward
  available (checked; not used). A balance is `1!a6!n3!a15d`: mark C/D, YYMMDD,
  ISO currency, amount. The currency of every balance (and of `:25:` when it carries
  one) must be the same.
- Amounts: digits, a decimal mark, 0..5 decimals. SWIFT's mark is the comma. A `.` is
  read as the decimal mark too (legacy Rabobank files write `000000000482.41`): exactly,
  never truncated, with a warning on the statement - but never when exactly three digits
  follow it (`1.234` may be a thousands separator: refused), and never mixed with a comma
  (`1.234,56`: refused). An amount with no mark at all is refused (implied decimals cannot
  be told apart from whole units).
- OTHER FIELDS (`:20:`, `:28C:`, `:61:`, `:86:`, `:21:`, `:NS:`, anything unknown) feed
  no figure: a defect there becomes a warning on the statement naming the line; the
  statement is still used. `:61:` entries are checked by their own grammar and, when all
  read, must add up from the opening to the closing balance (else a warning).
- Statement id: `<:20:>/<:28C:>`. As-of: MT940 has no time; it is the END of the closing
  balance's date in the custodian's local time (Hong Kong by default). YY < 80 is 20YY.
- Pages: a statement closed by `:62M:` (intermediate) and followed in the same file by a
  later page of the same account and statement number is not a closing balance; it is
  dropped, as camt drops non-last pages.
- Text: the bytes are decoded with the source's configured `encoding` (UTF-8 by
  default, a BOM allowed); an undecodable byte is refused naming its offset and line
  and the `encoding` setting to use (cp852, cp1250, iso-8859-2 ...).

No I/O here: parse_mt940 takes bytes. Nothing is printed.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from por.custodians.camt import HONG_KONG
from por.custodians.model import (
    MAX_STATEMENT_DECIMALS,
    Statement,
    StatementParseError,
    account_key,
    cap_warnings,
    currency_exponent,
    mask_account,
    quote,
    rescale,
)

MAX_MT940_BYTES = 8 * 1024 * 1024
DEFAULT_ENCODING = "utf-8"

_LINE_SPLIT = re.compile(r"\r\n|\r|\n")
_TAG_RE = re.compile(r":([0-9]{2}[A-Z]?|NS):")
_HEADER_RE = re.compile(r"\s*\{[1-5]:")
_END_RE = re.compile(r"\s*-\s*(\}.*)?")
_TRAILER_RE = re.compile(r"\s*\}(\{5:.*)?\s*")  # a "}" closing block 4 on its own line
_BALANCE_RE = re.compile(r"([CD])([0-9]{6})([A-Z]{3})(.*)")
_AMOUNT_COMMA_RE = re.compile(r"([0-9]+),([0-9]*)")
_AMOUNT_DOT_RE = re.compile(r"([0-9]+)\.([0-9]*)")
_MAX_AMOUNT_DIGITS = 30
_STMT_NO_RE = re.compile(r"([0-9]{1,5})(?:/([0-9]{1,5}))?")
# :61: 6!n[4!n]2a[1!a]15d1!a3!c16x[//16x][34x] - the amount is cut where the 3-letter
# transaction type starts (N/S/F + 3), as the standard defines it.
_ENTRY_RE = re.compile(
    r"(?P<date>[0-9]{6})(?P<entry>[0-9]{4})?(?P<mark>R?[CD])(?P<funds>[A-Z])?"
    r"(?P<amount>[0-9][0-9,.]*)(?P<type>[NSF][A-Z0-9]{3})(?P<rest>.*)",
    re.S,
)
_BIC_RE = re.compile(r"[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")
_CCY_RE = re.compile(r"[A-Z]{3}")
_IBAN_RE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_KNOWN_TAGS = frozenset(
    {"20", "21", "25", "28", "28C", "60F", "60M", "61", "86", "62F", "62M", "64", "65", "NS"}
)
_IGNORED_PREAMBLE = frozenset({":940:"})  # Rabobank's file header line
_FRAMING = "\x01\x03"  # SOH/ETX around each message in SWIFT FIN files
# ISO 13616 IBAN length per country (SWIFT IBAN registry): tells "NL77INGB0574908765EUR"
# (an 18-character Dutch IBAN + EUR) from Alpha Bank's 24-character Romanian IBAN
# "RO87BUCU1052235283028RON", without trusting test files' check digits.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


@dataclass(slots=True)
class _Field:
    tag: str
    text: str  # the lines joined with "\n", set once the field is complete
    line: int
    continued: bool = False  # has non-blank continuation lines
    parts: list[str] = field(default_factory=list)  # lines while reading (no quadratic +=)


@dataclass(slots=True)
class _Block:
    """The fields of one statement (from its :20: to the next :20: or end of message)."""

    line: int
    fields: list[_Field] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Balance:
    tag: str
    amount: int  # signed minor units
    decimals: int
    currency: str
    day: date
    line: int
    dot: bool  # written with a '.' decimal mark


class _FieldError(Exception):
    """Internal: what is wrong with one field's text; the caller adds file and line."""


def detect_mt940(data: bytes) -> bool:
    head = data[:4096]
    return b":20:" in head and (b":25:" in head or b"{4:" in head)


def check_encoding(encoding: str, *, where: str) -> str:
    """The codec name for a configured `encoding`; a clear error for an unknown one."""
    try:
        info = codecs.lookup(encoding)
    except LookupError as e:
        raise StatementParseError(
            f"unknown encoding {encoding!r} (use e.g. utf-8, cp852, cp1250, iso-8859-1, "
            "iso-8859-2, iso-8859-15)",
            where=where,
        ) from e
    return info.name


def decode_text(data: bytes, *, name: str, encoding: str = DEFAULT_ENCODING) -> str:
    """Bytes -> text with the source's encoding; refuse naming the first undecodable byte."""
    codec = check_encoding(encoding, where=name)
    if codec == "utf-8":
        codec = "utf-8-sig"  # a UTF-8 byte-order mark is allowed and dropped
    try:
        return data.decode(codec)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        bad = data[e.start : e.start + 1].hex()
        raise StatementParseError(
            f"byte 0x{bad} at offset {e.start} cannot be decoded as {encoding} ({e.reason}); "
            "set `encoding` for this custodian source to the file's code page "
            "(e.g. cp852, cp1250, iso-8859-2, iso-8859-15)",
            where=f"{name}:{line}",
        ) from e


def _next_content(lines: Sequence[str], i: int) -> str | None:
    for s in lines[i:]:
        if s.strip():
            return s
    return None


def _split_fields(  # noqa: PLR0912 - one branch per kind of line
    text: str, name: str, warnings: list[str]
) -> list[_Block]:
    """Lines -> fields -> one block per statement. Refuses only structure that would move
    a field from one statement to another; notes anything else skipped as a warning."""
    lines = _LINE_SPLIT.split(text)
    blocks: list[_Block] = []
    cur: _Field | None = None
    block: _Block | None = None
    for i, raw in enumerate(lines):
        lineno = i + 1
        s = raw.strip(_FRAMING)
        if _HEADER_RE.match(s):
            k = s.find("{4:")
            cur, block = None, None  # a new message begins
            if k < 0:
                continue  # {1:}{2:}{3:} header, or a {5:} trailer on its own line
            s = s[k + 3 :]
            if not s.strip():
                continue
        stripped = s.strip()
        if _END_RE.fullmatch(s):
            nxt = _next_content(lines, i + 1)
            # "-" ends a message when what follows is a new message, a :20: or nothing;
            # otherwise it is text inside a field (seen in ING :86: narratives).
            if (
                s.strip().startswith("-}")
                or nxt is None
                or nxt.strip(_FRAMING + " \t").startswith(("{", "}", ":20:"))
            ):
                cur, block = None, None
                continue
        m = _TAG_RE.match(s)
        if m:
            tag = m.group(1)
            if tag == "20":
                block = _Block(line=lineno)
                blocks.append(block)
            elif block is None:
                raise StatementParseError(
                    f"field :{tag}: outside a statement (no :20: before it in this message)",
                    where=f"{name}:{lineno}",
                )
            cur = _Field(tag=tag, text="", line=lineno, parts=[s[m.end() :]])
            block.fields.append(cur)
            continue
        if cur is None:
            if stripped and stripped not in _IGNORED_PREAMBLE and not _TRAILER_RE.fullmatch(s):
                warnings.append(f"line {lineno}: text outside any field ignored: {quote(stripped)}")
            continue
        cur.parts.append(s)
        if stripped:
            cur.continued = True
    for b in blocks:
        for f in b.fields:
            f.text, f.parts = "\n".join(f.parts), []
    return blocks


# ---------------------------------------------------------------- field grammars


def _amount(text: str) -> tuple[int, int, bool]:
    """(minor units, decimals, '.' used) of an MT940 amount that must match ENTIRELY."""
    if "," in text and "." in text:
        raise _FieldError(f"amount {quote(text)} mixes '.' and ',': refused, ambiguous")
    m = _AMOUNT_COMMA_RE.fullmatch(text)
    dot = False
    if m is None:
        m = _AMOUNT_DOT_RE.fullmatch(text)
        dot = m is not None
        if m is not None and len(m.group(2)) == 3:
            raise _FieldError(
                f"amount {quote(text)} has a '.' followed by exactly three digits, which may "
                "be a thousands separator: refused, ambiguous (SWIFT's decimal mark is ',')"
            )
    if m is None:
        if re.fullmatch(r"[0-9]+", text):
            raise _FieldError(
                f"amount {quote(text)} has no decimal mark (SWIFT requires ','; implied "
                "decimals cannot be told apart from whole units)"
            )
        raise _FieldError(f"amount {quote(text)} is not digits with one decimal mark")
    whole, frac = m.group(1), m.group(2)
    if len(frac) > MAX_STATEMENT_DECIMALS:
        raise _FieldError(
            f"amount {quote(text)} has {len(frac)} decimals; at most "
            f"{MAX_STATEMENT_DECIMALS} are read exactly"
        )
    if len(whole) + len(frac) > _MAX_AMOUNT_DIGITS:
        raise _FieldError(f"amount {quote(text)} has more than {_MAX_AMOUNT_DIGITS} digits")
    return int(whole + frac), len(frac), dot


def _yymmdd(text: str) -> date:
    yy, mm, dd = int(text[0:2]), int(text[2:4]), int(text[4:6])
    try:
        # SWIFT dates have two-digit years; 80..99 are last century (statements from the
        # 1980s/90s), everything else this one.
        return date(1900 + yy if yy >= 80 else 2000 + yy, mm, dd)
    except ValueError as e:
        raise _FieldError(f"date {quote(text)} is not a valid YYMMDD date") from e


def _balance(f: _Field, name: str) -> _Balance:
    where = f"{name}:{f.line}"
    if f.continued:
        raise StatementParseError(
            f":{f.tag}: balance continues on the next line: {quote(f.text)}; a balance is one "
            "line (mark, YYMMDD, currency, amount)",
            where=where,
        )
    text = f.text.split("\n", 1)[0].rstrip(" \t")
    m = _BALANCE_RE.fullmatch(text)
    if m is None:
        raise StatementParseError(
            f":{f.tag}: {quote(text)} is not a balance (C/D mark, YYMMDD date, 3-letter "
            "currency, amount)",
            where=where,
        )
    mark, day_txt, ccy, amount_txt = m.groups()
    try:
        day = _yymmdd(day_txt)
        value, decimals, dot = _amount(amount_txt)
    except _FieldError as e:
        raise StatementParseError(f":{f.tag}: {e}", where=where) from None
    return _Balance(
        tag=f.tag,
        amount=-value if mark == "D" else value,
        decimals=decimals,
        currency=ccy,
        day=day,
        line=f.line,
        dot=dot,
    )


def iban_ok(text: str) -> bool:
    """ISO 13616: country, check digits, BBAN; mod 97 of the rearranged number is 1."""
    if not _IBAN_RE.fullmatch(text):
        return False
    digits = "".join(str(int(c, 36)) for c in text[4:] + text[:4])
    return int(digits) % 97 == 1


def split_account(text: str) -> tuple[str, str | None]:
    """(account, currency or None) from a `:25:` field, in the forms banks write.

    `BIC/account`, `BIC/account/CUR`, `account/CUR`, `/account`, an IBAN in groups with
    spaces, `IBAN CUR` and `IBANCUR` (three letters are a currency only when they make the
    id exactly three characters longer than its country's IBAN: Alpha Bank's
    `RO87BUCU1052235283028RON` is a whole Romanian IBAN). The account part is what is
    kept (masked) and keyed; a bank code before it (`10020030/1234567`) stays part of it.
    """
    parts = [p.strip() for p in text.strip().split("/")]
    if len(parts) > 1 and parts[0] == "":
        parts = parts[1:]  # "/RO19INGB..." (a leading slash)
    currency: str | None = None
    if len(parts) > 1 and _CCY_RE.fullmatch(parts[-1]):
        currency = parts.pop()
    if len(parts) > 1 and _BIC_RE.fullmatch(parts[0]):
        parts = parts[1:]
    if any(not p for p in parts):
        raise _FieldError(f"account {quote(text)} is empty or has an empty part")
    if len(parts) > 1:
        return "/".join(parts), currency
    words = parts[0].split()
    if currency is None and len(words) > 1 and _CCY_RE.fullmatch(words[-1]):
        currency = words.pop()  # "NL34RABO0142623393 EUR"
    compact = "".join(words)  # spaces carry nothing in an account id ("NL91 ABNA 0417 ...")
    if (
        currency is None
        and _IBAN_RE.fullmatch(compact)
        and len(compact) == _IBAN_LENGTHS.get(compact[:2], -4) + 3
        and _CCY_RE.fullmatch(compact[-3:])
    ):
        currency, compact = compact[-3:], compact[:-3]  # "NL77INGB0574908765EUR"
    return compact, currency


def _statement_number(f: _Field, warnings: list[str]) -> str:
    text = f.text.strip()
    compact = "".join(text.split())
    if _STMT_NO_RE.fullmatch(text):
        return text
    warnings.append(
        f"line {f.line}: :{f.tag}: statement number {quote(f.text)} is not n[/n]; "
        "kept as written for the statement id"
    )
    return compact


def _check_entry(f: _Field, warnings: list[str]) -> tuple[int, int] | None:
    """(signed minor units, decimals) of a :61: entry, or None with a warning."""
    first = f.text.split("\n", 1)[0].rstrip()
    m = _ENTRY_RE.fullmatch(first)
    if m is None:
        warnings.append(
            f"line {f.line}: :61: entry not read (does not match the :61: layout): {quote(first)}"
        )
        return None
    try:
        _yymmdd(m.group("date"))
        value, decimals, _dot = _amount(m.group("amount"))
    except _FieldError as e:
        warnings.append(f"line {f.line}: :61: entry not read: {e}")
        return None
    credit = m.group("mark") in ("C", "RD")  # a reversed debit is a credit
    return (value if credit else -value), decimals


# ---------------------------------------------------------------- statements


@dataclass(slots=True)
class _Parsed:
    statement: Statement
    number: str | None  # statement number (before '/'), when well-formed
    intermediate: bool


def _only(
    block: _Block, tags: tuple[str, ...], name: str, what: str, *, required: bool
) -> _Field | None:
    found = [f for f in block.fields if f.tag in tags]
    if len(found) > 1:
        lines = ", ".join(str(f.line) for f in found)
        raise StatementParseError(
            f"{what} occurs {len(found)} times (lines {lines}): refused, which one holds "
            "is ambiguous",
            where=f"{name}:{found[1].line}",
        )
    if not found:
        if required:
            raise StatementParseError(
                f"statement has no {what} ({' or '.join(':' + t + ':' for t in tags)})",
                where=f"{name}:{block.line}",
            )
        return None
    return found[0]


def _statement(  # noqa: PLR0912, PLR0915 - one rule of the layout per branch
    block: _Block, *, name: str, sha: str, custodian: str, tz: tzinfo
) -> _Parsed:
    warnings: list[str] = []
    ref_field = block.fields[0]
    ref = " ".join(ref_field.text.split())
    if not ref:
        warnings.append(f"line {ref_field.line}: :20: reference is empty")
        ref = f"line{ref_field.line}"
    acct_field = _only(block, ("25",), name, "account :25:", required=True)
    assert acct_field is not None
    if acct_field.continued:
        raise StatementParseError(
            f":25: account continues on the next line: {quote(acct_field.text)}",
            where=f"{name}:{acct_field.line}",
        )
    try:
        account, acct_ccy = split_account(acct_field.text.split("\n", 1)[0])
    except _FieldError as e:
        raise StatementParseError(f":25: {e}", where=f"{name}:{acct_field.line}") from None
    numbers = [f for f in block.fields if f.tag in ("28C", "28")]
    number_txt = _statement_number(numbers[0], warnings) if numbers else ""
    for extra in numbers[1:]:
        warnings.append(f"line {extra.line}: second statement number :{extra.tag}: ignored")
    closing_field = _only(block, ("62F", "62M"), name, "closing balance :62:", required=True)
    assert closing_field is not None
    opening_field = _only(block, ("60F", "60M"), name, "opening balance :60:", required=False)
    avail_field = _only(block, ("64",), name, "closing available balance :64:", required=False)
    booked = _balance(closing_field, name)
    opening = None if opening_field is None else _balance(opening_field, name)
    avail = None if avail_field is None else _balance(avail_field, name)
    forwards = [_balance(f, name) for f in block.fields if f.tag == "65"]
    ccy = booked.currency
    for b in (opening, avail, *forwards):
        if b is not None and b.currency != ccy:
            raise StatementParseError(
                f":{b.tag}: currency {b.currency} differs from :{booked.tag}: currency {ccy} "
                f"(line {booked.line}): refused",
                where=f"{name}:{b.line}",
            )
    if acct_ccy is not None and acct_ccy != ccy:
        raise StatementParseError(
            f":25: names currency {acct_ccy} but :{booked.tag}: is in {ccy}: refused",
            where=f"{name}:{acct_field.line}",
        )
    if opening is None:
        warnings.append(f"line {block.line}: statement has no opening balance :60F:/:60M:")
    elif opening.day > booked.day:
        warnings.append(
            f"line {opening.line}: opening balance dated {opening.day} after the closing "
            f"balance ({booked.day})"
        )
    dots = [b for b in (opening, booked, avail, *forwards) if b is not None and b.dot]
    if dots:
        lines = ", ".join(str(b.line) for b in dots)
        warnings.append(
            f"line {dots[0].line}: '.' read as the decimal mark (SWIFT's is ','), lines {lines}"
        )
    entries: list[tuple[int, int] | None] = []
    for f in block.fields:
        if f.tag == "61":
            entries.append(_check_entry(f, warnings))
        elif f.tag not in _KNOWN_TAGS:
            warnings.append(f"line {f.line}: unknown field :{f.tag}: ignored")
    if opening is not None and entries and all(e is not None for e in entries):
        scale = max(opening.decimals, booked.decimals, *(e[1] for e in entries if e))
        total = opening.amount * 10 ** (scale - opening.decimals)
        total += sum(e[0] * 10 ** (scale - e[1]) for e in entries if e)
        if total != booked.amount * 10 ** (scale - booked.decimals):
            warnings.append(
                f"line {booked.line}: opening balance plus the {len(entries)} :61: entries does "
                f"not equal the closing balance :{booked.tag}:"
            )
    decimals = max(booked.decimals, avail.decimals if avail else 0, currency_exponent(ccy))
    where = f"{name}:{booked.line}"
    as_of = datetime.combine(booked.day + timedelta(days=1), time(0, 0), tzinfo=tz).astimezone(UTC)
    m = _STMT_NO_RE.fullmatch(number_txt)
    number = m.group(1) if m else None
    # id = "<:20:>/<statement number>" (the page, after '/', is not part of it)
    sid_tail = number if number is not None else number_txt
    stmt = Statement(
        custodian=custodian,
        account=mask_account(account),
        account_key=account_key(account),
        currency=ccy,
        decimals=decimals,
        closing_booked=rescale(booked.amount, booked.decimals, decimals, where=where),
        closing_available=None
        if avail is None
        else rescale(avail.amount, avail.decimals, decimals, where=where),
        as_of=as_of,
        statement_id=f"{ref}/{sid_tail}" if sid_tail else ref,
        format="mt940",
        sha256=sha,
        balance_type=f"{booked.tag}/64",
        source=name,
        warnings=cap_warnings(warnings),
    )
    return _Parsed(
        statement=stmt,
        number=number,
        intermediate=booked.tag == "62M",
    )


def parse_mt940(
    data: bytes,
    *,
    name: str,
    custodian: str,
    local_tz: tzinfo = HONG_KONG,
    encoding: str = DEFAULT_ENCODING,
) -> list[Statement]:
    """Parse an MT940 file (one or more statements) into Statements; all or nothing.

    Raises StatementParseError naming `name:line` and the offending text for anything
    that would make a figure inexact or bind it to the wrong account; defects elsewhere
    become the statement's `warnings`.
    """
    sha = hashlib.sha256(data).hexdigest()
    if len(data) > MAX_MT940_BYTES:
        raise StatementParseError(
            f"file is {len(data)} bytes; MT940 files above {MAX_MT940_BYTES} bytes are refused",
            where=name,
        )
    text = decode_text(data, name=name, encoding=encoding)
    file_warnings: list[str] = []
    blocks = _split_fields(text, name, file_warnings)
    if not blocks:
        raise StatementParseError("no :20: field: not an MT940 statement", where=f"{name}:1")
    parsed = [_statement(b, name=name, sha=sha, custodian=custodian, tz=local_tz) for b in blocks]
    last_page = {(p.number, p.statement.account_key): i for i, p in enumerate(parsed)}
    out: list[Statement] = []
    for i, p in enumerate(parsed):
        if p.intermediate and p.number and last_page[(p.number, p.statement.account_key)] > i:
            continue  # an earlier page: the closing balance is on a later page
        out.append(p.statement)
    if file_warnings and out:  # text outside any statement: told on the first one
        out[0] = replace(out[0], warnings=cap_warnings([*file_warnings, *out[0].warnings]))
    return out


__all__ = [
    "DEFAULT_ENCODING",
    "MAX_MT940_BYTES",
    "check_encoding",
    "decode_text",
    "detect_mt940",
    "iban_ok",
    "parse_mt940",
    "split_account",
]
