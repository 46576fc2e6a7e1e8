"""Served and published attestations are what was signed (issue 12 §7).

The attack, as found: someone with write access to the database edits a row.

    UPDATE por_attestations SET document_json = '{… "ratio":"99.000000" …}', ratio = '99.000000'

The dashboard and /metrics showed ratio 99.000000 while the signature said 17.75; a row
with a broken signature was served, and at restart copied over the published envelope
file; a failed envelope-file write was never reported. Here rows are edited in SQLite
and PostgreSQL and every surface is asked.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from por.api import ApiDeps, create_app
from por.store import Store
from por.store.integrity import TamperedRowError, check_row
from por.store.store import envelope_file_name
from tests.store.factory import World, keyset


def _edit(store: Store, sequence: int, **columns: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in columns)
    with store._db.writes.begin() as s:
        s.execute(
            text(f"UPDATE por_attestations SET {sets} WHERE sequence = :seq"),
            {**columns, "seq": sequence},
        )


def _inflated(store: Store, sequence: int) -> bytes:
    """The stored document with its ratio raised, re-serialised as the row would hold it."""
    doc = json.loads(store.get(sequence).document_json)
    doc["totals"]["ratio"] = "99.000000"
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


@pytest.fixture
def recorded(store: Store) -> tuple[Store, World]:
    world = World()
    for _ in range(3):
        world.record(store)
    return store, world


def test_an_edited_document_is_never_served(recorded: tuple[Store, World]) -> None:
    store, _ = recorded
    for seq in (2, 3):  # an old one and the latest
        _edit(store, seq, document_json=_inflated(store, seq), ratio="99.000000")
    app = create_app(ApiDeps(store=store, keys=keyset().to_dict(), warm_up=False))
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/v1/attestations/1").status_code == 200  # untouched rows still serve
        for path in ("/v1/attestations/2", "/v1/attestations/latest", "/v1/attestations"):
            r = c.get(path)
            assert r.status_code == 500, path
            assert "not what was signed" in r.json()["detail"] and "99.0" not in r.text
        metrics = c.get("/metrics").text
        assert "99.0" not in metrics and "por_reserve_ratio" not in metrics
        assert "por_latest_attestation_verified 0.0" in metrics
        assert "por_integrity_failures_total 2.0" in metrics  # rows 2 and 3, once each


def test_a_column_edited_alone_is_caught(recorded: tuple[Store, World]) -> None:
    store, _ = recorded
    _edit(store, 3, ratio="99.000000", status="FULLY_BACKED")
    with pytest.raises(TamperedRowError, match=r"column (status|ratio)"):
        check_row(store.get(3), keyset())
    app = create_app(ApiDeps(store=store, keys=keyset().to_dict(), warm_up=False))
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/v1/attestations").status_code == 500  # the history page's figures
        assert "99.0" not in c.get("/metrics").text


def test_a_broken_signature_is_not_served_nor_published_at_restart(
    recorded: tuple[Store, World], open_store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store, _ = recorded
    published = store.attestations_dir / envelope_file_name(2)
    good = published.read_bytes()
    env = json.loads(store.get(2).envelope_json)
    sig = env["signatures"][0]["sig"]
    env["signatures"][0]["sig"] = ("B" if sig[0] != "B" else "C") + sig[1:]
    _edit(store, 2, envelope_json=json.dumps(env).encode())
    with pytest.raises(TamperedRowError, match="signature does not verify"):
        check_row(store.get(2), keyset())
    app = create_app(ApiDeps(store=store, keys=keyset().to_dict(), warm_up=False))
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/v1/attestations/2").status_code == 500
    # restart: the published file is neither overwritten nor recreated from the row
    with caplog.at_level(logging.ERROR, logger="por.store"):
        again = open_store(keyset=keyset())
    assert published.read_bytes() == good
    assert any("attestation 2" in p for p in again.integrity_problems)
    assert "signature does not verify" in caplog.text
    published.unlink()
    open_store(keyset=keyset())
    assert not published.exists()
    # without a key set the restart still refuses a document that is not the payload
    _edit(store, 3, document_json=_inflated(store, 3))
    (store.attestations_dir / envelope_file_name(3)).unlink()
    open_store()
    assert not (store.attestations_dir / envelope_file_name(3)).exists()


def test_a_failed_envelope_file_write_is_logged_and_retried(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    world = World()
    world.record(store)
    blocker = store.attestations_dir / envelope_file_name(2)
    blocker.mkdir(parents=True)  # the rename onto it fails, as a full or broken disk would
    with caplog.at_level(logging.WARNING, logger="por.store"):
        built = world.next()
        rec = store.record(**built.record_kwargs())
        world.accept(built)
    assert rec.file_error is not None
    assert "attestation 2 is recorded, but its published files could not be written" in (
        caplog.text
    )
    blocker.rmdir()  # the fault goes away
    world.record(store)  # the next record writes what was missing first
    assert blocker.read_bytes() == store.get(2).envelope_json
    assert (store.attestations_dir / envelope_file_name(3)).read_bytes() == (
        store.get(3).envelope_json
    )


def test_healthz_judges_freshness_by_the_signed_issued_at(recorded: tuple[Store, World]) -> None:
    """An edited issued_at column must not make a stale service look fresh."""
    from datetime import timedelta

    from por.core.times import format_time

    store, world = recorded
    assert world.last is not None
    signed = world.last.issued_at
    later = signed + timedelta(days=30)
    sqlite = store._db.engine.dialect.name == "sqlite"
    _edit(store, 3, issued_at=later.replace(tzinfo=None) if sqlite else later)
    assert store.latest_issued() == (3, later)  # the column now lies
    app = create_app(
        ApiDeps(
            store=store,
            keys=keyset().to_dict(),
            warm_up=False,
            stale_after_s=3600,
            wall_clock=lambda: later,
        )
    )
    with TestClient(app) as c:
        r = c.get("/healthz")
    assert r.status_code == 503 and r.json()["status"] == "degraded"
    assert r.json()["latest_issued_at"] == format_time(signed)
    assert r.json()["age_s"] == 30 * 86400
