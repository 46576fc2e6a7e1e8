"""`/v1/reports/{period}`, `/report`, `/v1/site` and `/favicon.ico` over a real store.

The app's clock is fixed after the week of the stored attestations; the report route
signs with the issuer key it is given and keeps what it signed until an attestation of
the period is recorded.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from por.api import ApiDeps, create_app
from por.core.dsse import Envelope
from por.core.reserve_report import REPORT_PAYLOAD_TYPE, decode_report
from por.core.verify import open_report_envelope
from por.store import Store
from tests.report.world import record_at
from tests.store.factory import ISSUER, World, keyset

T0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)  # Mon 09:00 in Hong Kong
NOW = datetime(2026, 1, 9, 3, 0, tzinfo=UTC)  # Fri 11:00 in Hong Kong
SITE = {
    "report_utc_offset": "+08:00",
    "holder_history": 5,
    "chain_names": {"eip155:56": "BNB Smart Chain"},
    "explorers": {"eip155:1": {"block": "https://etherscan.io/block/{number}"}},
}


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    store = Store.open(None, data_dir=tmp_path / "d", attestations_dir=tmp_path / "a", migrate=True)
    world = World()
    for hours, pct in ((0, 110), (10, 105), (26, 97)):
        record_at(store, world, T0 + timedelta(hours=hours), reserves_pct=pct)
    signed: list[datetime] = []

    def signers(at: datetime) -> list[Any]:
        signed.append(at)
        return [ISSUER]

    app = create_app(
        ApiDeps(
            store=store,
            keys=keyset().to_dict(),
            wall_clock=lambda: NOW,
            site=SITE,
            report_signers=signers,
        )
    )
    yield TestClient(app), store, world, signed
    store.close()


def test_the_signed_report_verifies_and_names_its_attestations(setup: Any) -> None:
    client, _, _, _ = setup
    r = client.get("/v1/reports/weekly", params={"at": "2026-01-07"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    body = r.json()
    assert (body["period"], body["label"]) == ("weekly", "2026-W02")
    env = Envelope.from_dict(body["envelope"])
    assert env.payload_type == REPORT_PAYLOAD_TYPE
    report = open_report_envelope(env, keyset(), now=NOW)
    assert report.to_dict() == body["report"] and report.digest() == body["digest"]
    assert not report.final  # the week runs to Sunday
    assert [d.date.isoformat() for d in report.days] == [f"2026-01-0{d}" for d in range(5, 10)]
    assert [d.figures.attestation.sequence for d in report.days if d.figures] == [2, 3]
    # conditional request: same digest, 304
    again = client.get(
        "/v1/reports/weekly",
        params={"at": "2026-01-07"},
        headers={"If-None-Match": r.headers["etag"]},
    )
    assert again.status_code == 304


def test_default_is_the_last_period_that_ended(setup: Any) -> None:
    client, _, _, _ = setup
    daily = decode_report(
        base64.b64decode(client.get("/v1/reports/daily").json()["envelope"]["payload"])
    )
    assert daily.period.label == "2026-01-08" and daily.final  # yesterday in Hong Kong
    assert daily.summary.days_attested == 0  # nothing was attested on Thursday
    monthly = client.get("/v1/reports/monthly").json()["report"]
    assert monthly["period"]["label"] == "2025-12" and monthly["summary"]["days_attested"] == 0


def test_renderings_in_each_language(setup: Any) -> None:
    client, _, _, _ = setup
    for lang in ("en", "zh-HK", "zh-CN"):
        pdf = client.get(
            "/v1/reports/weekly", params={"at": "2026-01-05", "format": "pdf", "lang": lang}
        )
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
        assert (
            pdf.headers["content-disposition"] == f'inline; filename="weekly-2026-W02.{lang}.pdf"'
        )
        csv = client.get(
            "/v1/reports/weekly", params={"at": "2026-01-05", "format": "csv", "lang": lang}
        )
        assert csv.headers["content-type"] == "text/csv; charset=utf-8"
        assert csv.headers["content-disposition"].startswith("attachment;")
    page = client.get(
        "/report",
        params={"period": "weekly", "at": "2026-01-05"},
        headers={"Accept-Language": "zh-TW,zh;q=0.9"},
    )
    assert page.status_code == 200 and '<html lang="zh-Hant-HK">' in page.text
    assert page.headers["vary"] == "Accept-Language"
    assert "/v1/reports/weekly?at=2026-01-05&amp;format=pdf&amp;lang=zh-HK" in page.text
    page = client.get("/report", params={"period": "daily", "at": "2026-01-05", "lang": "zh-CN"})
    assert '<html lang="zh-Hans-CN">' in page.text and 'rel="next"' in page.text


def test_a_report_is_signed_once_until_its_period_changes(setup: Any) -> None:
    client, store, world, signed = setup
    first = client.get("/v1/reports/weekly", params={"at": "2026-01-05"}).json()
    client.get("/v1/reports/weekly", params={"at": "2026-01-05", "format": "csv"})
    assert client.get("/v1/reports/weekly", params={"at": "2026-01-05"}).json() == first
    assert len(signed) == 1
    record_at(store, world, T0 + timedelta(hours=50), reserves_pct=120)  # Wed
    second = client.get("/v1/reports/weekly", params={"at": "2026-01-05"}).json()
    assert len(signed) == 2 and second["digest"] != first["digest"]
    assert second["report"]["summary"]["days_attested"] == 3


def test_bad_input_and_instances_without_a_key(setup: Any) -> None:
    client, store, _, _ = setup
    r = client.get("/v1/reports/daily", params={"at": "2026-01-10"})
    assert r.status_code == 422 and "nothing to report yet" in r.text
    assert client.get("/v1/reports/yearly").status_code == 422
    assert client.get("/v1/reports/daily", params={"at": "5 Jan"}).status_code == 422
    assert client.get("/v1/reports/daily", params={"format": "docx"}).status_code == 422
    bare = TestClient(create_app(ApiDeps(store=store, keys=keyset().to_dict())))
    r = bare.get("/v1/reports/daily")
    assert r.status_code == 503 and "cannot sign reserve reports" in r.json()["detail"]


def test_site_settings_and_favicon(setup: Any) -> None:
    client, store, _, _ = setup
    assert client.get("/v1/site").json() == SITE
    bare = TestClient(create_app(ApiDeps(store=store, keys=keyset().to_dict())))
    assert bare.get("/v1/site").json()["report_utc_offset"] == "+00:00"
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_por_verify_fetches_a_report_and_its_attestations(
    setup: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from por.cli.main import main
    from tests.api.servers import serve
    from tests.report.test_reserve_report import keyset as logged_keyset

    _, store, _, _ = setup
    app = create_app(
        ApiDeps(
            store=store,
            keys=logged_keyset().to_dict(),
            site=SITE,
            report_signers=lambda at: [ISSUER],
        )
    )
    keys = tmp_path / "keys.json"
    keys.write_bytes(logged_keyset().to_json_bytes())
    with serve(app) as base:
        args = ["verify", "--report", "daily", "--at", "2026-01-05", "--from", base]
        assert main([*args, "--keys", str(keys)]) == 0
        out = capsys.readouterr().out
        assert "PASS  log" in out and "1 cited log index(es) proved" in out
        assert main(["verify", "--report", "daily", "--keys", str(keys)]) == 1
        assert "--report PERIOD fetches the report: give --from URL" in capsys.readouterr().err
