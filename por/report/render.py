"""A reserve report as a web page (HTML) and as a table (CSV), in en, zh-HK or zh-CN.

Both are renderings of the signed report document, nothing more: every figure comes
from `ReserveReport`, amounts exact with all the token's decimals. The HTML page names
the report's digest and how to verify it; the CSV is one row per figure ("long" form:
date, attestation, record, subject, amount, unit, detail) with headers in the chosen
language and record names that stay the same in every language, so a spreadsheet or a
script reads any of them.

Pure string building: no I/O.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from por.core.reserve_report import REPORT_PAYLOAD_TYPE, Day, DayFigures, ReserveReport
from por.core.times import format_time
from por.report import i18n
from por.report.i18n import LANGUAGES, t

_HTML_LANG = {"en": "en", "zh-HK": "zh-Hant-HK", "zh-CN": "zh-Hans-CN"}


def html_lang(lang: str) -> str:
    return _HTML_LANG[i18n.check_language(lang)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Links:
    """Where the web page links to (the API route fills these; a file has none)."""

    self_url: str  # the page itself, without lang (…&lang= is appended)
    downloads: Sequence[tuple[str, str]] = ()  # (message key, URL) in this language
    previous: str | None = None
    next: str | None = None
    css: str | None = "/static/report.css"  # None: the CSS is inlined (a file on disk)
    # language -> URL of the same report in it; None: self_url with ?lang=
    languages: Mapping[str, str] | None = None
    site: bool = True  # links to the dashboard and holder page (not in a file on disk)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _amount(lang: str, report: ReserveReport, value: int) -> str:
    return i18n.amount(lang, value, report.token.decimals)


def _status(lang: str, status: str) -> str:
    return f'<span class="badge {_e(status)}">{_e(t(lang, "status." + status))}</span>'


def _table(head: Sequence[tuple[str, bool]], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """`head`: (label, numeric); cells are HTML already; data-label for narrow screens."""
    th = "".join(f"<th{' class=num' if num else ''}>{_e(label)}</th>" for label, num in head)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td data-label="{_e(label)}"{" class=num" if num else ""}>{cell}</td>'
            for (label, num), cell in zip(head, row, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _mono(text: str) -> str:
    return f'<span class="mono">{_e(text)}</span>'


def _day_section(lang: str, report: ReserveReport, day: Day) -> str:
    f = day.figures
    title = _e(i18n.day(lang, day.date))
    if f is None:
        return (
            f'<section class="day" id="d{day.date.isoformat()}"><h3>{title}</h3>'
            f'<p class="notice">{_e(t(lang, "report.no_attestation_day"))}</p></section>'
        )
    off = report.period.utc_offset
    a = f.attestation
    cite = t(
        lang,
        "report.end_of_day",
        sequence=a.sequence,
        as_of=i18n.instant(lang, a.as_of, off),
        digest=a.digest,
        log_index=a.log_index,
    )
    anchor = f"d{day.date.isoformat()}"
    parts = [
        f'<section class="day" id="{anchor}"><h3>{title} {_status(lang, f.status)}</h3>',
        f'<p class="cite">{_e(cite)}</p>',
    ]
    if f.reasons:
        items = "".join(f"<li>{_e(r)}</li>" for r in f.reasons)
        parts.append(f'<p>{_e(t(lang, "report.reasons"))}</p><ul class="reasons">{items}</ul>')
    parts.append(f"<h4>{_e(t(lang, 'report.chains'))}</h4>")
    budgets = any(c.budget is not None for c in f.chains)
    head = [
        (t(lang, "dash.chain"), False),
        (t(lang, "report.block"), False),
        (t(lang, "dash.total_supply"), True),
        (t(lang, "dash.excluded"), True),
        (t(lang, "report.circulating"), True),
    ] + ([(t(lang, "dash.budget"), True)] if budgets else [])
    rows = [
        [
            _mono(c.chain_id),
            f"{_e(i18n.group(lang, c.block_number))}<br>{_mono(c.block_hash)}",
            _e(_amount(lang, report, c.total_supply)),
            _e(_amount(lang, report, c.excluded)),
            _e(_amount(lang, report, c.circulating_supply)),
        ]
        + ([_e("—" if c.budget is None else _amount(lang, report, c.budget))] if budgets else [])
        for c in f.chains
    ]
    parts.append(_table(head, rows, "chains"))
    cur = report.token.currency
    for key, holdings, label_of in (
        ("report.by_class", f.by_asset_class, lambda k: t(lang, f"class.{k}")),
        ("report.by_custodian", f.by_custodian, lambda k: k),
    ):
        parts.append(f"<h4>{_e(t(lang, key))}</h4>")
        head = [
            (t(lang, "dash.asset_class" if key == "report.by_class" else "dash.custodian"), False),
            (t(lang, "dash.market_value", currency=cur), True),
            (t(lang, "dash.eligible_value", currency=cur), True),
        ]
        parts.append(
            _table(
                head,
                [
                    [
                        _e(label_of(h.key)),
                        _e(_amount(lang, report, h.market_value)),
                        _e(_amount(lang, report, h.eligible_value)),
                    ]
                    for h in holdings
                ],
            )
        )
    parts.append(f"<h4>{_e(t(lang, 'report.statements'))}</h4>")
    head = [
        (t(lang, "dash.custodian"), False),
        (t(lang, "report.statement_id"), False),
        (t(lang, "report.as_of"), False),
        (t(lang, "report.sha256"), False),
    ]
    rows = [
        [
            _e(s.custodian),
            f"{_e(s.format)} {_mono(s.id)}",
            _e(i18n.instant(lang, s.as_of, off)),
            _mono(s.sha256),
        ]
        for s in f.statements
    ]
    parts.append(_table(head, rows, "statements"))
    parts.append("</section>")
    return "".join(parts)


def _overview(lang: str, report: ReserveReport) -> str:
    head = [
        (t(lang, "report.day"), False),
        (t(lang, "report.status"), False),
        (t(lang, "report.ratio"), True),
        (t(lang, "report.eligible"), True),
        (t(lang, "report.circulating"), True),
        (t(lang, "report.headroom"), True),
        (t(lang, "report.sequence"), True),
    ]
    rows = []
    for d in report.days:
        day_link = f'<a href="#d{d.date.isoformat()}">{_e(i18n.day(lang, d.date))}</a>'
        f: DayFigures | None = d.figures
        if f is None:
            rows.append(
                [day_link, _e(t(lang, "report.no_attestation_day")), "—", "—", "—", "—", "—"]
            )
            continue
        headroom = f.headroom
        rows.append(
            [
                day_link,
                _status(lang, f.status),
                _e(f.ratio or "—"),
                _e(_amount(lang, report, f.eligible_reserves)),
                _e(_amount(lang, report, f.circulating_supply)),
                f'<span class="{"bad" if headroom < 0 else "ok"}">'
                f"{_e(_amount(lang, report, headroom))}</span>",
                _e(f"#{f.attestation.sequence}"),
            ]
        )
    return _table(head, rows, "overview")


def period_title(lang: str, report: ReserveReport) -> str:
    return f"{t(lang, 'report.' + report.period.kind)} — {report.period.label}"


def render_html(report: ReserveReport, lang: str, *, digest: str, links: Links) -> str:
    """The report as one HTML page in `lang` (`digest`: SHA-256 of the signed payload)."""
    i18n.check_language(lang)
    p = report.period
    s = report.summary
    title = period_title(lang, report)
    sep = "&" if "?" in links.self_url else "?"
    lang_urls = links.languages or {c: f"{links.self_url}{sep}lang={c}" for c in LANGUAGES}
    langs = "".join(
        f'<a href="{_e(lang_urls[code])}" lang="{html_lang(code)}"'
        f"{' aria-current=true' if code == lang else ''}>{_e(t(code, 'lang.name'))}</a>"
        for code in LANGUAGES
        if code in lang_urls
    )
    site_nav = (
        f'<nav><a href="/">{_e(t(lang, "nav.dashboard"))}</a>'
        f'<a href="/holder">{_e(t(lang, "nav.holder"))}</a></nav>'
        if links.site
        else ""
    )
    icon = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' if links.site else ""
    if links.css is None:
        from importlib.resources import files

        css = (files("por.api") / "static" / "report.css").read_text(encoding="utf-8")
        style = f"<style>{css}</style>"
    else:
        style = f'<link rel="stylesheet" href="{_e(links.css)}">'
    period_value = t(
        lang,
        "report.period_value",
        label=p.label,
        first=i18n.day(lang, p.first_day),
        last=i18n.day(lang, p.last_day),
        offset=p.utc_offset_text,
    )
    lowest = s.lowest_ratio
    lowest_text = (
        "—"
        if lowest is None
        else t(
            lang,
            "report.lowest_value",
            ratio=lowest.ratio,
            date=i18n.day(lang, lowest.date),
            sequence=lowest.sequence,
        )
    )
    command = f"por verify {p.kind}-{p.label}.dsse.json --from <API URL>"
    downloads = " · ".join(f'<a href="{_e(u)}">{_e(t(lang, k))}</a>' for k, u in links.downloads)
    nav_period = "".join(
        f'<a href="{_e(u)}" rel="{rel}">{arrow}</a>'
        for u, rel, arrow in ((links.previous, "prev", "←"), (links.next, "next", "→"))
        if u
    )
    cited = [d for d in report.days if d.figures is not None]
    body = [
        f'<!doctype html><html lang="{html_lang(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{icon}<title>{_e(title)}</title>{style}</head><body>",
        f'<header><span class="brand">{_e(t(lang, "brand"))}</span>{site_nav}'
        f'<nav class="langs" aria-label="{_e(t(lang, "nav.language"))}">{langs}</nav></header>',
        f'<main><h1 id="title">{_e(title)} <span class="period-nav">{nav_period}</span></h1>',
        f'<p class="{"final" if report.final else "provisional"}" id="finality">'
        f"{_e(t(lang, 'report.final' if report.final else 'report.provisional'))}</p>",
        '<dl class="meta">',
        f"<dt>{_e(t(lang, 'report.period'))}</dt><dd>{_e(period_value)}</dd>",
        f"<dt>{_e(t(lang, 'report.generated'))}</dt>"
        f"<dd>{_e(i18n.instant(lang, report.generated_at, p.utc_offset))}</dd>",
        f"<dt>{_e(t(lang, 'report.digest'))}</dt><dd>{_mono(digest)}</dd>",
        "</dl>",
        '<p class="muted">'
        + _e(
            t(
                lang,
                "report.unit",
                symbol=report.token.symbol,
                decimals=report.token.decimals,
                currency=report.token.currency,
            )
        )
        + "</p>",
    ]
    if downloads:
        body.append(f'<p class="downloads">{_e(t(lang, "report.downloads"))}: {downloads}</p>')
    body += [
        f'<section><h2>{_e(t(lang, "report.summary"))}</h2><dl class="meta" id="summary">',
        f"<dt>{_e(t(lang, 'report.days'))}</dt><dd>{s.days}</dd>",
        f"<dt>{_e(t(lang, 'report.days_attested'))}</dt><dd>{s.days_attested}</dd>",
        f"<dt>{_e(t(lang, 'report.days_backed'))}</dt><dd>{s.days_fully_backed}</dd>",
        f"<dt>{_e(t(lang, 'report.lowest'))}</dt><dd>{_e(lowest_text)}</dd>",
        "</dl>",
    ]
    if not cited:
        none = _e(t(lang, "report.no_attestation_period"))
        body.append(f'<p class="notice" id="no-attestation">{none}</p>')
    body.append("</section>")
    body.append(
        f"<section><h2>{_e(t(lang, 'report.overview'))}</h2>{_overview(lang, report)}</section>"
    )
    body.extend(_day_section(lang, report, d) for d in report.days)
    if cited:
        head = [
            (t(lang, "report.day"), False),
            (t(lang, "report.sequence"), True),
            (t(lang, "report.digest"), False),
            (t(lang, "report.log_index"), True),
        ]
        rows = [
            [
                _e(i18n.day(lang, d.date)),
                _e(f"#{d.figures.attestation.sequence}"),
                _mono(d.figures.attestation.digest),
                _e(d.figures.attestation.log_index),
            ]
            for d in cited
            if d.figures is not None
        ]
        body.append(
            f"<section><h2>{_e(t(lang, 'report.attestations'))}</h2>"
            f"{_table(head, rows, 'cited')}</section>"
        )
    body.append(
        f"<section><h2>{_e(t(lang, 'report.verify'))}</h2><p>"
        f"{_e(t(lang, 'report.verify_text', payload_type=REPORT_PAYLOAD_TYPE, command=command))}"
        f"</p><p>{_e(t(lang, 'report.digest_of', digest=digest))}</p></section>"
    )
    body.append("</main></body></html>\n")
    return "".join(body)


CSV_COLUMNS = (
    "date",
    "sequence",
    "digest",
    "log_index",
    "record",
    "subject",
    "amount",
    "unit",
    "detail",
)


def _decimal(value: int, decimals: int) -> str:
    """Exact, ungrouped, '.' as the separator: what a spreadsheet or script reads."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**decimals)
    return f"{sign}{whole}" if decimals == 0 else f"{sign}{whole}.{str(frac).rjust(decimals, '0')}"


