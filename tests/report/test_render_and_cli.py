"""The reserve report's renderings and `por report` / `por verify` as a user runs them.

The PDF is opened with pdftotext (Debian poppler-utils) and must carry the figures, in
English and in both Chinese scripts (the CJK font embedded); the CSV parses back to the
exact figures; `por report` writes a signed report that `por verify` passes against the
published attestations, and fails once a figure is changed and re-signed.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from por.cli.main import main
from por.core.dsse import Ed25519Signer, sign_envelope
from por.core.reserve_report import (
    REPORT_PAYLOAD_TYPE,
    ReserveReport,
    decode_report,
    parse_utc_offset,
    period_containing,
)
from por.report import i18n
from por.report.build import make_report
from por.report.pdf import render_pdf
from por.report.render import CSV_COLUMNS, Links, render_csv, render_html
from por.store import Store
from tests.report.world import record_at
from tests.service.conftest import PASSPHRASE, write_world
from tests.store.factory import World

HK = parse_utc_offset("+08:00")
T0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
PDFTOTEXT = shutil.which("pdftotext")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> ReserveReport:
    tmp = tmp_path_factory.mktemp("render")
    store = Store.open(None, data_dir=tmp / "d", attestations_dir=tmp / "a", migrate=True)
    w = World()
    for hours, pct in ((0, 110), (26, 96), (50, 104)):
        record_at(store, w, T0 + timedelta(hours=hours), reserves_pct=pct)
    r = make_report(
        store, period_containing("weekly", date(2026, 1, 5), HK), now=T0 + timedelta(days=7)
    )
    store.close()
    return r


def _pdf_text(data: bytes, tmp: Path) -> str:
    if PDFTOTEXT is None:
        pytest.fail("pdftotext is missing: ./dev setup installs poppler-utils")
    path = tmp / "r.pdf"
    path.write_bytes(data)
    out = subprocess.run([PDFTOTEXT, str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8")


@pytest.mark.parametrize("lang", ["en", "zh-HK", "zh-CN"])
def test_the_pdf_carries_the_figures_in_each_language(
    report: ReserveReport, lang: str, tmp_path: Path
) -> None:
    data = render_pdf(report, lang, digest=report.digest())
    assert data.startswith(b"%PDF-")
    assert render_pdf(report, lang, digest=report.digest()) == data  # same input, same bytes
    text = _pdf_text(data, tmp_path)
    tue = report.days[1].figures
    assert tue is not None
    for figure in (
        i18n.amount(lang, tue.eligible_reserves, 6),
        i18n.amount(lang, tue.circulating_supply, 6),
        i18n.amount(lang, tue.headroom, 6),  # negative: a shortfall
        tue.ratio,
        i18n.amount(lang, tue.chains[0].total_supply, 6),
        f"#{tue.attestation.sequence}",
    ):
        assert figure and figure in text, (lang, figure)
    flat = "".join(text.split())  # table cells wrap: compare without whitespace

    def has(phrase: str) -> bool:
        return "".join(phrase.split()) in flat

    assert has(report.digest())
    assert has(i18n.t(lang, "report.weekly"))
    assert has(i18n.t(lang, "report.no_attestation_day"))  # Thu to Sun
    if lang != "en":  # the glyphs are embedded, not lost: pdftotext reads them back
        assert has(i18n.t(lang, "status.UNDER_COLLATERALIZED"))
        assert has(i18n.t(lang, "report.by_class"))


def test_the_csv_parses_back_to_the_exact_figures(report: ReserveReport) -> None:
    data = render_csv(report, "zh-HK")
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == [i18n.t("zh-HK", f"csv.{c}") for c in CSV_COLUMNS]
    by = {(r[0], r[4], r[5]): r for r in rows[1:]}
    mon = report.days[0].figures
    assert mon is not None
    row = by[("2026-01-05", "eligible_reserves", "")]
    whole, frac = divmod(mon.eligible_reserves, 10**6)
    assert row[6] == f"{whole}.{frac:06d}" and row[7] == "CNHC"
    assert row[1] == str(mon.attestation.sequence) and row[2] == mon.attestation.digest
    assert by[("2026-01-08", "no_attestation", "")]
    chain = by[("2026-01-05", "chain_total_supply", "eip155:1")]
    assert str(mon.chains[0].block_number) in chain[8]


def test_the_html_names_the_report_and_offers_every_language(report: ReserveReport) -> None:
    page = render_html(
        report, "zh-CN", digest=report.digest(), links=Links(self_url="/report?period=weekly")
    )
    assert '<html lang="zh-Hans-CN">' in page
    assert report.digest() in page
    assert "/report?period=weekly&amp;lang=zh-HK" in page
    assert i18n.t("zh-CN", "report.final") in page
    assert 'id="no-attestation"' not in page  # three days were attested


def _attest_on_days(world_root: Path) -> None:
    from por.service.config import load_config
    from por.service.wiring import build_service

    times = iter(
        [
            datetime(2025, 7, 1, 2, 0, tzinfo=UTC),  # Tue 1 Jul 10:00 HKT
            datetime(2025, 7, 1, 12, 0, tzinfo=UTC),  # Tue 1 Jul 20:00 HKT: end of day
            datetime(2025, 7, 2, 3, 0, tzinfo=UTC),  # Wed 2 Jul 11:00 HKT
        ]
    )
    now = {"t": datetime(2025, 7, 1, tzinfo=UTC)}

    def clock() -> datetime:
        return now["t"]

    svc = build_service(load_config(world_root / "por.toml"), publish=False, clock=clock)
    try:
        for t in times:
            now["t"] = t
            svc.attest()
    finally:
        svc.close()


@pytest.mark.slow
def test_por_report_writes_a_signed_report_that_por_verify_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POR_KEY_PASSPHRASE", PASSPHRASE)
    world = write_world(tmp_path / "world", holders_per_chain=12)
    with (world.root / "por.toml").open("a") as f:
        f.write('\n[disclosure]\nreport_utc_offset = "+08:00"\n')
    _attest_on_days(world.root)
    out = tmp_path / "reports"
    args = ["report", "--period", "weekly", "--at", "2025-07-02", "--config", str(world.config)]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "report weekly 2025-W27 (UTC+08:00), final: 7 day(s), 2 attested" in printed
    names = sorted(p.name for p in out.iterdir())
    assert names[0] == "weekly-2025-W27.dsse.json" and len(names) == 10
    envelope_path = out / "weekly-2025-W27.dsse.json"
    env = json.loads(envelope_path.read_text())
    assert env["payloadType"] == REPORT_PAYLOAD_TYPE
    report = decode_report(__import__("base64").b64decode(env["payload"]))
    assert [d.figures.attestation.sequence for d in report.days if d.figures] == [2, 3]
    # the HTML file stands alone: CSS inline, language links to the sibling files
    html = (out / "weekly-2025-W27.zh-HK.html").read_text()
    assert "<style>" in html and 'href="weekly-2025-W27.zh-CN.html"' in html
    pdf = _pdf_text((out / "weekly-2025-W27.zh-HK.pdf").read_bytes(), tmp_path)
    assert i18n.t("zh-HK", "report.days_attested") in "".join(pdf.split())

    keys = str(world.root / "keys" / "keys.json")
    published = str(world.root / "attestations")
    assert main(["verify", str(envelope_path), "--keys", keys, "--attestations", published]) == 0
    assert "result: PASS" in capsys.readouterr().out

    # the issuer changes one figure and signs again: the signature holds, the figures don't
    doc = report.to_dict()
    day = next(d for d in doc["days"] if d["attestation"])
    day["chains"][0]["total_supply"] = str(int(day["chains"][0]["total_supply"]) - 1)
    signer = Ed25519Signer.from_pem(
        (world.root / "keys" / "issuer.key.pem").read_bytes(), PASSPHRASE
    )
    forged = sign_envelope(ReserveReport.from_dict(doc).to_bytes(), REPORT_PAYLOAD_TYPE, [signer])
    forged_path = tmp_path / "forged.dsse.json"
    forged_path.write_bytes(forged.to_json_bytes())
    assert main(["verify", str(forged_path), "--keys", keys, "--attestations", published]) == 1
    printed = capsys.readouterr().out
    assert "PASS  signatures" in printed
    assert "FAIL  figures" in printed and "chains[0].total_supply" in printed

    # without the attestations a report cannot be checked: say what to give
    assert main(["verify", str(envelope_path), "--keys", keys]) == 1
    assert "--attestations DIR" in capsys.readouterr().err
    # a period with no attestation: the report says so
    assert (
        main(
            [
                "report",
                "--period",
                "daily",
                "--at",
                "2025-07-05",
                "--config",
                str(world.config),
                "--out",
                str(out),
                "--formats",
                "csv",
                "--lang",
                "en",
            ]
        )
        == 0
    )
    assert "note: no attestation was recorded in daily period 2025-07-05" in capsys.readouterr().out
    assert (
        main(["report", "--period", "daily", "--at", "5 July", "--config", str(world.config)]) == 1
    )
    assert "--at: must be a date YYYY-MM-DD" in capsys.readouterr().err
