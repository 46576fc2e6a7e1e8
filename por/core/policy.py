"""Eligibility, valuation and solvency of reserves under the Hong Kong stablecoin rules.

Pure: no I/O, no clock (`as_of` / `now` are arguments), no randomness, no float. Money
is int base units; FX rates are exact rationals parsed from decimal strings.

Rules (HKMA guideline on supervision of licensed stablecoin issuers, REFERENCE.md):

- cash at a bank: eligible;
- deposits with banks: eligible when demand/call (no maturity) or when the ORIGINAL
  term (maturity - start) is at most `max_deposit_term_months` (3 by default, as
  consulted); a term deposit without a start date is refused, since its term is
  unknown;
- marketable securities issued or guaranteed by a government, central bank or qualified
  international organisation (issuer types in `eligible_issuer_types`) with RESIDUAL
  maturity (maturity - as_of date) at most `max_security_residual_months` (12);
- overnight reverse repos on such securities: collateral issuer type eligible and
  maturing within `max_reverse_repo_days` calendar days of as_of (4 by default, so a
  Friday trade over a long weekend still counts as overnight);
- anything else ("other") is not eligible;
- same currency as the token, unless `fx_rates` has an exact rate for the currency
  (token-currency units per one unit of the foreign currency) — then the value is
  converted and `fx_haircut_bps` is added to the asset-class haircut;
- a haircut per asset class in basis points: eligible value = market value x
  (10000 - haircut) / 10000, rounded DOWN (never overstate backing);
- optional concentration limits `max_issuer_share_bps` / `max_custodian_share_bps`:
  after capping, no issuer (custodian) holds more than that share of the eligible total;
  the excess is ineligible (see `_cap_groups`).

Output lines are the attestation's `reserves[]` entries (`por.core.attestation.ReserveEntry`,
nothing is converted on the way into the document); every amount is in TOKEN base units
(token decimals of the reference currency). Scaling up is exact; scaling down rounds
down, and `value_position` says so in its informational notes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Protocol

from por.core.amounts import check_amount, ratio_string
from por.core.attestation import (
    STATUS_DEGRADED,
    STATUS_FULLY_BACKED,
    STATUS_UNDER_COLLATERALIZED,
    FxConversion,
    ReserveEntry,
    StatementRef,
    Totals,
)
from por.core.times import format_time
from por.errors import ConfigError, FormatError

ASSET_CLASSES = ("cash", "deposit", "government_security", "reverse_repo", "other")
DEFAULT_HAIRCUT_BPS: Mapping[str, int] = MappingProxyType(
    {"cash": 0, "deposit": 0, "government_security": 100, "reverse_repo": 50}
)
DEFAULT_ELIGIBLE_ISSUER_TYPES = frozenset({"government", "central_bank", "supranational"})
_RATE_RE = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,18}))?(?:/([1-9][0-9]{0,18}))?")


def parse_rate(text: object, *, where: str) -> Fraction:
    """An exact positive rate from "7.1834" or "71834/10000" (never a float)."""
    if not isinstance(text, str) or not _RATE_RE.fullmatch(text):
        raise ConfigError(
            f'rate must be a decimal string like "7.1834" or a ratio "p/q", got {text!r}',
            where=where,
        )
    value = Fraction(text)
    if value <= 0:
        raise ConfigError("rate must be positive", where=where)
    return value


def add_months(d: date, months: int) -> date:
    """Calendar month arithmetic, clamping the day (Jan 31 + 1 month = Feb 28/29)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    for day in (d.day, 30, 29, 28):
        try:
            return date(year, month, min(d.day, day))
        except ValueError:
            continue
    raise ValueError("unreachable")  # pragma: no cover - day 28 exists in every month


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """One reserve position to value: a cash balance or a holding, in its own currency.

    `amount` (nominal/balance) and `market_value` are SIGNED minor units in `decimals`
    places of `currency`. `issuer` is the counterparty for concentration limits (the
    bank for cash and deposits, the issuer for securities).
    """

    custodian: str
    account: str
    asset_class: str
    instrument: str | None
    currency: str
    decimals: int
    amount: int
    market_value: int
    issuer: str
    issuer_type: str
    maturity_date: date | None
    start_date: date | None
    statement: StatementRef


