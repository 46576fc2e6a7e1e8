"""The periodic reserve report (`por-reserve-report-v1`, docs/reports.md): model and rule.

A reserve report discloses, for every day of a period (a day, an ISO week, a calendar
month, in a fixed UTC offset), the figures of that day's END-OF-DAY attestation — the
one whose `as_of` is the latest within the day — and cites it by sequence, digest and
log index: tokens outstanding per chain with the finalized block, eligible reserves by
asset class and by custodian, ratio, status, and the statements behind the reserves.
A day with no attestation says so (`"attestation": null`).

Every figure is a function of the cited attestations: `build_report` is that function,
and a verifier re-runs it over the attestations it fetched and verified itself and
compares the result with the signed report field by field (`por.core.verify`). The
report is signed like an attestation — a DSSE envelope under the same key set — with its
own payload type, so neither can be passed off as the other.

Pure: no I/O, no clock (`generated_at` is an argument). Money is integer base units of
the token, on the wire as decimal strings.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

from por.core.amounts import format_base_units, parse_base_units
from por.core.attestation import (
    ASSET_CLASSES,
    STATUS_FULLY_BACKED,
    STATUSES,
    Attestation,
    ReserveEntry,
    Token,
)
from por.core.canonical import canonical_bytes, loads_strict
from por.core.times import format_time, parse_time
from por.core.wire import HEX32_RE
from por.core.wire import array as _list
from por.core.wire import integer as _int
from por.core.wire import obj as _obj
from por.core.wire import text as _str
from por.errors import FormatError, InputError

REPORT_FORMAT = "por-reserve-report-v1"
REPORT_PAYLOAD_TYPE = "application/vnd.por.reserve-report+json"
PERIODS = ("daily", "weekly", "monthly")

_OFFSET_RE = re.compile(r"([+-])([01][0-9]|2[0-3]):([0-5][0-9])")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RATIO_RE = re.compile(r"(0|[1-9][0-9]*)\.[0-9]{6}")


def _date(v: object, where: str) -> date:
    text = _str(v, where, pattern=_DATE_RE)
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise FormatError(f"not a valid date: {text!r}", where=where) from e


# --- periods -------------------------------------------------------------------------------


def parse_utc_offset(text: object, *, where: str = "utc_offset") -> timedelta:
    """ "+08:00" -> 8 h. The report's days run from local midnight at this fixed offset."""
    if not isinstance(text, str) or not _OFFSET_RE.fullmatch(text):
        raise InputError(
            f'must be a UTC offset like "+08:00" or "-05:30", got {text!r}', where=where
        )
    m = _OFFSET_RE.fullmatch(text)
    if m is None:  # pragma: no cover - matched just above
        raise InputError(f"not a UTC offset: {text!r}", where=where)
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    return timedelta(minutes=-minutes if m.group(1) == "-" else minutes)


def format_utc_offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"


def local_date(t: datetime, offset: timedelta) -> date:
    """The calendar date of instant `t` at `offset`."""
    return (t.astimezone(UTC) + offset).date()


