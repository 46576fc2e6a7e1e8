"""The periodic reserve report: `/v1/reports/{period}` (signed JSON, HTML, CSV, PDF) and
the web page `/report`.

A report covers a day, an ISO week or a calendar month of the configured calendar
(`[disclosure] report_utc_offset`); `at` is any date in it, by default the last period
that has ended (yesterday, last week, last month). The period running now gives a
PROVISIONAL report. Reports are made from the store on demand, signed with the issuer
key valid at their `generated_at` (`ApiDeps.report_signers`), and kept until an
attestation of the period is recorded (por.api.report_cache). docs/reports.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from por.api.deps import (
    REPORT_COST,
    ClientDep,
    StateDep,
    StoreDep,
    VerifiedReads,
    busy,
    take_history_tokens,
)
from por.api.http import REVALIDATE, cached_response, dumps
from por.core.dsse import Envelope
from por.core.reserve_report import (
    Period,
    ReserveReport,
    parse_utc_offset,
    period_containing,
    previous_period,
)
from por.core.times import format_time
from por.errors import InputError

router = APIRouter(tags=["reports"])

Kind = Literal["daily", "weekly", "monthly"]
Format = Literal["json", "html", "csv", "pdf"]
Lang = Literal["en", "zh-HK", "zh-CN"]
DEFAULT_OFFSET = "+00:00"

AtQuery = Annotated[
    date | None,
    Query(description="any date of the period (YYYY-MM-DD); default: the last period ended"),
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedReport:
    report: ReserveReport
    envelope: Envelope
    digest: str  # SHA-256 of the signed payload


def _period(state: StateDep, kind: str, at: date | None) -> Period:
    site = state.deps.site or {}
    offset = parse_utc_offset(site.get("report_utc_offset", DEFAULT_OFFSET))
    now = state.deps.wall_clock()
    period = (
        previous_period(kind, now, offset) if at is None else period_containing(kind, at, offset)
    )
    if period.start >= now:
        raise InputError(
            f"the {kind} period {period.label} begins at {format_time(period.start)}, after "
            f"now ({format_time(now)}): there is nothing to report yet",
            where="at",
        )
    return period


def signed_report(state: StateDep, store: StoreDep, kind: str, at: date | None) -> SignedReport:
    """The signed report of the period (made now, or kept from an earlier request)."""
    from por.report.build import make_report, sign_report

    signers_at = state.deps.report_signers
    if signers_at is None:
        raise HTTPException(
            status_code=503,
            detail="this instance holds no issuer key: it cannot sign reserve reports",
        )
    period = _period(state, kind, at)
    now = state.deps.wall_clock()
    rows = store.as_of_between(period.start, period.end)
    # A new attestation of the period makes a new report; so does a day beginning (a
    # provisional report lists the days begun) — nothing else.
    key = (
        kind,
        period.label,
        period.utc_offset_text,
        hashlib.sha256(repr(rows).encode()).hexdigest(),
        None if now >= period.end else tuple(period.days_until(now)),
    )

    def make() -> SignedReport:
        report = make_report(VerifiedReads(store, state.integrity), period, now=now)
        envelope = sign_report(report, signers_at(report.generated_at))
        return SignedReport(report=report, envelope=envelope, digest=report.digest())

    item = state.reports.reports.get(key, make)
    if not isinstance(item, SignedReport):  # pragma: no cover - only SignedReports are kept
        raise TypeError(item)
    return item


def _page_urls(
    state: StateDep, kind: str, signed: SignedReport, lang: str
) -> tuple[str, list[tuple[str, str]], str | None, str | None]:
    p = signed.report.period
    at = p.first_day.isoformat()
    api = f"/v1/reports/{kind}?at={at}"
    downloads = [
        ("report.pdf", f"{api}&format=pdf&lang={lang}"),
        ("report.csv", f"{api}&format=csv&lang={lang}"),
        ("report.signed", f"{api}&format=json"),
    ]
    prev_day = p.first_day - timedelta(days=1)
    next_day = p.last_day + timedelta(days=1)
    nxt = period_containing(kind, next_day, p.utc_offset)
    now = state.deps.wall_clock()
    return (
        f"/report?period={kind}&at={at}",
        downloads,
        f"/report?period={kind}&at={prev_day.isoformat()}&lang={lang}",
        f"/report?period={kind}&at={next_day.isoformat()}&lang={lang}" if nxt.start < now else None,
    )


def _rendered(state: StateDep, kind: str, signed: SignedReport, fmt: str, lang: str) -> bytes:
    def render() -> bytes:
        if fmt == "pdf":
            from por.report.pdf import render_pdf

            return render_pdf(signed.report, lang, digest=signed.digest)
        if fmt == "csv":
            from por.report.render import render_csv

            return render_csv(signed.report, lang)
        from por.report.render import Links, render_html

        self_url, downloads, prev, nxt = _page_urls(state, kind, signed, lang)
        links = Links(self_url=self_url, downloads=downloads, previous=prev, next=nxt)
        return render_html(signed.report, lang, digest=signed.digest, links=links).encode()

    return state.reports.renderings.get((signed.digest, fmt, lang), render)


_MEDIA = {
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}


@router.get(
    "/v1/reports/{period}",
    responses={
        200: {
            "content": {
                "application/json": {},
                "text/html": {},
                "text/csv": {},
                "application/pdf": {},
            },
            "description": "the signed report (json) or a rendering of it",
        },
        422: {"description": "bad period, date or a period that has not begun"},
        503: {"description": "this instance cannot sign reports, or the store is down"},
    },
)
def reserve_report(
    request: Request,
    *,
    state: StateDep,
    store: StoreDep,
    client: ClientDep,
    period: Kind,
    at: AtQuery = None,
    fmt: Annotated[Format, Query(alias="format", description="json: the signed report")] = "json",
    lang: Annotated[Lang, Query(description="language of html, csv and pdf")] = "en",
) -> Response:
    """The reserve report of a day, week or month: per day, tokens outstanding per chain,
    reserves by asset class and custodian, ratio, status, statements and the attestations
    cited. `json` answers `{"period","label","digest","envelope","report"}`: verify the
    envelope (`por verify`), then read its payload."""
    take_history_tokens(state, client, REPORT_COST)
    with state.expensive.slot(busy):
        return _report_response(request, state, store, period, at, fmt, lang)


def _report_response(  # noqa: PLR0917 - the route's own parameters, handed on
    request: Request,
    state: StateDep,
    store: StoreDep,
    period: Kind,
    at: date | None,
    fmt: Format,
    lang: Lang,
) -> Response:
    signed = signed_report(state, store, period, at)
    p = signed.report.period
    if fmt == "json":
        body = dumps(
            {
                "period": p.kind,
                "label": p.label,
                "digest": signed.digest,
                "envelope": signed.envelope.to_dict(),
                "report": signed.report.to_dict(),
            }
        )
        return cached_response(request, body, cache_control=REVALIDATE, etag=signed.digest)
    body = _rendered(state, period, signed, fmt, lang)
    response = cached_response(
        request,
        body,
        cache_control=REVALIDATE,
        media_type=_MEDIA[fmt],
        etag=f"{signed.digest[:32]}-{fmt}-{lang}",
    )
    if fmt in ("csv", "pdf"):
        name = f"{p.kind}-{p.label}.{lang}.{fmt}"
        disposition = "attachment" if fmt == "csv" else "inline"
        response.headers["Content-Disposition"] = f'{disposition}; filename="{name}"'
    return response


def preferred_language(accept: str | None) -> str:
    """en, zh-HK or zh-CN from an Accept-Language header (first Chinese or English wins)."""
    for part in (accept or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag in ("zh-hk", "zh-tw", "zh-mo") or tag.startswith("zh-hant"):
            return "zh-HK"
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "en"


@router.get("/report", include_in_schema=False)
def report_page(
    request: Request,
    *,
    state: StateDep,
    store: StoreDep,
    client: ClientDep,
    period: Kind = "daily",
    at: AtQuery = None,
    lang: Lang | None = None,
) -> Response:
    """The report as a web page, in the language asked for (or the browser's)."""
    chosen = lang or preferred_language(request.headers.get("accept-language"))
    take_history_tokens(state, client, REPORT_COST)
    with state.expensive.slot(busy):
        signed = signed_report(state, store, period, at)
        body = _rendered(state, period, signed, "html", chosen)
    response = cached_response(
        request,
        body,
        cache_control=REVALIDATE,
        media_type=_MEDIA["html"],
        etag=f"{signed.digest[:32]}-html-{chosen}",
    )
    response.headers["Vary"] = "Accept-Language"
    return response