def _bps(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10_000:
        raise ConfigError(
            f"must be an integer number of basis points 0..10000, got {value!r}", where=where
        )
    return value


def _positive_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"must be a non-negative integer, got {value!r}", where=where)
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """Eligibility and valuation parameters; defaults follow the HKMA guideline."""

    haircut_bps: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_HAIRCUT_BPS))
    eligible_issuer_types: frozenset[str] = DEFAULT_ELIGIBLE_ISSUER_TYPES
    max_deposit_term_months: int = 3
    max_security_residual_months: int = 12
    max_reverse_repo_days: int = 4
    fx_rates: Mapping[str, Fraction] = field(default_factory=dict)
    fx_haircut_bps: int = 0
    max_issuer_share_bps: int | None = None
    max_custodian_share_bps: int | None = None
    max_statement_age_s: int = 48 * 3600  # an end-of-day statement arrives next morning
    max_future_skew_s: int = 300

    def __post_init__(self) -> None:
        for k, v in self.haircut_bps.items():
            if k not in ASSET_CLASSES or k == "other":
                raise ConfigError(
                    f"haircut for unknown or ineligible asset class {k!r}",
                    where="policy.haircut_bps",
                )
            _bps(v, f"policy.haircut_bps.{k}")
        for k, r in self.fx_rates.items():
            if not isinstance(r, Fraction) or r <= 0:
                raise ConfigError(
                    "FX rate must be a positive Fraction", where=f"policy.fx_rates.{k}"
                )
        _bps(self.fx_haircut_bps, "policy.fx_haircut_bps")
        for name in ("max_issuer_share_bps", "max_custodian_share_bps"):
            v = getattr(self, name)
            if v is not None:
                _bps(v, f"policy.{name}")
        for name in (
            "max_deposit_term_months",
            "max_security_residual_months",
            "max_reverse_repo_days",
            "max_statement_age_s",
            "max_future_skew_s",
        ):
            _positive_int(getattr(self, name), f"policy.{name}")
        # freeze the mappings so a frozen Policy is really immutable
        # Given haircuts override the defaults class by class (10000 bps = worthless).
        merged = {**DEFAULT_HAIRCUT_BPS, **self.haircut_bps}
        object.__setattr__(self, "haircut_bps", MappingProxyType(merged))
        object.__setattr__(self, "fx_rates", MappingProxyType(dict(self.fx_rates)))

    def to_dict(self) -> dict[str, Any]:
        def rate(r: Fraction) -> str:
            return f"{r.numerator}/{r.denominator}" if r.denominator != 1 else str(r.numerator)

        return {
            "haircut_bps": dict(sorted(self.haircut_bps.items())),
            "eligible_issuer_types": sorted(self.eligible_issuer_types),
            "max_deposit_term_months": self.max_deposit_term_months,
            "max_security_residual_months": self.max_security_residual_months,
            "max_reverse_repo_days": self.max_reverse_repo_days,
            "fx_rates": {k: rate(v) for k, v in sorted(self.fx_rates.items())},
            "fx_haircut_bps": self.fx_haircut_bps,
            "max_issuer_share_bps": self.max_issuer_share_bps,
            "max_custodian_share_bps": self.max_custodian_share_bps,
            "max_statement_age_s": self.max_statement_age_s,
            "max_future_skew_s": self.max_future_skew_s,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "policy") -> Policy:
        """From a TOML-loaded table; unknown keys are errors; omitted keys keep defaults."""
        if not isinstance(d, Mapping):
            raise ConfigError("must be a table", where=where)
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ConfigError(
                f"unknown keys {sorted(unknown)}; known: {sorted(known)}", where=where
            )
        kw: dict[str, Any] = {
            k: v
            for k, v in d.items()
            if k not in ("haircut_bps", "fx_rates", "eligible_issuer_types")
        }
        if "haircut_bps" in d:
            table = d["haircut_bps"]
            if not isinstance(table, Mapping):
                raise ConfigError("must be a table", where=f"{where}.haircut_bps")
            kw["haircut_bps"] = dict(table)
        if "fx_rates" in d:
            table = d["fx_rates"]
            if not isinstance(table, Mapping):
                raise ConfigError("must be a table", where=f"{where}.fx_rates")
            kw["fx_rates"] = {
                str(k): parse_rate(v, where=f"{where}.fx_rates.{k}") for k, v in table.items()
            }
        if "eligible_issuer_types" in d:
            types = d["eligible_issuer_types"]
            if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                raise ConfigError(
                    "must be a list of strings", where=f"{where}.eligible_issuer_types"
                )
            kw["eligible_issuer_types"] = frozenset(types)
        return cls(**kw)


