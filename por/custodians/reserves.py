"""From custodian reports to valued reserve lines: the one call an attestation run makes.

`evaluate_reserves` turns statements (cash) and holdings into policy Positions, drops
double counting (the same account reported by several statements: the latest as-of
wins, the others appear as ineligible "superseded" lines), never uses a statement dated
after the run's as-of (beyond the configured skew), values everything with
por.core.policy and collects the reasons that make the attestation DEGRADED: stale or
future-dated statements, conflicting statements, and problems a source reported.

No I/O here: reports come in as values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from fractions import Fraction

from por.core.attestation import ReserveEntry
from por.core.policy import (
    Policy,
    Position,
    StatementRef,
    evaluate_positions,
    staleness_reasons,
)
from por.core.times import format_time
from por.custodians.base import CustodianReport
from por.custodians.model import Holding, Statement

_SUPERSEDED = "superseded by {fmt} statement {sid} as of {as_of} for the same account"


def _ref(item: Statement | Holding) -> StatementRef:
    return StatementRef(
        format=item.format,
        id=item.statement_id,
        as_of=item.as_of,
        sha256=item.sha256,
        warnings=item.warnings if isinstance(item, Statement) else (),
    )


def statement_position(s: Statement) -> Position:
    """A cash balance: the closing BOOKED balance (DESIGN §7); the bank is the issuer."""
    return Position(
        custodian=s.custodian,
        account=s.account,
        asset_class="cash",
        instrument=None,
        currency=s.currency,
        decimals=s.decimals,
        amount=s.closing_booked,
        market_value=s.closing_booked,
        issuer=s.custodian,
        issuer_type="bank",
        maturity_date=None,
        start_date=None,
        statement=_ref(s),
    )


def holding_position(h: Holding) -> Position:
    return Position(
        custodian=h.custodian,
        account=h.account,
        asset_class=h.asset_class,
        instrument=h.isin,
        currency=h.currency,
        decimals=h.decimals,
        amount=h.nominal,
        market_value=h.market_value,
        issuer=h.issuer,
        issuer_type=h.issuer_type,
        maturity_date=h.maturity_date,
        start_date=h.start_date,
        statement=_ref(h),
    )


def _scaled(s: Statement) -> Fraction:
    return Fraction(s.closing_booked, 10**s.decimals)


def _dedupe_statements(
    statements: Sequence[Statement], usable: Sequence[int]
) -> tuple[dict[int, str], list[str]]:
    """superseded index -> reason; and conflicts between equally recent statements.

    Only `usable` statements (not future-dated) take part: a statement that is not used
    never supersedes another. Per account (account key and currency) the newest as-of
    wins; among equally recent statements that disagree, the LOWEST closing booked
    balance is kept (never the higher of two contradicting figures) and the run is
    DEGRADED by the conflict.
    """
    groups: dict[tuple[str, str], list[int]] = {}
    for i in usable:
        s = statements[i]
        gk = (s.account_key or f"{s.custodian}|{s.account}", s.currency)
        groups.setdefault(gk, []).append(i)
    superseded: dict[int, str] = {}
    conflicts: list[str] = []
    for idxs in groups.values():
        if len(idxs) == 1:
            continue
        newest = max(statements[i].as_of for i in idxs)
        top = [i for i in idxs if statements[i].as_of == newest]
        keep = min(top, key=lambda i: _scaled(statements[i]))  # first of the lowest
        k = statements[keep]
        for i in top:
            s = statements[i]
            if i != keep and _scaled(s) != _scaled(k):
                conflicts.append(
                    f"conflicting statements for {k.custodian} account {k.account} as of "
                    f"{format_time(k.as_of)}: {k.format} {k.statement_id} and {s.format} "
                    f"{s.statement_id} report different closing booked balances; the lower "
                    "is used"
                )
        for i in idxs:
            if i != keep:
                superseded[i] = _SUPERSEDED.format(
                    fmt=k.format, sid=k.statement_id, as_of=format_time(k.as_of)
                )
    return superseded, conflicts


def _dedupe_holdings(holdings: Sequence[Holding], usable: Sequence[int]) -> dict[int, str]:
    """The same ISIN in the same account reported by several documents: newest wins."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i in usable:
        h = holdings[i]
        if h.isin:
            groups.setdefault((h.account_key or h.account, h.isin), []).append(i)
    superseded: dict[int, str] = {}
    for idxs in groups.values():
        docs = {(holdings[i].as_of, holdings[i].sha256) for i in idxs}
        if len(docs) < 2:
            continue  # several lots in one document: all count
        newest = max(docs)
        for i in idxs:
            h = holdings[i]
            if (h.as_of, h.sha256) != newest:
                superseded[i] = _SUPERSEDED.format(
                    fmt="holdings", sid=h.statement_id, as_of=format_time(newest[0])
                )
    return superseded