@dataclass(frozen=True, slots=True, kw_only=True)
class Period:
    """A day, an ISO week (Monday to Sunday) or a calendar month, at a fixed UTC offset."""

    kind: str
    first_day: date
    last_day: date
    utc_offset: timedelta

    @property
    def label(self) -> str:
        if self.kind == "daily":
            return self.first_day.isoformat()
        if self.kind == "weekly":
            year, week, _ = self.first_day.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.first_day.year}-{self.first_day.month:02d}"

    @property
    def start(self) -> datetime:
        return self.day_start(self.first_day)

    @property
    def end(self) -> datetime:
        return self.day_start(self.last_day + timedelta(days=1))

    def day_start(self, d: date) -> datetime:
        """The UTC instant of local midnight starting day `d`."""
        return datetime(d.year, d.month, d.day, tzinfo=UTC) - self.utc_offset

    def days(self) -> list[date]:
        n = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=i) for i in range(n)]

    @property
    def utc_offset_text(self) -> str:
        return format_utc_offset(self.utc_offset)

    def days_until(self, generated_at: datetime) -> list[date]:
        """The period's days that had begun by `generated_at` (all of them once it ended)."""
        return [d for d in self.days() if self.day_start(d) < generated_at]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "utc_offset": format_utc_offset(self.utc_offset),
            "start": format_time(self.start),
            "end": format_time(self.end),
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str = "period") -> Period:
        o = _obj(d, ("kind", "label", "first_day", "last_day", "utc_offset", "start", "end"), where)
        kind = o["kind"]
        if kind not in PERIODS:
            raise FormatError(
                f"must be one of {', '.join(PERIODS)}, got {kind!r}", where=f"{where}.kind"
            )
        offset = parse_utc_offset(o["utc_offset"], where=f"{where}.utc_offset")
        period = period_containing(kind, _date(o["first_day"], f"{where}.first_day"), offset)
        if period.to_dict() != o:
            raise FormatError(
                f"not the {kind} period it names: expected {period.to_dict()}", where=where
            )
        return period


def period_containing(kind: str, day: date, utc_offset: timedelta) -> Period:
    """The period of `kind` that contains local date `day`."""
    if kind == "daily":
        first = last = day
    elif kind == "weekly":
        first = day - timedelta(days=day.weekday())
        last = first + timedelta(days=6)
    elif kind == "monthly":
        first = day.replace(day=1)
        last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    else:
        raise InputError(
            f"period must be one of {', '.join(PERIODS)}, got {kind!r}", where="period"
        )
    return Period(kind=kind, first_day=first, last_day=last, utc_offset=utc_offset)


def previous_period(kind: str, now: datetime, utc_offset: timedelta) -> Period:
    """The latest period of `kind` that has ended by `now` (yesterday, last week, last month)."""
    current = period_containing(kind, local_date(now, utc_offset), utc_offset)
    return period_containing(kind, current.first_day - timedelta(days=1), utc_offset)


