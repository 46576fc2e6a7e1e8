"""Make a reserve report from the store, and sign it.

`end_of_day_attestations` reads the period's attestations by their as_of (one query)
and keeps, per local day, the one with the latest as_of (ties: the higher sequence);
`make_report` runs the pure rule (`por.core.reserve_report.build_report`) over them;
`sign_report` wraps the canonical bytes in a DSSE envelope with the report's own
payload type and the issuer's signers — the same key set as the attestations.

Reads the store; no clock (callers pass `now`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

from por.core.attestation import Token
from por.core.dsse import Envelope, Signer, sign_envelope
from por.core.reserve_report import (
    REPORT_PAYLOAD_TYPE,
    DayAttestation,
    Period,
    ReserveReport,
    build_report,
    local_date,
)
from por.errors import InputError
from por.store.base import LogInclusion, StoredAttestation


class ReportSource(Protocol):
    """What a report reads from the store (por.store.Store has all three)."""

    def as_of_between(self, start: datetime, end: datetime) -> list[tuple[int, datetime]]: ...
    def get(self, sequence: int) -> StoredAttestation: ...
    def inclusion(self, sequence: int) -> LogInclusion: ...
    def latest(self) -> StoredAttestation | None: ...


def end_of_day_attestations(source: ReportSource, period: Period) -> dict[date, DayAttestation]:
    """Per local day of `period`, its end-of-day attestation (latest as_of in the day)."""
    best: dict[date, tuple[datetime, int]] = {}
    for sequence, as_of in source.as_of_between(period.start, period.end):
        d = local_date(as_of, period.utc_offset)
        if d not in best or (as_of, sequence) > best[d]:
            best[d] = (as_of, sequence)
    out: dict[date, DayAttestation] = {}
    for d, (_, sequence) in sorted(best.items()):
        stored = source.get(sequence)
        out[d] = DayAttestation(
            attestation=stored.attestation,
            digest=stored.digest,
            log_index=source.inclusion(sequence).leaf_index,
        )
    return out


def make_report(
    source: ReportSource, period: Period, *, now: datetime, token: Token | None = None
) -> ReserveReport:
    """The report of `period` as of `now` (provisional while the period runs).

    `token` defaults to the latest attestation's; with neither, there is nothing to
    report on yet.
    """
    if token is None:
        latest = source.latest()
        if latest is None:
            raise InputError("no attestation has been recorded yet: there is nothing to report")
        token = latest.attestation.token
    days = end_of_day_attestations(source, period)
    open_days = set(period.days_until(now))
    return build_report(
        period,
        generated_at=now,
        token=token,
        end_of_day={d: a for d, a in days.items() if d in open_days},
    )


def sign_report(report: ReserveReport, signers: Sequence[Signer]) -> Envelope:
    """A DSSE envelope over the report's canonical bytes (payload type of its own)."""
    return sign_envelope(report.to_bytes(), REPORT_PAYLOAD_TYPE, list(signers))


__all__ = ["ReportSource", "end_of_day_attestations", "make_report", "sign_report"]
