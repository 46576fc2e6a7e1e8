"""A reserve report as PDF (ReportLab), in en, zh-HK or zh-CN, fonts embedded.

ReportLab embeds TrueType fonts (glyf outlines) as subsets; it cannot embed CFF/OpenType
outlines such as Noto CJK's. So the CJK text is set in WenQuanYi Zen Hei (Debian
`fonts-wqy-zenhei`, a TrueType collection covering Traditional and Simplified Chinese)
and the Latin text in DejaVu Sans (`fonts-dejavu-core`); `./dev setup` installs both.
Every figure is exact (all token decimals, grouped), as in the HTML; the footer of each
page names the report's digest.

Reads the font files; writes nothing (returns bytes).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from por.core.reserve_report import ReserveReport
from por.errors import ConfigError
from por.report import i18n
from por.report.i18n import t
from por.report.render import period_title

FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/local/share/fonts"))
CJK_FONT = ("wqy/wqy-zenhei.ttc", 0)  # (path under a font dir, subfont index)
LATIN_FONT = ("dejavu/DejaVuSans.ttf", 0)
LATIN_BOLD = ("dejavu/DejaVuSans-Bold.ttf", 0)
MONO_FONT = ("dejavu/DejaVuSansMono.ttf", 0)


def _find(rel: str) -> Path:
    for d in FONT_DIRS:
        if (d / rel).is_file():
            return d / rel
    raise ConfigError(
        f"font {rel} not found under {', '.join(map(str, FONT_DIRS))}: install Debian's "
        "fonts-wqy-zenhei and fonts-dejavu-core (./dev setup)",
        where="por.report.pdf",
    )


def _register() -> dict[str, str]:
    """Register the fonts once; returns role -> font name."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    names = {"cjk": "PorCJK", "latin": "PorSans", "bold": "PorSansBold", "mono": "PorMono"}
    registered = set(pdfmetrics.getRegisteredFontNames())
    for role, (rel, index) in (
        ("cjk", CJK_FONT),
        ("latin", LATIN_FONT),
        ("bold", LATIN_BOLD),
        ("mono", MONO_FONT),
    ):
        if names[role] not in registered:
            pdfmetrics.registerFont(TTFont(names[role], str(_find(rel)), subfontIndex=index))
    return names