# --- the figures of one day ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CitedAttestation:
    """The attestation a day's figures come from: what a verifier fetches and checks."""

    sequence: int
    digest: str
    log_index: int
    issued_at: datetime
    as_of: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "digest": self.digest,
            "log_index": self.log_index,
            "issued_at": format_time(self.issued_at),
            "as_of": format_time(self.as_of),
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> CitedAttestation:
        o = _obj(d, ("sequence", "digest", "log_index", "issued_at", "as_of"), where)
        return cls(
            sequence=_int(o["sequence"], f"{where}.sequence", minimum=1),
            digest=_str(o["digest"], f"{where}.digest", pattern=HEX32_RE),
            log_index=_int(o["log_index"], f"{where}.log_index"),
            issued_at=parse_time(o["issued_at"], where=f"{where}.issued_at"),
            as_of=parse_time(o["as_of"], where=f"{where}.as_of"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainFigures:
    chain_id: str
    block_number: int
    block_hash: str
    block_time: datetime
    total_supply: int
    excluded: int
    circulating_supply: int
    budget: int | None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "chain_id": self.chain_id,
            "block": {
                "number": self.block_number,
                "hash": self.block_hash,
                "time": format_time(self.block_time),
            },
            "total_supply": format_base_units(self.total_supply),
            "excluded": format_base_units(self.excluded),
            "circulating_supply": format_base_units(self.circulating_supply),
        }
        if self.budget is not None:
            d["budget"] = format_base_units(self.budget)
        return d

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> ChainFigures:
        keys = ("chain_id", "block", "total_supply", "excluded", "circulating_supply")
        o = _obj(d, keys, where, optional=("budget",))
        b = _obj(o["block"], ("number", "hash", "time"), f"{where}.block")
        return cls(
            chain_id=_str(o["chain_id"], f"{where}.chain_id", max_len=64),
            block_number=_int(b["number"], f"{where}.block.number"),
            block_hash=_str(b["hash"], f"{where}.block.hash", max_len=128),
            block_time=parse_time(b["time"], where=f"{where}.block.time"),
            total_supply=parse_base_units(o["total_supply"], where=f"{where}.total_supply"),
            excluded=parse_base_units(o["excluded"], where=f"{where}.excluded"),
            circulating_supply=parse_base_units(
                o["circulating_supply"], where=f"{where}.circulating_supply"
            ),
            budget=parse_base_units(o["budget"], where=f"{where}.budget")
            if "budget" in o
            else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Holding:
    """Reserves of one asset class or one custodian: market value (of the lines in token
    units) and eligible value, both token base units."""

    key: str
    market_value: int
    eligible_value: int

    def to_dict(self, key_name: str) -> dict[str, Any]:
        return {
            key_name: self.key,
            "market_value": format_base_units(self.market_value),
            "eligible_value": format_base_units(self.eligible_value),
        }

    @classmethod
    def from_dict(cls, d: object, key_name: str, *, where: str) -> Holding:
        o = _obj(d, (key_name, "market_value", "eligible_value"), where)
        return cls(
            key=_str(o[key_name], f"{where}.{key_name}"),
            market_value=parse_base_units(o["market_value"], where=f"{where}.market_value"),
            eligible_value=parse_base_units(o["eligible_value"], where=f"{where}.eligible_value"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementCite:
    custodian: str
    format: str
    id: str
    as_of: datetime
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "custodian": self.custodian,
            "format": self.format,
            "id": self.id,
            "as_of": format_time(self.as_of),
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> StatementCite:
        o = _obj(d, ("custodian", "format", "id", "as_of", "sha256"), where)
        return cls(
            custodian=_str(o["custodian"], f"{where}.custodian"),
            format=_str(o["format"], f"{where}.format", max_len=64),
            id=_str(o["id"], f"{where}.id"),
            as_of=parse_time(o["as_of"], where=f"{where}.as_of"),
            sha256=_str(o["sha256"], f"{where}.sha256", pattern=HEX32_RE),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DayFigures:
    """The figures of one attested day (all from `attestation`)."""

    attestation: CitedAttestation
    status: str
    reasons: tuple[str, ...]
    ratio: str | None
    eligible_reserves: int
    circulating_supply: int
    liabilities_total: int
    chains: tuple[ChainFigures, ...]
    by_asset_class: tuple[Holding, ...]
    by_custodian: tuple[Holding, ...]
    statements: tuple[StatementCite, ...]

    @property
    def headroom(self) -> int:
        """Eligible reserves minus circulating supply (negative: a shortfall)."""
        return self.eligible_reserves - self.circulating_supply


@dataclass(frozen=True, slots=True, kw_only=True)
class Day:
    date: date
    figures: DayFigures | None  # None: no attestation has its as_of in this day

    def to_dict(self) -> dict[str, Any]:
        f = self.figures
        if f is None:
            return {"date": self.date.isoformat(), "attestation": None}
        return {
            "date": self.date.isoformat(),
            "attestation": f.attestation.to_dict(),
            "status": f.status,
            "reasons": list(f.reasons),
            "ratio": f.ratio,
            "eligible_reserves": format_base_units(f.eligible_reserves),
            "circulating_supply": format_base_units(f.circulating_supply),
            "liabilities_total": format_base_units(f.liabilities_total),
            "chains": [c.to_dict() for c in f.chains],
            "reserves_by_asset_class": [h.to_dict("asset_class") for h in f.by_asset_class],
            "reserves_by_custodian": [h.to_dict("custodian") for h in f.by_custodian],
            "statements": [s.to_dict() for s in f.statements],
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> Day:
        if isinstance(d, dict) and d.get("attestation", 0) is None:
            o = _obj(d, ("date", "attestation"), where)
            return cls(date=_date(o["date"], f"{where}.date"), figures=None)
        keys = (
            "date",
            "attestation",
            "status",
            "reasons",
            "ratio",
            "eligible_reserves",
            "circulating_supply",
            "liabilities_total",
            "chains",
            "reserves_by_asset_class",
            "reserves_by_custodian",
            "statements",
        )
        o = _obj(d, keys, where)
        status = o["status"]
        if status not in STATUSES:
            raise FormatError(f"must be one of {', '.join(STATUSES)}", where=f"{where}.status")
        ratio = o["ratio"]
        if ratio is not None:
            _str(ratio, f"{where}.ratio", pattern=_RATIO_RE)
        classes = [
            Holding.from_dict(h, "asset_class", where=f"{where}.reserves_by_asset_class[{i}]")
            for i, h in enumerate(
                _list(o["reserves_by_asset_class"], f"{where}.reserves_by_asset_class")
            )
        ]
        for i, h in enumerate(classes):
            if h.key not in ASSET_CLASSES:
                raise FormatError(
                    f"unknown asset class {h.key!r}", where=f"{where}.reserves_by_asset_class[{i}]"
                )
        figures = DayFigures(
            attestation=CitedAttestation.from_dict(o["attestation"], where=f"{where}.attestation"),
            status=status,
            reasons=tuple(
                _str(r, f"{where}.reasons[{i}]", max_len=4096)
                for i, r in enumerate(_list(o["reasons"], f"{where}.reasons"))
            ),
            ratio=ratio,
            eligible_reserves=parse_base_units(
                o["eligible_reserves"], where=f"{where}.eligible_reserves"
            ),
            circulating_supply=parse_base_units(
                o["circulating_supply"], where=f"{where}.circulating_supply"
            ),
            liabilities_total=parse_base_units(
                o["liabilities_total"], where=f"{where}.liabilities_total"
            ),
            chains=tuple(
                ChainFigures.from_dict(c, where=f"{where}.chains[{i}]")
                for i, c in enumerate(_list(o["chains"], f"{where}.chains"))
            ),
            by_asset_class=tuple(classes),
            by_custodian=tuple(
                Holding.from_dict(h, "custodian", where=f"{where}.reserves_by_custodian[{i}]")
                for i, h in enumerate(
                    _list(o["reserves_by_custodian"], f"{where}.reserves_by_custodian")
                )
            ),
            statements=tuple(
                StatementCite.from_dict(s, where=f"{where}.statements[{i}]")
                for i, s in enumerate(_list(o["statements"], f"{where}.statements"))
            ),
        )
        return cls(date=_date(o["date"], f"{where}.date"), figures=figures)


def in_token_units(line: ReserveEntry, token: Token) -> bool:
    """Whether a reserve line's amounts are token base units.

    A line in another currency that was not converted (no FX rule: ineligible, no `fx`)
    keeps its own currency's figures; it is left out of market-value sums. A line with
    eligible value was converted (documents before `fx` did not record the rate).
    """
    return line.currency == token.currency or line.fx is not None or line.eligible_value > 0


def _holdings(att: Attestation, key: str) -> tuple[Holding, ...]:
    market: dict[str, int] = {}
    eligible: dict[str, int] = {}
    for r in att.reserves:
        k = getattr(r, key)
        market.setdefault(k, 0)
        eligible[k] = eligible.get(k, 0) + r.eligible_value
        if in_token_units(r, att.token):
            market[k] += r.market_value
    # largest eligible first, then by name: one order, so the report's bytes are one
    order = sorted(market, key=lambda k: (-eligible[k], k))
    return tuple(Holding(key=k, market_value=market[k], eligible_value=eligible[k]) for k in order)


def day_figures(att: Attestation, *, digest: str, log_index: int) -> DayFigures:
    """What a report says about a day whose end-of-day attestation is `att`."""
    statements = {
        r.statement.sha256: StatementCite(
            custodian=r.custodian,
            format=r.statement.format,
            id=r.statement.id,
            as_of=r.statement.as_of,
            sha256=r.statement.sha256,
        )
        for r in att.reserves
    }
    return DayFigures(
        attestation=CitedAttestation(
            sequence=att.sequence,
            digest=digest,
            log_index=log_index,
            issued_at=att.issued_at,
            as_of=att.as_of,
        ),
        status=att.totals.status,
        reasons=att.totals.reasons,
        ratio=att.totals.ratio,
        eligible_reserves=att.totals.eligible_reserves,
        circulating_supply=att.totals.circulating_supply,
        liabilities_total=att.liabilities.total,
        chains=tuple(
            ChainFigures(
                chain_id=c.chain_id,
                block_number=c.block.number,
                block_hash=c.block.hash,
                block_time=c.block.time,
                total_supply=c.total_supply,
                excluded=c.excluded_total,
                circulating_supply=c.circulating_supply,
                budget=c.budget,
            )
            for c in att.chains
        ),
        by_asset_class=_holdings(att, "asset_class"),
        by_custodian=_holdings(att, "custodian"),
        statements=tuple(sorted(statements.values(), key=lambda s: (s.custodian, s.id, s.sha256))),
    )


# --- the report --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LowestRatio:
    date: date
    sequence: int
    ratio: str

    def to_dict(self) -> dict[str, Any]:
        return {"date": self.date.isoformat(), "sequence": self.sequence, "ratio": self.ratio}


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    days: int
    days_attested: int
    days_fully_backed: int
    lowest_ratio: LowestRatio | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "days_attested": self.days_attested,
            "days_fully_backed": self.days_fully_backed,
            "lowest_ratio": None if self.lowest_ratio is None else self.lowest_ratio.to_dict(),
        }


def summarize(days: Sequence[Day]) -> Summary:
    attested = [d for d in days if d.figures is not None]
    lowest: LowestRatio | None = None
    low_value: Fraction | None = None
    for d in days:
        f = d.figures
        if f is None or f.circulating_supply == 0 or f.ratio is None:
            continue  # undefined ratio: nothing in circulation
        value = Fraction(f.eligible_reserves, f.circulating_supply)
        if low_value is None or value < low_value:
            low_value = value
            lowest = LowestRatio(date=d.date, sequence=f.attestation.sequence, ratio=f.ratio)
    return Summary(
        days=len(days),
        days_attested=len(attested),
        days_fully_backed=sum(
            1 for d in attested if d.figures is not None and d.figures.status == STATUS_FULLY_BACKED
        ),
        lowest_ratio=lowest,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReserveReport:
    period: Period
    generated_at: datetime
    token: Token
    days: tuple[Day, ...]
    format: str = REPORT_FORMAT

    @property
    def final(self) -> bool:
        """The period had ended when the report was made; else it is provisional."""
        return self.generated_at >= self.period.end

    @property
    def summary(self) -> Summary:
        return summarize(self.days)

    def cited(self) -> list[CitedAttestation]:
        return [d.figures.attestation for d in self.days if d.figures is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "period": self.period.to_dict(),
            "generated_at": format_time(self.generated_at),
            "final": self.final,
            "token": self.token.to_dict(),
            "days": [d.to_dict() for d in self.days],
            "summary": self.summary.to_dict(),
        }

    def to_bytes(self) -> bytes:
        return canonical_bytes(self.to_dict())

    def digest(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @classmethod
    def from_dict(cls, d: object, *, where: str = "report") -> ReserveReport:
        o = _obj(
            d, ("format", "period", "generated_at", "final", "token", "days", "summary"), where
        )
        if o["format"] != REPORT_FORMAT:
            raise FormatError(
                f"format must be {REPORT_FORMAT!r}, got {o['format']!r}", where=f"{where}.format"
            )
        report = cls(
            period=Period.from_dict(o["period"], where=f"{where}.period"),
            generated_at=parse_time(o["generated_at"], where=f"{where}.generated_at"),
            token=Token.from_dict(o["token"], where=f"{where}.token"),
            days=tuple(
                Day.from_dict(x, where=f"{where}.days[{i}]")
                for i, x in enumerate(_list(o["days"], f"{where}.days"))
            ),
        )
        # derived fields must be what the rest says
        if o["final"] is not report.final:
            raise FormatError(
                f"final is {o['final']!r} but generated_at is "
                f"{'after' if report.final else 'before'} the period's end",
                where=f"{where}.final",
            )
        want_days = report.period.days_until(report.generated_at)
        got_days = [x.date for x in report.days]
        if not want_days or got_days != want_days:
            span = f"{want_days[0]}..{want_days[-1]}" if want_days else "none (not begun)"
            raise FormatError(
                f"days must be {span}, each once and in order; got {len(got_days)} day(s)",
                where=f"{where}.days",
            )
        if o["summary"] != report.summary.to_dict():
            raise FormatError(
                f"summary is not the days' summary: expected {report.summary.to_dict()}",
                where=f"{where}.summary",
            )
        return report


def decode_report(payload: bytes, *, where: str = "payload") -> ReserveReport:
    """Parse verified payload bytes, which must be the report's own canonical form."""
    report = ReserveReport.from_dict(loads_strict(payload, where=where), where=where)
    if report.to_bytes() != payload:
        raise FormatError("payload is not RFC 8785 canonical JSON", where=where)
    return report


@dataclass(frozen=True, slots=True, kw_only=True)
class DayAttestation:
    """A day's end-of-day attestation, with what the report cites beside it."""

    attestation: Attestation
    digest: str
    log_index: int


def build_report(
    period: Period,
    *,
    generated_at: datetime,
    token: Token,
    end_of_day: Mapping[date, DayAttestation],
) -> ReserveReport:
    """The report of `period` made at `generated_at` from each day's end-of-day attestation.

    `end_of_day` maps a local date to the attestation whose as_of is the latest within it
    (the caller finds it; a verifier passes the ones the report cites). Raises InputError
    for a period that has not begun, an attestation dated outside its day, or one of
    another token.
    """
    if generated_at.tzinfo is None:
        raise InputError("generated_at must be timezone-aware", where="build_report")
    generated_at = generated_at.astimezone(UTC).replace(microsecond=0)
    days_open = period.days_until(generated_at)
    if not days_open:
        raise InputError(
            f"the {period.kind} period {period.label} begins at {format_time(period.start)}, "
            f"after {format_time(generated_at)}: nothing to report yet",
            where="period",
        )
    for d in end_of_day:
        if d not in days_open:
            raise InputError(f"{d.isoformat()} is not a day of the report", where="attestations")
    days = []
    for d in days_open:
        given = end_of_day.get(d)
        if given is None:
            days.append(Day(date=d, figures=None))
            continue
        att = given.attestation
        if local_date(att.as_of, period.utc_offset) != d:
            raise InputError(
                f"attestation {att.sequence} is as of {format_time(att.as_of)}, not in "
                f"{d.isoformat()} ({format_utc_offset(period.utc_offset)})",
                where="attestations",
            )
        if att.token != token:
            raise InputError(
                f"attestation {att.sequence} is for {att.token.to_dict()}, the report for "
                f"{token.to_dict()}",
                where="attestations",
            )
        days.append(
            Day(date=d, figures=day_figures(att, digest=given.digest, log_index=given.log_index))
        )
    return ReserveReport(period=period, generated_at=generated_at, token=token, days=tuple(days))


__all__ = [
    "PERIODS",
    "REPORT_FORMAT",
    "REPORT_PAYLOAD_TYPE",
    "ChainFigures",
    "CitedAttestation",
    "Day",
    "DayAttestation",
    "DayFigures",
    "Holding",
    "LowestRatio",
    "Period",
    "ReserveReport",
    "StatementCite",
    "Summary",
    "build_report",
    "day_figures",
    "decode_report",
    "format_utc_offset",
    "in_token_units",
    "local_date",
    "parse_utc_offset",
    "period_containing",
    "previous_period",
    "summarize",
]
