"""The HTTP API: shapes, verification of what it serves, caching, limits, errors, admin."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from por.api import ApiDeps, create_app
from por.core.attestation import PAYLOAD_TYPE, decode_attestation
from por.core.dsse import Envelope, KeySet, verify_envelope
from por.core.mst import InclusionProof
from por.core.mst import verify_inclusion as verify_mst
from por.core.tlog import verify_checkpoint, verify_consistency, verify_inclusion
from por.store import Store
from tests.api.conftest import ADMIN_TOKEN, Api
from tests.store.factory import LOG_SIGNER, ORIGIN, keyset


def test_latest_and_by_sequence_serve_verifiable_envelopes(api: Api) -> None:
    r = api.client.get("/v1/attestations/latest")
    assert r.status_code == 200
    body = r.json()
    want = api.built[-1].attestation
    assert body["sequence"] == 3 and body["digest"] == want.digest()
    env = Envelope.from_dict(body["envelope"])
    keys = KeySet.from_dict(api.client.get("/v1/keys").json())
    verified = verify_envelope(env, keys, at=want.issued_at, payload_type=PAYLOAD_TYPE)
    assert decode_attestation(verified.payload) == want
    assert body["attestation"] == want.to_dict()
    one = api.client.get("/v1/attestations/1").json()
    assert one["attestation"] == api.built[0].attestation.to_dict()
    assert base64.b64decode(one["envelope"]["payload"]) == api.built[0].attestation.to_bytes()


def test_history_pages_with_a_cursor(api: Api) -> None:
    for _ in range(2):
        api.world.record(api.store)
    page = api.client.get("/v1/attestations", params={"limit": 2}).json()
    assert [i["sequence"] for i in page["items"]] == [5, 4] and page["next_before"] == 4
    page = api.client.get("/v1/attestations", params={"limit": 2, "before": 4}).json()
    assert [i["sequence"] for i in page["items"]] == [3, 2] and page["next_before"] == 2
    page = api.client.get("/v1/attestations", params={"limit": 2, "before": 2}).json()
    assert [i["sequence"] for i in page["items"]] == [1] and page["next_before"] is None
    item = api.client.get("/v1/attestations", params={"limit": 1}).json()["items"][0]
    att = api.store.get(5).attestation
    assert item["ratio"] == att.totals.ratio
    assert item["eligible_reserves"] == str(att.totals.eligible_reserves)
    assert item["issued_at"] == att.to_dict()["issued_at"]


def test_etag_and_cache_control(api: Api) -> None:
    r = api.client.get("/v1/attestations/2")
    etag = r.headers["etag"]
    assert etag == f'"{api.built[1].attestation.digest()}"'
    assert "immutable" in r.headers["cache-control"]
    again = api.client.get("/v1/attestations/2", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    weak = api.client.get("/v1/attestations/2", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    latest = api.client.get("/v1/attestations/latest")
    assert latest.headers["cache-control"] == "no-cache"
    tag = latest.headers["etag"]
    assert (
        api.client.get("/v1/attestations/latest", headers={"If-None-Match": tag}).status_code == 304
    )
    api.world.record(api.store)  # a new attestation: the old tag no longer matches
    fresh = api.client.get("/v1/attestations/latest", headers={"If-None-Match": tag})
    assert fresh.status_code == 200 and fresh.json()["sequence"] == 4
    for path in (
        "/v1/keys",
        "/v1/log/checkpoint",
        "/v1/oracles",
        "/v1/attestations",
        f"/v1/proofs/{next(iter(api.world.holders))}",
    ):
        r = api.client.get(path)
        assert r.status_code == 200 and r.headers.get("etag"), path
        assert (
            api.client.get(path, headers={"If-None-Match": r.headers["etag"]}).status_code == 304
        ), path


def test_proof_verifies_and_matches_the_signed_liabilities(api: Api) -> None:
    acct = sorted(api.world.holders)[7]
    r = api.client.get(f"/v1/proofs/{acct}")
    assert r.status_code == 200
    body = r.json()
    assert body["sequence"] == 3 and body["attestation_digest"] == api.built[2].attestation.digest()
    proof = InclusionProof.from_dict(body["proof"])
    verify_mst(proof)
    liab = api.built[2].attestation.liabilities
    assert body["liabilities"] == liab.to_dict()
    assert proof.root.hash.hex() == liab.root and proof.root.sum == liab.total
    assert proof.balance == api.world.holders[acct] and proof.size == liab.leaf_count
    api.clock.now += 10  # an older attestation's tree is loaded: it costs a full burst
    older = api.client.get(f"/v1/proofs/{acct}", params={"sequence": 1}).json()
    assert older["liabilities"] == api.built[0].attestation.liabilities.to_dict()
    assert older["proof"]["salt"] != body["proof"]["salt"]  # fresh salts every round


def test_round_secret_is_never_served(api: Api) -> None:
    secrets = [b.round_secret for b in api.built]
    paths = [
        "/v1/attestations/latest",
        "/v1/attestations/1",
        "/v1/attestations?limit=10",
        f"/v1/proofs/{next(iter(api.world.holders))}",
        "/v1/log/checkpoint",
        "/v1/log/inclusion?sequence=1",
        "/v1/oracles",
        "/metrics",
    ]
    for p in paths:
        content = api.client.get(p).content
        for s in secrets:
            assert s.hex().encode() not in content and base64.b64encode(s) not in content, p


def test_log_routes_verify(api: Api) -> None:
    r = api.client.get("/v1/log/checkpoint")
    assert r.headers["content-type"].startswith("text/plain")
    cp = verify_checkpoint(r.text, key_name=ORIGIN, public_key_raw=LOG_SIGNER.public_key_raw)
    assert cp.size == 3
    inc = api.client.get("/v1/log/inclusion", params={"sequence": 2}).json()
    assert inc["checkpoint"] == r.text and inc["tree_size"] == 3
    verify_inclusion(
        inc["leaf_index"],
        inc["tree_size"],
        bytes.fromhex(inc["leaf_hash"]),
        [bytes.fromhex(h) for h in inc["path"]],
        cp.root_hash,
    )
    con = api.client.get("/v1/log/consistency", params={"from": 1, "to": 3}).json()
    assert con["to_root"] == cp.root_hash.hex()
    verify_consistency(
        1, 3, bytes.fromhex(con["from_root"]), cp.root_hash, [bytes.fromhex(h) for h in con["path"]]
    )


@pytest.mark.parametrize(
    ("path", "status", "needle"),
    [
        ("/v1/attestations/99", 404, "no attestation with sequence 99"),
        ("/v1/attestations/0", 422, None),
        ("/v1/attestations/-1", 422, None),
        ("/v1/attestations/abc", 422, None),
        ("/v1/attestations/99999999999999999999999", 422, None),
        ("/v1/attestations?limit=0", 422, None),
        ("/v1/attestations?limit=x", 422, None),
        ("/v1/attestations?before=0", 422, None),
        ("/v1/proofs/eip155:1:0xnobody", 404, "is not in the liabilities of attestation 3"),
        ("/v1/proofs/eip155:1:0x01?sequence=42", 404, "no attestation with sequence 42"),
        ("/v1/proofs/x?sequence=abc", 422, None),
        ("/v1/log/inclusion?sequence=9", 404, "not in the log"),
        ("/v1/log/inclusion", 422, None),
        ("/v1/log/consistency?from=3&to=1", 422, "must not exceed"),
        ("/v1/log/consistency?from=1&to=9", 404, "no checkpoint of size 9"),
        ("/v1/log/consistency?from=0&to=2", 422, None),
    ],
)
def test_bad_input_is_4xx_with_a_clear_message(
    api: Api, path: str, status: int, needle: str | None
) -> None:
    r = api.client.get(path)
    assert r.status_code == status, r.text
    assert "detail" in r.json()
    if needle:
        assert needle in r.text


def test_proof_lookups_are_rate_limited_per_client(api: Api) -> None:
    acct = next(iter(api.world.holders))
    for _ in range(3):  # the burst
        assert api.client.get(f"/v1/proofs/{acct}").status_code == 200
    r = api.client.get(f"/v1/proofs/{acct}")
    assert r.status_code == 429 and r.headers["retry-after"] == "2"  # 1 token at 0.5/s
    assert "too many" in r.json()["detail"]
    assert api.client.get("/v1/attestations/latest").status_code == 200  # other routes: free
    api.clock.now += 2.0
    assert api.client.get(f"/v1/proofs/{acct}").status_code == 200
    assert api.client.get(f"/v1/proofs/{acct}").status_code == 429


def test_admin_trigger_needs_the_token(api: Api) -> None:
    assert api.client.post("/v1/admin/attest").status_code == 401
    r = api.client.post("/v1/admin/attest", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = api.client.post("/v1/admin/attest", headers={"Authorization": f"Basic {ADMIN_TOKEN}"})
    assert r.status_code == 401
    assert api.store.latest_sequence() == 3
    r = api.client.post("/v1/admin/attest", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 200 and r.json() == {"sequence": 4}
    assert api.client.get("/v1/attestations/latest").json()["sequence"] == 4
    api.deps.trigger = None  # create_app reads the trigger per request
    r = api.client.post("/v1/admin/attest", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 503 and "no attestation trigger" in r.json()["detail"]


def test_oracles_health_and_metrics(api: Api) -> None:
    api.store.record_publication(
        "eip155:1",
        3,
        contract="0x" + "aa" * 20,
        tx_hash="0x" + "bb" * 32,
        block_number=1234,
        status="published",
    )
    o = api.client.get("/v1/oracles").json()["oracles"]
    assert o == [
        {
            "chain_id": "eip155:1",
            "contract": "0x" + "aa" * 20,
            "sequence": 3,
            "tx_hash": "0x" + "bb" * 32,
            "block_number": 1234,
            "status": "published",
            "updated_at": o[0]["updated_at"],
            "error": None,
            "superseded_by": None,
            "pending": 0,
            "oldest_pending": None,
        }
    ]
    h = api.client.get("/healthz")
    assert h.status_code == 200 and h.json()["latest_sequence"] == 3
    api.client.get("/v1/attestations/latest")
    m = api.client.get("/metrics").text
    ratio = api.built[-1].attestation.totals.ratio
    assert "por_latest_sequence 3.0" in m
    assert f"por_reserve_ratio {float(ratio)}" in m  # type: ignore[arg-type]
    assert 'por_status{status="FULLY_BACKED"} 1.0' in m
    assert (
        'por_http_requests_total{method="GET",route="/v1/attestations/latest",status="200"}'
    ) in m
    assert "por_http_request_duration_seconds_bucket" in m


def test_security_headers_and_pages(api: Api) -> None:
    for path in ("/", "/holder"):
        r = api.client.get(path)
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert "https://" not in r.text and "http://" not in r.text.replace(
            "http://www.w3.org", ""
        )  # no CDN: the pages work offline
    assert api.client.get("/static/verify.js").status_code == 200


def test_empty_store_answers_404_not_500(tmp_path: Any) -> None:
    store = Store.open(None, data_dir=tmp_path / "d", attestations_dir=tmp_path / "a", migrate=True)
    with TestClient(create_app(ApiDeps(store=store, keys={"keys": []}))) as c:
        for p in ("/v1/attestations/latest", "/v1/proofs/eip155:1:0x01", "/v1/log/checkpoint"):
            r = c.get(p)
            assert r.status_code == 404, p
        assert c.get("/v1/attestations").json() == {"items": [], "next_before": None}
        assert c.get("/healthz").json()["latest_sequence"] is None
        assert c.post("/v1/admin/attest", headers={"Authorization": "Bearer x"}).status_code == 401
    store.close()


def test_healthz_is_degraded_when_the_latest_attestation_is_stale(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.store.factory import World

    store = Store.open(None, data_dir=tmp_path / "d", attestations_dir=tmp_path / "a", migrate=True)
    now = [datetime.now(UTC)]
    deps = ApiDeps(
        store=store, keys=keyset().to_dict(), stale_after_s=3 * 3600, wall_clock=lambda: now[0]
    )
    with TestClient(create_app(deps)) as c:
        assert c.get("/healthz").json()["status"] == "ok"  # nothing yet, but just started
        now[0] += timedelta(hours=4)
        r = c.get("/healthz")
        assert r.status_code == 503 and r.json()["status"] == "degraded"
        assert "no attestation recorded" in r.json()["detail"]
        World().record(store)
        issued = store.latest_issued()
        assert issued is not None
        now[0] = issued[1] + timedelta(hours=1)
        h = c.get("/healthz").json()
        assert h["status"] == "ok" and h["latest_sequence"] == 1 and h["age_s"] == 3600
        now[0] = issued[1] + timedelta(hours=3, seconds=1)
        r = c.get("/healthz")
        assert r.status_code == 503 and r.json()["status"] == "degraded"
        assert r.json()["stale_after_s"] == 10800 and "(#1) is 10801 s old" in r.json()["detail"]
        metrics = c.get("/metrics").text
        assert "por_attestation_age_seconds 10801.0" in metrics
    store.close()
