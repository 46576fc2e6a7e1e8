"""`por report`: make, sign and write the periodic reserve report from the store.

    por report --period daily|weekly|monthly [--at YYYY-MM-DD] [--config por.toml]
               [--out DIR] [--lang en,zh-HK,zh-CN] [--formats html,csv,pdf]

Writes `<period>-<label>.dsse.json` (the signed report: what `por verify` checks) and one
`<period>-<label>.<lang>.<html|csv|pdf>` per language and format into DIR, each file
atomically. `--at` is any date of the period, in the report calendar of `[disclosure]
report_utc_offset`; without it, the last period that has ended. A period still running
gives a PROVISIONAL report (it says so); a period with no attestation gives a report that
says so. The library does the work (por.report, por.core.reserve_report); this module
reads the configuration, calls, writes and prints.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from por.errors import InputError

FORMATS = ("html", "csv", "pdf")


def parse_day(text: str, *, where: str) -> date:
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"must be a date YYYY-MM-DD, got {text!r}", where=where) from None


def _choices(text: str, allowed: tuple[str, ...], *, where: str) -> list[str]:
    chosen = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in chosen if x not in allowed]
    if bad or not chosen:
        raise InputError(
            f"must be a comma-separated list of {', '.join(allowed)}, got {text!r}", where=where
        )
    return chosen


def _write(
    report: Any, envelope: Any, digest: str, *, out: Path, langs: list[str], formats: list[str]
) -> list[Path]:
    from por.fileio import write_atomic
    from por.report.render import Links, render_csv, render_html

    period = report.period
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{period.kind}-{period.label}"
    written = [out / f"{stem}.dsse.json"]
    write_atomic(written[0], json.dumps(envelope.to_dict(), indent=2).encode() + b"\n")
    for lang in langs:
        for fmt in formats:
            path = out / f"{stem}.{lang}.{fmt}"
            if fmt == "html":
                links = Links(
                    self_url=f"{stem}.{lang}.html",
                    css=None,
                    site=False,
                    languages={c: f"{stem}.{c}.html" for c in langs},
                )
                data = render_html(report, lang, digest=digest, links=links).encode()
            elif fmt == "csv":
                data = render_csv(report, lang)
            else:
                from por.report.pdf import render_pdf

                data = render_pdf(report, lang, digest=digest)
            write_atomic(path, data)
            written.append(path)
    return written


def cmd_report(args: argparse.Namespace) -> int:
    from por.core.reserve_report import parse_utc_offset, period_containing, previous_period
    from por.report.build import make_report, sign_report
    from por.report.i18n import LANGUAGES
    from por.service.config import load_config
    from por.service.signing import load_keyring
    from por.service.storage import open_store

    langs = _choices(args.lang, LANGUAGES, where="--lang")
    formats = _choices(args.formats, FORMATS, where="--formats")
    cfg = load_config(args.config)
    offset = parse_utc_offset(
        cfg.disclosure.report_utc_offset, where="disclosure.report_utc_offset"
    )
    now = datetime.now(UTC)
    period = (
        previous_period(args.period, now, offset)
        if args.at is None
        else period_containing(args.period, parse_day(args.at, where="--at"), offset)
    )
    ring = load_keyring(cfg)
    try:
        store = open_store(cfg, materialize=False)
        try:
            report = make_report(store, period, now=now)
        finally:
            store.close()
        envelope = sign_report(report, ring.signers_at(report.generated_at))
    finally:
        ring.close()
    digest = report.digest()
    written = _write(report, envelope, digest, out=args.out, langs=langs, formats=formats)
    s = report.summary
    state = "final" if report.final else "PROVISIONAL (the period has not ended)"
    print(
        f"report {period.kind} {period.label} (UTC{period.utc_offset_text}), {state}: "
        f"{s.days} day(s), {s.days_attested} attested, {s.days_fully_backed} fully backed; "
        f"digest {digest}"
    )
    if s.days_attested == 0:
        print(f"note: no attestation was recorded in {period.kind} period {period.label}")
    elif s.lowest_ratio is not None:
        lo = s.lowest_ratio
        print(f"lowest end-of-day ratio {lo.ratio} on {lo.date} (attestation {lo.sequence})")
    for path in written:
        print(f"wrote {path}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report", help="make, sign and write the periodic reserve report (HTML, CSV, PDF)"
    )
    p.add_argument("--period", required=True, choices=("daily", "weekly", "monthly"))
    p.add_argument("--at", metavar="YYYY-MM-DD", help="a date of the period (default: last ended)")
    p.add_argument("--config", type=Path, default=Path("por.toml"))
    p.add_argument("--out", type=Path, default=Path("reports"), help="folder (default: reports)")
    p.add_argument("--lang", default="en,zh-HK,zh-CN", help="languages (default: all three)")
    p.add_argument("--formats", default="html,csv,pdf", help="renderings (default: all three)")
    p.set_defaults(func=cmd_report)