def csv_rows(report: ReserveReport) -> list[list[str]]:
    """The report's figures, one row each (no header)."""
    dec, sym = report.token.decimals, report.token.symbol
    rows: list[list[str]] = []
    for d in report.days:
        f = d.figures
        date = d.date.isoformat()
        if f is None:
            rows.append([date, "", "", "", "no_attestation", "", "", "", ""])
            continue
        a = f.attestation
        base = [date, str(a.sequence), a.digest, str(a.log_index)]

        def row(
            record: str,
            subject: str,
            amount: int | None,
            detail: str = "",
            base: list[str] = base,
        ) -> None:
            rows.append(
                [
                    *base,
                    record,
                    subject,
                    "" if amount is None else _decimal(amount, dec),
                    "" if amount is None else sym,
                    detail,
                ]
            )

        rows.append([*base, "status", f.status, "", "", "; ".join(f.reasons)])
        rows.append([*base, "ratio", "", f.ratio or "", "", ""])
        row("eligible_reserves", "", f.eligible_reserves)
        row("circulating_supply", "", f.circulating_supply)
        row("liabilities_total", "", f.liabilities_total)
        row("headroom", "", f.headroom)
        for c in f.chains:
            block = f"block {c.block_number} {c.block_hash} {format_time(c.block_time)}"
            row("chain_total_supply", c.chain_id, c.total_supply, block)
            row("chain_excluded", c.chain_id, c.excluded, block)
            row("chain_circulating_supply", c.chain_id, c.circulating_supply, block)
            if c.budget is not None:
                row("chain_budget", c.chain_id, c.budget, block)
        for h in f.by_asset_class:
            row("asset_class_market_value", h.key, h.market_value)
            row("asset_class_eligible_value", h.key, h.eligible_value)
        for h in f.by_custodian:
            row("custodian_market_value", h.key, h.market_value)
            row("custodian_eligible_value", h.key, h.eligible_value)
        for s in f.statements:
            rows.append(
                [
                    *base,
                    "statement",
                    s.custodian,
                    "",
                    "",
                    f"{s.format} {s.id} as of {format_time(s.as_of)} sha256 {s.sha256}",
                ]
            )
    return rows


def render_csv(report: ReserveReport, lang: str) -> bytes:
    """UTF-8 with a byte order mark (spreadsheets then read the Chinese headers right)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([t(lang, f"csv.{c}") for c in CSV_COLUMNS])
    w.writerows(csv_rows(report))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


__all__ = [
    "CSV_COLUMNS",
    "Links",
    "csv_rows",
    "html_lang",
    "period_title",
    "render_csv",
    "render_html",
]