# ---------------------------------------------------------------- eligibility


def _ineligibility(  # noqa: PLR0911, PLR0912 - one rule per branch reads like the guideline
    p: Position, policy: Policy, as_of_date: date
) -> str | None:
    """Why the position is not an eligible reserve asset, or None if it is (by type/term)."""
    ac = p.asset_class
    if p.amount < 0 or p.market_value < 0:
        return (
            f"negative balance {p.amount} (in {p.decimals} decimals of {p.currency}): "
            "an overdrawn account is not a reserve"
        )
    if ac == "cash":
        return None
    if ac == "deposit":
        if p.maturity_date is None:
            return None  # demand / call deposit
        if p.maturity_date < as_of_date:
            return f"deposit matured on {p.maturity_date.isoformat()}"
        if p.start_date is None:
            return "term deposit without a start date: its term cannot be checked"
        limit = add_months(p.start_date, policy.max_deposit_term_months)
        if p.maturity_date > limit:
            return (
                f"deposit term {p.start_date.isoformat()}..{p.maturity_date.isoformat()} "
                f"exceeds {policy.max_deposit_term_months} months"
            )
        return None
    if ac == "government_security":
        if p.issuer_type not in policy.eligible_issuer_types:
            return (
                f"issuer type {p.issuer_type!r} is not a government, central bank or "
                "qualified international organisation"
            )
        if p.maturity_date is None:
            return "security without a maturity date"
        if p.maturity_date < as_of_date:
            return f"security matured on {p.maturity_date.isoformat()}"
        limit = add_months(as_of_date, policy.max_security_residual_months)
        if p.maturity_date > limit:
            return (
                f"residual maturity to {p.maturity_date.isoformat()} exceeds "
                f"{policy.max_security_residual_months} months from {as_of_date.isoformat()}"
            )
        return None
    if ac == "reverse_repo":
        if p.issuer_type not in policy.eligible_issuer_types:
            return f"reverse repo collateral issuer type {p.issuer_type!r} is not eligible"
        if p.maturity_date is None:
            return "reverse repo without a maturity date"
        days = (p.maturity_date - as_of_date).days
        if days < 0:
            return f"reverse repo matured on {p.maturity_date.isoformat()}"
        if days > policy.max_reverse_repo_days:
            return (
                f"reverse repo matures in {days} days; only overnight (at most "
                f"{policy.max_reverse_repo_days} calendar days) is eligible"
            )
        return None
    return f"asset class {ac!r} is not an eligible reserve asset"


def _to_token_units(value: int, decimals: int, rate: Fraction, token_decimals: int) -> Fraction:
    return Fraction(value) * rate * Fraction(10) ** (token_decimals - decimals)


def value_position(
    p: Position, policy: Policy, *, token_currency: str, token_decimals: int, as_of: datetime
) -> tuple[ReserveEntry, tuple[str, ...]]:
    """One position valued by itself (before concentration limits), with informational
    notes that are not part of the document (FX conversion, rounding)."""
    if as_of.tzinfo is None:
        raise FormatError("as_of must be timezone-aware", where="value_position")
    return _value(p, policy, token_currency, token_decimals, as_of.astimezone(UTC).date())


