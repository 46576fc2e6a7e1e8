"""From ledger exports to the attestation's off-chain liabilities: leaves and totals.

Per source, the export that counts is the newest one dated at or before the run's as-of
(plus the policy's future skew); an export dated later is never used (and says so as a
DEGRADED reason), one older than the source's maximum age still counts — an old figure
of what is owed is better than none — but makes the run DEGRADED. Two exports of one
source with the same as-of and different contents: the one with the HIGHER total counts
(liabilities are never understated) and the run is DEGRADED. A source with no usable
export refuses the run: leaving its liabilities out would understate them.

Every account becomes a `ledger:` leaf of the sum tree; an account listed by two sources
refuses the run. No I/O: values in, values out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from por.core.attestation import (
    LEDGER_CATEGORIES,
    LedgerEvidence,
    LedgerSection,
    LedgerSourceRef,
)
from por.core.times import format_time
from por.errors import MismatchError, SourceError
from por.ledger.export import LedgerAccount, LedgerExport


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One export a source offers, with the key id of its verified signature (if any)."""

    export: LedgerExport
    signed_by: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerResult:
    accounts: tuple[LedgerAccount, ...]
    section: LedgerSection
    reasons: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.section.total


def select_exports(
    offered: Mapping[str, Sequence[Candidate]],
    *,
    as_of: datetime,
    max_age_s: Mapping[str, int],
    max_future_skew_s: int = 300,
) -> LedgerResult:
    """The ledger section and leaves for `as_of` (module docstring)."""
    reasons: list[str] = []
    chosen: list[tuple[str, Candidate]] = []
    latest_ok = as_of + timedelta(seconds=max_future_skew_s)
    for source in sorted(offered):
        cands = offered[source]
        future = [c for c in cands if c.export.as_of > latest_ok]
        usable = [c for c in cands if c.export.as_of <= latest_ok]
        for c in future:
            reasons.append(
                f"ledger {source}: export {c.export.ledger_id} dated "
                f"{format_time(c.export.as_of)}, after the as-of {format_time(as_of)}: never used"
            )
        if not usable:
            raise SourceError(
                f"no export dated at or before {format_time(as_of)}: its liabilities are "
                "unknown, and leaving them out would understate them (no attestation)",
                where=f"ledger {source}",
            )
        newest = max(c.export.as_of for c in usable)
        tied = [c for c in usable if c.export.as_of == newest]
        pick = max(tied, key=lambda c: (c.export.total, c.export.sha256))
        if len({c.export.sha256 for c in tied}) > 1:
            reasons.append(
                f"ledger {source}: {len(tied)} different exports as of {format_time(newest)}; "
                f"the highest total ({pick.export.total}) counts"
            )
        age_s = (as_of - newest).total_seconds()
        limit = max_age_s.get(source)
        if limit is not None and age_s > limit:
            reasons.append(
                f"ledger {source}: export {pick.export.ledger_id} is {int(age_s)} s old "
                f"(maximum {limit} s)"
            )
        chosen.append((source, pick))

    accounts: list[LedgerAccount] = []
    seen: dict[str, str] = {}
    refs: list[LedgerSourceRef] = []
    evidence: list[LedgerEvidence] = []
    by_category = dict.fromkeys(LEDGER_CATEGORIES, 0)
    for source, c in chosen:
        e = c.export
        for a in e.accounts:
            if a.account in seen:
                raise MismatchError(
                    f"ledger account {a.account} is in two ledger sources "
                    f"({seen[a.account]} and {source})",
                    where=f"{e.name}:{a.line}",
                )
            seen[a.account] = source
            accounts.append(a)
            by_category[a.category] += a.balance
            if a.evidence:
                evidence.append(
                    LedgerEvidence(
                        account=a.account,
                        category=a.category,
                        balance=a.balance,
                        fields=a.evidence,
                    )
                )
        refs.append(
            LedgerSourceRef(
                name=source,
                format=e.format,
                id=e.ledger_id,
                as_of=e.as_of,
                sha256=e.sha256,
                signed_by=c.signed_by,
                accounts=len(e.accounts),
                total=e.total,
            )
        )
    section = LedgerSection(
        sources=tuple(refs),
        categories=tuple((k, by_category[k]) for k in LEDGER_CATEGORIES),
        total=sum(by_category.values()),
        evidence=tuple(sorted(evidence, key=lambda x: x.account)),
    )
    return LedgerResult(accounts=tuple(accounts), section=section, reasons=tuple(reasons))


__all__ = ["Candidate", "LedgerResult", "select_exports"]