def evaluate_reserves(
    reports: Iterable[CustodianReport],
    policy: Policy,
    *,
    token_currency: str,
    token_decimals: int,
    as_of: datetime,
) -> tuple[list[ReserveEntry], int, list[str]]:
    """(the attestation's reserve lines, eligible total in token base units, DEGRADED reasons).

    The rule that keeps an input from raising reserves: a statement or holding dated
    after `as_of` + `policy.max_future_skew_s` is never used and never supersedes another
    (its line shows eligible 0 and the run is DEGRADED naming it); of the rest, one
    statement per account counts - the newest, or the lowest of equally new ones that
    disagree. Staleness is judged on what counts, against `as_of`, with the report's own
    `max_age_s` or the policy's `max_statement_age_s`; superseded statements are listed
    with their reason and judged no further.
    """
    reports = list(reports)
    statements = [s for r in reports for s in r.statements]
    holdings = [h for r in reports for h in r.holdings]
    max_ages = [
        r.max_age_s if r.max_age_s is not None else policy.max_statement_age_s
        for r in reports
        for _ in (*r.statements, *r.holdings)
    ]
    degraded: list[str] = [f"{r.custodian}: {p}" for r in reports for p in r.problems]
    items: list[Statement | Holding] = [*statements, *holdings]
    horizon = as_of + timedelta(seconds=policy.max_future_skew_s)
    unused: dict[int, str] = {}  # index into items -> reason it is never used
    for i, item in enumerate(items):
        if item.as_of > horizon:
            (why,) = staleness_reasons(
                [item], now=as_of, max_age_s=10**12, max_future_skew_s=policy.max_future_skew_s
            )
            unused[i] = f"{why}: never used"
            degraded.append(f"{why}: never used and supersedes nothing")
    n = len(statements)
    sup_s, conflicts = _dedupe_statements(statements, [i for i in range(n) if i not in unused])
    sup_h = _dedupe_holdings(holdings, [i for i in range(len(holdings)) if n + i not in unused])
    degraded.extend(conflicts)
    unused.update(sup_s)
    unused.update({n + i: why for i, why in sup_h.items()})
    # Staleness of what counts, each against its own report's maximum age.
    by_age: dict[int, list[Statement | Holding]] = {}
    for i, item in enumerate(items):
        if i not in unused:
            by_age.setdefault(max_ages[i], []).append(item)
    for max_age, group in by_age.items():
        degraded.extend(
            staleness_reasons(
                group, now=as_of, max_age_s=max_age, max_future_skew_s=policy.max_future_skew_s
            )
        )
    positions = [statement_position(s) for s in statements]
    positions += [holding_position(h) for h in holdings]
    # Unused positions are valued too (so the line shows amounts) but never count.
    keep = [p for i, p in enumerate(positions) if i not in unused]
    lines_kept, total = evaluate_positions(
        keep, policy, token_currency=token_currency, token_decimals=token_decimals, as_of=as_of
    )
    dropped = [p for i, p in enumerate(positions) if i in unused]
    lines_dropped, _ = evaluate_positions(
        dropped, Policy(), token_currency=token_currency, token_decimals=token_decimals, as_of=as_of
    )
    out: list[ReserveEntry] = []
    it_kept, it_dropped = iter(lines_kept), iter(lines_dropped)
    for i in range(len(positions)):
        if i in unused:
            line = next(it_dropped)
            out.append(replace(line, eligible_value=0, ineligible_reason=unused[i]))
        else:
            out.append(next(it_kept))
    return out, total, degraded


__all__ = ["evaluate_reserves", "holding_position", "statement_position"]