def render_pdf(report: ReserveReport, lang: str, *, digest: str) -> bytes:  # noqa: PLR0915 - one page layout, top to bottom
    """The report as an A4 PDF in `lang`."""
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    i18n.check_language(lang)
    fonts = _register()
    body_font = fonts["latin"] if lang == "en" else fonts["cjk"]
    bold_font = fonts["bold"] if lang == "en" else fonts["cjk"]
    wrap = "CJK"  # break anywhere when needed: long hashes and Chinese text alike
    base = ParagraphStyle("base", fontName=body_font, fontSize=8.5, leading=11, wordWrap=wrap)
    small = ParagraphStyle("small", parent=base, fontSize=7, leading=9)
    num = ParagraphStyle("num", parent=base, alignment=TA_RIGHT)
    mono = ParagraphStyle("mono", parent=small, fontName=fonts["mono"])
    h1 = ParagraphStyle(
        "h1", parent=base, fontName=bold_font, fontSize=15, leading=19, spaceAfter=6
    )
    h2 = ParagraphStyle(
        "h2", parent=base, fontName=bold_font, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4
    )
    h3 = ParagraphStyle(
        "h3", parent=base, fontName=bold_font, fontSize=9.5, leading=12, spaceBefore=6, spaceAfter=2
    )
    warn = ParagraphStyle("warn", parent=base, textColor=colors.HexColor("#8a5a00"))
    label = ParagraphStyle(
        "label", parent=small, textColor=colors.HexColor("#5b6573"), spaceBefore=4, spaceAfter=1
    )

    def esc(text: object) -> str:
        return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def p(text: object, style: ParagraphStyle = base) -> Any:
        return Paragraph(esc(text), style)

    def amt(value: int) -> str:
        return i18n.amount(lang, value, report.token.decimals)

    def table(
        head: Sequence[str],
        rows: Sequence[Sequence[Any]],
        widths: Sequence[float],
        numeric: Sequence[int] = (),
    ) -> Any:
        data = [[p(h, small) for h in head]]
        for r in rows:
            data.append(
                [
                    c if not isinstance(c, str) else p(c, num if i in numeric else base)
                    for i, c in enumerate(r)
                ]
            )
        tbl = Table(data, colWidths=[w * mm for w in widths], repeatRows=1)
        tbl.setStyle(
            TableStyle(
                [
                    ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#5b6573")),
                    ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.HexColor("#d9dee5")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 2),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 2),
                ]
            )
        )
        return tbl

    per = report.period
    off = per.utc_offset
    s = report.summary
    story: list[Any] = [
        p(period_title(lang, report), h1),
        p(
            t(lang, "report.final" if report.final else "report.provisional"),
            base if report.final else warn,
        ),
        Spacer(1, 3 * mm),
        p(
            f"{t(lang, 'report.period')}: "
            + t(
                lang,
                "report.period_value",
                label=per.label,
                first=i18n.day(lang, per.first_day),
                last=i18n.day(lang, per.last_day),
                offset=per.utc_offset_text,
            )
        ),
        p(f"{t(lang, 'report.generated')}: {i18n.instant(lang, report.generated_at, off)}"),
        p(
            t(
                lang,
                "report.unit",
                symbol=report.token.symbol,
                decimals=report.token.decimals,
                currency=report.token.currency,
            )
        ),
        p(t(lang, "report.digest_of", digest="")),
        p(digest, mono),
        p(t(lang, "report.summary"), h2),
    ]
    lowest = s.lowest_ratio
    story.append(
        table(
            [
                t(lang, "report.days"),
                t(lang, "report.days_attested"),
                t(lang, "report.days_backed"),
                t(lang, "report.lowest"),
            ],
            [
                [
                    str(s.days),
                    str(s.days_attested),
                    str(s.days_fully_backed),
                    "—"
                    if lowest is None
                    else t(
                        lang,
                        "report.lowest_value",
                        ratio=lowest.ratio,
                        date=i18n.day(lang, lowest.date),
                        sequence=lowest.sequence,
                    ),
                ]
            ],
            (25, 35, 40, 80),
        )
    )
    if s.days_attested == 0:
        story += [Spacer(1, 3 * mm), p(t(lang, "report.no_attestation_period"), warn)]
    story.append(p(t(lang, "report.overview"), h2))
    rows = []
    for d in report.days:
        f = d.figures
        if f is None:
            rows.append(
                [
                    i18n.day(lang, d.date),
                    t(lang, "report.no_attestation_day"),
                    "—",
                    "—",
                    "—",
                    "—",
                    "—",
                ]
            )
        else:
            rows.append(
                [
                    i18n.day(lang, d.date),
                    t(lang, f"status.{f.status}"),
                    f.ratio or "—",
                    amt(f.eligible_reserves),
                    amt(f.circulating_supply),
                    amt(f.headroom),
                    f"#{f.attestation.sequence}",
                ]
            )
    story.append(
        table(
            [
                t(lang, "report.day"),
                t(lang, "report.status"),
                t(lang, "report.ratio"),
                t(lang, "report.eligible"),
                t(lang, "report.circulating"),
                t(lang, "report.headroom"),
                t(lang, "report.sequence"),
            ],
            rows,
            (26, 27, 15, 32, 32, 32, 16),
            numeric=(2, 3, 4, 5, 6),
        )
    )
    cur = report.token.currency
    for d in report.days:
        f = d.figures
        if f is None:
            continue
        a = f.attestation
        block: list[Any] = [
            p(f"{i18n.day(lang, d.date)} — {t(lang, f'status.{f.status}')}", h3),
            p(
                t(
                    lang,
                    "report.end_of_day",
                    sequence=a.sequence,
                    as_of=i18n.instant(lang, a.as_of, off),
                    digest=a.digest,
                    log_index=a.log_index,
                ),
                small,
            ),
        ]
        for r in f.reasons:
            block.append(p(r, warn))
        block.append(p(t(lang, "report.chains"), label))
        block.append(
            table(
                [
                    t(lang, "dash.chain"),
                    t(lang, "report.block"),
                    t(lang, "dash.total_supply"),
                    t(lang, "dash.excluded"),
                    t(lang, "report.circulating"),
                    t(lang, "dash.budget"),
                ],
                [
                    [
                        p(c.chain_id, mono),
                        p(f"{i18n.group(lang, c.block_number)} {c.block_hash}", mono),
                        amt(c.total_supply),
                        amt(c.excluded),
                        amt(c.circulating_supply),
                        "—" if c.budget is None else amt(c.budget),
                    ]
                    for c in f.chains
                ],
                (24, 38, 30, 28, 30, 30),
                numeric=(2, 3, 4, 5),
            )
        )
        block.append(p(t(lang, "report.by_class"), label))
        block.append(
            table(
                [
                    t(lang, "dash.asset_class"),
                    t(lang, "dash.market_value", currency=cur),
                    t(lang, "dash.eligible_value", currency=cur),
                ],
                [
                    [t(lang, f"class.{h.key}"), amt(h.market_value), amt(h.eligible_value)]
                    for h in f.by_asset_class
                ],
                (60, 60, 60),
                numeric=(1, 2),
            )
        )
        block.append(p(t(lang, "report.by_custodian"), label))
        block.append(
            table(
                [
                    t(lang, "dash.custodian"),
                    t(lang, "dash.market_value", currency=cur),
                    t(lang, "dash.eligible_value", currency=cur),
                ],
                [[h.key, amt(h.market_value), amt(h.eligible_value)] for h in f.by_custodian],
                (60, 60, 60),
                numeric=(1, 2),
            )
        )
        block.append(p(t(lang, "report.statements"), label))
        block.append(
            table(
                [
                    t(lang, "dash.custodian"),
                    t(lang, "report.statement_id"),
                    t(lang, "report.as_of"),
                    t(lang, "report.sha256"),
                ],
                [
                    [
                        s_.custodian,
                        f"{s_.format} {s_.id}",
                        i18n.instant(lang, s_.as_of, off),
                        p(s_.sha256, mono),
                    ]
                    for s_ in f.statements
                ],
                (40, 45, 40, 55),
            )
        )
        story.append(KeepTogether(block[:4]))
        story += block[4:]
    story.append(p(t(lang, "report.verify"), h2))
    story.append(
        p(
            t(
                lang,
                "report.verify_text",
                payload_type="application/vnd.por.reserve-report+json",
                command=f"por verify {per.kind}-{per.label}.dsse.json --from <API URL>",
            )
        )
    )

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(fonts["mono"], 6.5)
        canvas.drawString(
            15 * mm, 8 * mm, f"{report.token.symbol} {per.kind} {per.label} · sha256 {digest}"
        )
        canvas.setFont(body_font, 7)
        canvas.drawRightString(195 * mm, 8 * mm, t(lang, "report.page", page=doc.page))
        canvas.restoreState()

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=14 * mm,
        bottomMargin=14 * mm,
        title=period_title(lang, report),
        author=report.token.symbol,
        subject=f"sha256 {digest}",
        lang={"en": "en", "zh-HK": "zh-HK", "zh-CN": "zh-CN"}[lang],
        invariant=True,  # the same report and language give the same bytes
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


__all__ = ["render_pdf"]
