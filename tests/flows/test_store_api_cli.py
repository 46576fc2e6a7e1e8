"""The real store (SQLite, and PostgreSQL when configured), the API routes and `por verify`
over attestations that carry off-chain liabilities, a reconciliation, and a point-in-time
attestation — with a chain in memory, so no node is needed here."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from por.api import ApiDeps, create_app
from por.cli.main import main
from por.core.dsse import KeyEntry, KeySet
from por.demo.fake_chain import FakeChainReader
from por.demo.statements import camt053
from por.service.run import attest_once
from por.store import Store
from tests.flows.helpers import ACCOUNT, HKT, ISSUER, UNIT, Clock, Harness, ledger_export
from tests.store.pg import needs_pg, pg_schema_url

ADMIN = "t0ken"
DAY = date(2026, 3, 2)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_pg)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store.open(None, data_dir=tmp_path / "d", attestations_dir=tmp_path / "a", migrate=True)
        yield s
        s.close()
        return
    with pg_schema_url() as url:
        s = Store.open(url, data_dir=tmp_path / "d", attestations_dir=tmp_path / "a", migrate=True)
        yield s
        s.close()


def _harness(store: Store, tmp_path: Path) -> Harness:
    reader = FakeChainReader(
        chain_id="eip155:1",
        token_address="eip155:1:0x" + "ab" * 20,
        holders={"eip155:1:0x" + "01" * 20: 400 * UNIT, "eip155:1:0x" + "02" * 20: 600 * UNIT},
        decimals=6,
    )
    statement = camt053(
        account=ACCOUNT,
        day=DAY,
        opening_minor=5_000 * 100,
        entries=[
            ("credit", 70 * 100, "SUBSCRIPTION S-9", "HX1"),
            ("debit", 30 * 100, "PAYOUT R-9", "HX2"),
        ],
    )
    (tmp_path / "statements").mkdir(exist_ok=True)
    (tmp_path / "statements" / "day.xml").write_bytes(statement)
    led = ledger_export(
        tmp_path / "books.json",
        ledger_id="L-1",
        as_of=datetime(2026, 3, 2, 18, 0, tzinfo=HKT),
        accounts=[{"account": "ledger:kdm:R-9", "category": "pending_redemption", "balance": "30"}],
    )
    clock = Clock(datetime(2026, 3, 3, 9, 0, tzinfo=HKT).astimezone(UTC))
    reader.clock = clock
    return Harness(
        root=tmp_path,
        chains=[reader],
        clock=clock,
        flows_start=datetime(2026, 3, 1, tzinfo=UTC),
        documents=[("day.xml", statement)],
        ledger_files=[led],
        store=store,  # type: ignore[arg-type]
    )


def test_store_api_and_verify(store: Store, tmp_path: Path) -> None:
    h = _harness(store, tmp_path)
    deps = h.deps()
    first = attest_once(deps)
    h.clock.now += timedelta(hours=1)
    deps.chains[0].holders["eip155:1:0x" + "03" * 20] = 5 * UNIT  # type: ignore[attr-defined]
    second = attest_once(deps)
    when = h.clock.now - timedelta(minutes=30)  # between the two: the first's snapshot

    app = create_app(
        ApiDeps(
            store=store,
            keys=KeySet(
                keys=(KeyEntry.for_public_key(ISSUER.public_key_raw, role="issuer"),)
            ).to_dict(),
            admin_token=ADMIN,
            trigger=lambda: attest_once(deps).sequence,
            trigger_as_of=lambda t: attest_once(deps, as_of=t).sequence,
            matches=store.matches,
            proof_rate_limit=None,
        )
    )
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with TestClient(app) as client:
        r = client.post(
            f"/v1/admin/attest?as_of={when.strftime('%Y-%m-%dT%H:%M:%SZ')}", headers=auth
        )
        assert r.status_code == 200, r.text
        pit = r.json()["sequence"]
        assert pit == second.sequence + 1
        assert client.get("/v1/attestations/latest").json()["sequence"] == second.sequence
        assert client.get("/healthz").json()["latest_sequence"] == second.sequence
        doc = client.get(f"/v1/attestations/{pit}").json()["attestation"]
        assert doc["kind"] == "point-in-time"
        page = client.get("/v1/attestations?limit=3").json()["items"]
        assert [(i["sequence"], i["kind"]) for i in page] == [
            (pit, "point-in-time"),
            (second.sequence, "regular"),
            (first.sequence, "regular"),
        ]
        assert doc["point_in_time"]["chains"][0]["source"] == "recorded-snapshot"
        assert doc["chains"][0]["total_supply"] == str(1000 * UNIT)  # not the later 5
        future = (h.clock.now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert client.post(f"/v1/admin/attest?as_of={future}", headers=auth).status_code == 422
        assert client.post("/v1/admin/attest?as_of=yesterday", headers=auth).status_code == 400
        m = client.get(f"/v1/reconciliation/{first.sequence}")
        assert m.status_code == 200
        att = client.get(f"/v1/attestations/{first.sequence}").json()
        assert (
            hashlib.sha256(m.content).hexdigest()
            == att["attestation"]["reconciliation"]["matches_sha256"]
        )
        assert client.get("/v1/reconciliation/999").status_code == 404
        assert att["attestation"]["ledger"]["categories"]["pending_redemption"] == str(30 * UNIT)

    # por verify: the list against the statements
    keys = tmp_path / "keys.json"
    keys.write_bytes(
        KeySet(
            keys=(KeyEntry.for_public_key(ISSUER.public_key_raw, role="issuer"),)
        ).to_json_bytes()
    )
    env = tmp_path / "env.json"
    env.write_text(json.dumps(att))
    good = tmp_path / "matches.json"
    good.write_bytes(m.content)
    argv = [
        "verify",
        str(env),
        "--keys",
        str(keys),
        "--matches",
        str(good),
        "--statements",
        str(tmp_path / "statements"),
    ]
    assert main(argv) == 0
    lied = json.loads(m.content)
    lied["bank_entries"] = [e for e in lied["bank_entries"] if e["kind"] != "debit"]
    lied["unmatched"] = []
    from por.core.canonical import canonical_bytes

    bad = tmp_path / "bad.json"
    bad.write_bytes(canonical_bytes(lied))
    argv[5] = str(bad)
    assert main(argv) == 1


def test_source_documents_and_snapshots_are_kept_once(store: Store, tmp_path: Path) -> None:
    h = _harness(store, tmp_path)
    deps = h.deps()
    attest_once(deps)
    h.clock.now += timedelta(minutes=5)
    attest_once(deps)
    docs = store.source_documents("custodian", "harbour-trust")
    assert len(docs) == 1 and docs[0].as_of is not None
    parsed: dict[str, Any] = json.loads(docs[0].parsed_json)
    assert len(parsed["entries"]) == 2
    assert len(store.source_documents("ledger", "kdm-books")) == 1
    snap = store.chain_snapshot_at("eip155:1", h.clock.now)
    assert snap is not None and snap.total_supply == 1000 * UNIT