def _value(
    p: Position, policy: Policy, token_currency: str, token_decimals: int, as_of_date: date
) -> tuple[ReserveEntry, tuple[str, ...]]:
    reason = _ineligibility(p, policy, as_of_date)
    notes: list[str] = []
    haircut = policy.haircut_bps.get(p.asset_class, 0)
    rate = Fraction(1)
    fx_record: FxConversion | None = None
    if p.currency != token_currency:
        fx = policy.fx_rates.get(p.currency)
        if fx is None:
            reason = reason or (
                f"currency {p.currency} is not the token's {token_currency} and no FX rule "
                f"is configured (amounts shown in {p.currency} scaled to {token_decimals} "
                "decimals)"
            )
        else:
            rate = fx
            haircut = min(10_000, haircut + policy.fx_haircut_bps)
            notes.append(
                f"converted at {fx.numerator}/{fx.denominator} {token_currency} per {p.currency}"
            )
    amount_f = _to_token_units(max(p.amount, 0), p.decimals, rate, token_decimals)
    mv_f = _to_token_units(max(p.market_value, 0), p.decimals, rate, token_decimals)
    amount, mv = amount_f.numerator // amount_f.denominator, mv_f.numerator // mv_f.denominator
    if p.currency != token_currency and p.currency in policy.fx_rates:
        # the line's own figures and the exact rate go into the document, so a reader
        # sees what was converted and `check_consistency` recomputes the conversion
        fx_record = FxConversion(
            rate=rate,
            decimals=p.decimals,
            amount=max(p.amount, 0),
            market_value=max(p.market_value, 0),
        )
    if mv_f != mv or amount_f != amount:
        notes.append(f"rounded down to {token_decimals} token decimals")
    if reason is None and p.asset_class not in policy.haircut_bps:
        reason = f"no haircut configured for asset class {p.asset_class!r}"
    eligible = 0 if reason else mv * (10_000 - haircut) // 10_000
    entry = ReserveEntry(
        custodian=p.custodian,
        account=p.account,
        asset_class=p.asset_class,
        instrument=p.instrument,
        currency=p.currency,
        amount=amount,
        market_value=mv,
        haircut_bps=haircut,
        eligible_value=eligible,
        ineligible_reason=reason,
        statement=p.statement,
        fx=fx_record,
    )
    return entry, tuple(notes)


def evaluate_positions(
    positions: Iterable[Position],
    policy: Policy,
    *,
    token_currency: str,
    token_decimals: int,
    as_of: datetime,
) -> tuple[list[ReserveEntry], int]:
    """Value every position and apply the concentration limits; return the attestation's
    reserve lines (input order) and the eligible total."""
    if as_of.tzinfo is None:
        raise FormatError("as_of must be timezone-aware", where="evaluate_positions")
    as_of_date = as_of.astimezone(UTC).date()
    positions = list(positions)
    lines = [_value(p, policy, token_currency, token_decimals, as_of_date)[0] for p in positions]
    lines = _apply_concentration(lines, [p.issuer for p in positions], policy)
    return lines, sum(line.eligible_value for line in lines)


# ------------------------------------------------------------ concentration


