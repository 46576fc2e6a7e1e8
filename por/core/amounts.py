"""Money as integer base units: parse, check and format without ever touching a float.

An amount is an `int` number of base units (for CNHC with 6 decimals, 1 CNHC is
1_000_000). On the wire amounts are decimal strings. Every amount por commits to is
0 <= x < 2^127 so that it fits a u256 leaf field and the oracle's int256 with room
for sums. No I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from por.errors import AmountError

MAX_AMOUNT_EXCLUSIVE = 2**127
"""Every balance and every partial sum must be strictly below this (DESIGN §3)."""

_BASE_UNITS_RE = re.compile(r"(0|[1-9][0-9]*)")
_DECIMAL_RE = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
_CURRENCY_RE = re.compile(r"[A-Z0-9]{3,12}")


def check_amount(value: object, *, where: str = "amount") -> int:
    """Return `value` if it is an int in [0, 2^127); raise AmountError otherwise.

    `bool` is refused although it is an `int` subclass; floats and Decimals are refused
    because money must never pass through binary floating point.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise AmountError(
            f"must be an integer number of base units, got {type(value).__name__} {value!r}",
            where=where,
        )
    if value < 0:
        raise AmountError(f"must not be negative, got {value}", where=where)
    if value >= MAX_AMOUNT_EXCLUSIVE:
        raise AmountError(f"must be below 2^127, got {value}", where=where)
    return value


def parse_base_units(text: object, *, where: str = "amount") -> int:
    """Parse a decimal string of integer base units ("1500000") into an int.

    Only canonical spellings are accepted: ASCII digits, no sign, no leading zeros, no
    exponent, no fraction, no whitespace. A JSON number (int or float) is refused:
    amounts travel as strings (RFC 8785 would turn big numbers into doubles).
    """
    if not isinstance(text, str):
        raise AmountError(
            f"must be a decimal string of base units, got {type(text).__name__} {text!r}",
            where=where,
        )
    if not _BASE_UNITS_RE.fullmatch(text):
        raise AmountError(
            f"must be a canonical decimal string of base units (digits, no sign, "
            f"no leading zeros, no fraction), got {text!r}",
            where=where,
        )
    if len(text) > 39:  # 2^127 has 39 digits; refuse absurd lengths before int()
        raise AmountError(f"must be below 2^127, got a {len(text)}-digit number", where=where)
    return check_amount(int(text), where=where)


def parse_decimal(text: object, decimals: int, *, where: str = "amount") -> int:
    """Parse a human decimal ("1234.56") into base units with `decimals` places, exactly.

    Extra fractional digits are accepted only if they are zeros ("1.500" with 2
    decimals); any digit that would be lost raises. Signs and exponents are refused.
    """
    if not isinstance(text, str):
        raise AmountError(
            f"must be a decimal string, got {type(text).__name__} {text!r}", where=where
        )
    m = _DECIMAL_RE.fullmatch(text)
    if not m:
        raise AmountError(
            f"must be a plain decimal number (digits with an optional '.fraction'), got {text!r}",
            where=where,
        )
    whole, frac = m.group(1), m.group(2) or ""
    if len(frac) > decimals:
        if frac[decimals:].strip("0"):
            raise AmountError(
                f"{text!r} has more than {decimals} decimal places; refusing to round",
                where=where,
            )
        frac = frac[:decimals]
    if len(whole) > 60:
        raise AmountError(f"must be below 2^127 base units, got {text!r}", where=where)
    return check_amount(int(whole + frac.ljust(decimals, "0")), where=where)


def format_base_units(value: int) -> str:
    """The wire spelling of an amount: its decimal string of base units."""
    return str(check_amount(value))


def format_decimal(value: int, decimals: int) -> str:
    """Human spelling with exactly `decimals` places: 1234560000, 6 -> '1234.560000'."""
    check_amount(value)
    if decimals == 0:
        return str(value)
    s = str(value).rjust(decimals + 1, "0")
    return f"{s[:-decimals]}.{s[-decimals:]}"


def ratio_string(numerator: int, denominator: int, *, places: int = 6) -> str | None:
    """numerator/denominator as a decimal string rounded DOWN to `places`.

    Rounding down means a published ratio never overstates backing. None when the
    denominator is zero (nothing in circulation: the ratio is undefined).
    """
    check_amount(numerator, where="ratio numerator")
    check_amount(denominator, where="ratio denominator")
    if denominator == 0:
        return None
    scaled = numerator * 10**places // denominator
    whole, frac = divmod(scaled, 10**places)
    return f"{whole}.{frac:0{places}d}" if places else str(whole)


def to_decimal(value: int, decimals: int) -> Decimal:
    """A Decimal for display only (never for arithmetic that is committed to)."""
    try:
        return Decimal(check_amount(value)).scaleb(-decimals)
    except InvalidOperation as e:  # pragma: no cover - Decimal of an int cannot fail
        raise AmountError(str(e)) from e


@dataclass(frozen=True, slots=True, kw_only=True)
class Amount:
    """An amount of a currency or token in integer base units."""

    base_units: int
    decimals: int
    currency: str

    def __post_init__(self) -> None:
        check_amount(self.base_units, where="Amount.base_units")
        if isinstance(self.decimals, bool) or not isinstance(self.decimals, int):
            raise AmountError("decimals must be an int", where="Amount.decimals")
        if not 0 <= self.decimals <= 36:
            raise AmountError(f"decimals must be in 0..36, got {self.decimals}")
        if not isinstance(self.currency, str) or not _CURRENCY_RE.fullmatch(self.currency):
            raise AmountError(
                f"currency must be 3-12 upper-case letters/digits, got {self.currency!r}",
                where="Amount.currency",
            )

    @classmethod
    def parse(cls, text: str, *, decimals: int, currency: str, where: str = "amount") -> Amount:
        """From a human decimal string ("1234.56")."""
        return cls(
            base_units=parse_decimal(text, decimals, where=where),
            decimals=decimals,
            currency=currency,
        )

    def __str__(self) -> str:
        return f"{format_decimal(self.base_units, self.decimals)} {self.currency}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "amount": format_base_units(self.base_units),
            "decimals": self.decimals,
            "currency": self.currency,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "amount") -> Amount:
        if not isinstance(d, dict):
            raise AmountError(f"must be an object, got {type(d).__name__}", where=where)
        try:
            return cls(
                base_units=parse_base_units(d["amount"], where=f"{where}.amount"),
                decimals=d["decimals"],
                currency=d["currency"],
            )
        except KeyError as e:
            raise AmountError(f"missing field {e.args[0]!r}", where=where) from e