def _largest_cap(group_sums: Sequence[int], share_bps: int) -> int:
    """Largest cap c with c * 10000 <= share_bps * sum(min(g, c)).

    f(c) = share_bps * S(c) - 10000 c is concave with f(0) = 0 (S is a sum of
    min(g, c)), so {c : f(c) >= 0} is an interval [0, c*]: binary search finds c*.
    """
    lo, hi = 0, max(group_sums, default=0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if mid * 10_000 <= share_bps * sum(min(g, mid) for g in group_sums):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _cap_groups(
    lines: list[ReserveEntry], groups: Sequence[str], share_bps: int, label: str
) -> bool:
    """Cut each group's eligible value to the common cap; True if anything changed.

    `groups[i]` names the group (issuer or custodian) of `lines[i]`. Excess is taken
    from the group's last lines first (latest in the input, which lists cash before
    securities), so the most liquid assets stay eligible.
    """
    keys = [g.strip().lower() for g in groups]
    sums: dict[str, int] = {}
    for line, g in zip(lines, keys, strict=True):
        if line.eligible_value:
            sums[g] = sums.get(g, 0) + line.eligible_value
    cap = _largest_cap(list(sums.values()), share_bps)
    changed = False
    for g, total in sums.items():
        excess = total - cap
        for i in range(len(lines) - 1, -1, -1):
            if excess <= 0:
                break
            line = lines[i]
            if not line.eligible_value or keys[i] != g:
                continue
            cut = min(excess, line.eligible_value)
            excess -= cut
            left = line.eligible_value - cut
            why = (
                f"{label} concentration limit {share_bps} bps of eligible reserves: "
                f"{cut} base units over the limit are ineligible"
            )
            reason = why if left == 0 else f"partly ineligible: {why}"
            if line.ineligible_reason:
                reason = f"{line.ineligible_reason}; {why}"
            lines[i] = replace(line, eligible_value=left, ineligible_reason=reason)
            changed = True
    return changed


def _apply_concentration(
    lines: list[ReserveEntry], issuers: Sequence[str], policy: Policy
) -> list[ReserveEntry]:
    out = list(lines)
    custodians = [line.custodian for line in lines]
    limits = [
        (groups, b, label)
        for groups, b, label in (
            (issuers, policy.max_issuer_share_bps, "issuer"),
            (custodians, policy.max_custodian_share_bps, "custodian"),
        )
        if b is not None
    ]
    # Capping one dimension can push the other over its limit again; alternate until
    # stable. Every pass only lowers values, so this ends; 64 passes is far beyond need.
    for _ in range(64):
        changed = False
        for groups, share_bps, label in limits:
            changed |= _cap_groups(out, groups, share_bps, label)
        if not changed:
            break
    return out


# ---------------------------------------------------------------- solvency


def assess(
    *, eligible_reserves: int, circulating_supply: int, degraded_reasons: Sequence[str]
) -> Totals:
    """The solvency verdict: DEGRADED if any reason, else backed or under-collateralized.

    The ratio is rounded down so a published ratio never overstates backing.
    """
    check_amount(eligible_reserves, where="eligible_reserves")
    check_amount(circulating_supply, where="circulating_supply")
    if degraded_reasons:
        status = STATUS_DEGRADED
    elif eligible_reserves >= circulating_supply:
        status = STATUS_FULLY_BACKED
    else:
        status = STATUS_UNDER_COLLATERALIZED
    return Totals(
        eligible_reserves=eligible_reserves,
        circulating_supply=circulating_supply,
        ratio=ratio_string(eligible_reserves, circulating_supply),
        status=status,
        reasons=tuple(degraded_reasons),
    )


class Dated(Protocol):
    """Anything with a custodian statement's identity and as-of time."""

    @property
    def custodian(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def statement_id(self) -> str: ...
    @property
    def format(self) -> str: ...
    @property
    def as_of(self) -> datetime: ...


def staleness_reasons(
    statements: Iterable[Dated], *, now: datetime, max_age_s: int, max_future_skew_s: int = 300
) -> list[str]:
    """One reason per statement older than `max_age_s` (or dated in the future)."""
    if now.tzinfo is None:
        raise FormatError("now must be timezone-aware", where="staleness_reasons")
    out: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for s in statements:
        key = (s.custodian, s.account, s.statement_id)
        if key in seen:
            continue
        seen.add(key)
        age_s = int((now - s.as_of).total_seconds())
        what = f"{s.format} statement {s.statement_id} of {s.custodian} account {s.account}"
        if age_s > max_age_s:
            out.append(
                f"stale: {what} is as of {format_time(s.as_of)}, {age_s} s old "
                f"(maximum {max_age_s} s)"
            )
        elif -age_s > max_future_skew_s:
            out.append(
                f"future-dated: {what} is as of {format_time(s.as_of)}, "
                f"after now {format_time(now)}"
            )
    return out


__all__ = [
    "ASSET_CLASSES",
    "DEFAULT_HAIRCUT_BPS",
    "Policy",
    "Position",
    "StatementRef",
    "add_months",
    "assess",
    "evaluate_positions",
    "parse_rate",
    "staleness_reasons",
    "value_position",
]
